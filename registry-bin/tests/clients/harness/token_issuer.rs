//! A token issuer for a Distribution upstream with `auth.token`, so the cache's Bearer
//! flow runs against the real thing: Docker's token protocol on 127.0.0.1, ES256 JWTs
//! with the signing certificate in `x5c`, a self-signed root Distribution trusts.
//!
//! ```text
//! GET /token?service=<service>&scope=repository:<name>:<actions>
//!     Authorization: Basic <USER:PASS>            (anything else: 401)
//! 200 {"token": <jwt>, "expires_in": 300}
//! ```
//!
//! One request per connection on one thread; every request is recorded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::{PASS, USER};

pub const ISSUER: &str = "proxy-test-issuer";
pub const SERVICE: &str = "upstream.test";

/// A request the issuer received: the scope asked for, and whether it carried the
/// right credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub scope: String,
    pub authenticated: bool,
}

/// The running issuer (its thread ends with the test process).
pub struct TokenIssuer {
    /// `http://127.0.0.1:<port>/token`.
    pub realm: String,
    /// The root certificate, PEM, for Distribution's `rootcertbundle`.
    pub root_pem: String,
    pub asked: Arc<Mutex<Vec<Asked>>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `%XX` and `+` decoding of one query value.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenIssuer {
    pub fn start() -> TokenIssuer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ISSUER);
        let cert = params.self_signed(&key).unwrap();
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                serve(stream, &signer, &x5c, &log);
            }
        });
        TokenIssuer {
            realm,
            root_pem: cert.pem(),
            asked,
        }
    }
}

fn serve(mut stream: TcpStream, signer: &EcdsaKeyPair, x5c: &str, log: &Mutex<Vec<Asked>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_owned();
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(decode)
            .unwrap_or_default()
    };
    let (scope, service) = (param("scope"), param("service"));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    let authenticated = authorization == expected;
    log.lock().unwrap().push(Asked {
        scope: scope.clone(),
        authenticated,
    });
    let reply = if !authenticated || service != SERVICE {
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
    } else {
        // Every action asked for is granted: this issuer tests the protocol, not a policy.
        let mut parts = scope.splitn(3, ':').skip(1);
        let (name, actions) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": USER, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", log.lock().unwrap().len()),
            "access": [{"type": "repository", "name": name, "actions": actions}],
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = signer
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        let token = format!("{signing_input}.{}", b64url(signature.as_ref()));
        let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = stream.write_all(reply.as_bytes());
}
