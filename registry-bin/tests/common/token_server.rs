//! A token server for the `auth.token` tests: Docker's token protocol on
//! 127.0.0.1, signing with `registry_auth::token::test_issuer`.
//!
//! ```text
//! GET /token?service=<service>&scope=<type>:<name>:<actions>[&scope=...]
//!     [Authorization: Basic <user:password>]
//! 200 {"token": <jwt>, "access_token": <jwt>, "expires_in": 300, "issued_at": <RFC 3339>}
//! ```
//!
//! Each scope is granted the actions the test's [`Policy`] allows the user
//! (anonymous: the empty user) among those asked for. A wrong password, or
//! another service, gets 401. One request per connection, served on one
//! thread, stopped on drop. Included with
//! `#[path = ".../common/token_server.rs"] mod token_server;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
pub use registry_auth::token::test_issuer::{claims, Issuer, KeyKind, KeyMode};
use serde_json::{json, Value};

/// The `iss` of every token.
pub const ISSUER: &str = "test-token-issuer";
/// The registry's `service`.
pub const SERVICE: &str = "registry.test";
/// The one user with a password: the clients suite's (a colon and a space
/// in the password, which clients must send as they are).
pub const USER: &str = "ci";
pub const PASS: &str = "pa55:word with space";

/// The actions `user` may have on `type`, `name` (`""` user: anonymous).
pub type Policy = dyn Fn(&str, &str, &str) -> Vec<&'static str> + Send + Sync;

/// Every action everywhere to [`USER`], nothing to anyone else.
pub fn user_may_do_everything(user: &str, _kind: &str, _name: &str) -> Vec<&'static str> {
    if user == USER {
        vec!["pull", "push", "delete", "*"]
    } else {
        vec![]
    }
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    pub issuer: Arc<Issuer>,
    pub mode: KeyMode,
    /// `http://127.0.0.1:<port>/token`.
    pub realm: String,
    /// The PEM root bundle for the registry.
    pub bundle: PathBuf,
    /// The scopes asked for, one entry per request, in order.
    pub asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// Starts a server signing in `mode` with a fresh `kind` issuer; writes
    /// the root bundle under `dir`.
    pub fn start(dir: &Path, kind: KeyKind, mode: KeyMode, policy: Arc<Policy>) -> TokenServer {
        let issuer = Arc::new(Issuer::new(kind));
        let bundle = dir.join("token-ca.pem");
        std::fs::write(&bundle, issuer.root_pem()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (issuer, stop, asked) =
                (Arc::clone(&issuer), Arc::clone(&stop), Arc::clone(&asked));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &issuer, mode, policy.as_ref(), &asked);
                    }
                }
            })
        };
        TokenServer {
            issuer,
            mode,
            realm: format!("http://{addr}/token"),
            bundle,
            asked,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    /// A token for `user` granting `access` (the claim's JSON array), valid
    /// from now for five minutes; `edit` may change any claim first.
    pub fn mint(&self, user: &str, access: Value, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = claims(ISSUER, SERVICE, user, now(), access);
        edit(&mut c);
        self.issuer.token(self.mode, &c)
    }

    /// The `REGISTRY_AUTH_TOKEN_*` variables of a registry trusting this server.
    pub fn registry_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REGISTRY_AUTH_TOKEN_REALM", self.realm.clone()),
            ("REGISTRY_AUTH_TOKEN_SERVICE", SERVICE.into()),
            ("REGISTRY_AUTH_TOKEN_ISSUER", ISSUER.into()),
            (
                "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
                self.bundle.display().to_string(),
            ),
        ]
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn serve(
    stream: TcpStream,
    issuer: &Issuer,
    mode: KeyMode,
    policy: &Policy,
    asked: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut basic = None;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                basic = decode_basic(value.trim());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    let scopes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .collect();
    asked.lock().unwrap().push(scopes.join(" "));
    let user = match &basic {
        None => String::new(),
        Some((user, pass)) if user == USER && pass == PASS => user.clone(),
        Some(_) => return reply(stream, 401, r#"{"details":"wrong credentials"}"#),
    };
    if !request_line.starts_with("GET ") || service != Some(SERVICE) {
        return reply(stream, 401, r#"{"details":"unknown service"}"#);
    }
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            let allowed = policy(&user, kind, name);
            let granted: Vec<&str> = actions.split(',').filter(|a| allowed.contains(a)).collect();
            (!granted.is_empty()).then(|| json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let issued = now();
    let token = issuer.token(
        mode,
        &claims(ISSUER, SERVICE, &user, issued, Value::Array(access)),
    );
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": rfc3339(issued),
    });
    reply(stream, 200, &body.to_string());
}

fn reply(mut stream: TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let (user, pass) = std::str::from_utf8(&text).ok()?.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// `secs` since the epoch as `YYYY-MM-DDThh:mm:ssZ`, the token spec's `issued_at`.
fn rfc3339(secs: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    format!("{}Z", registry_bin::timestamp::Utc::of(at).iso())
}
