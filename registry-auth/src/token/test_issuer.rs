//! For tests only: what a token server holds (a root CA, a signing
//! certificate under it, their keys) and the tokens it signs, so tests can
//! make good tokens and every kind of bad one.
//!
//! Panics on any failure: it only runs in tests.

#![allow(clippy::unwrap_used, missing_docs)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SignatureAlgorithm};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use serde_json::{json, Value};

use super::trust::key_id;

/// A 2048-bit RSA key made once with `openssl genpkey` (ring cannot make
/// RSA keys); a test fixture, trusted nowhere.
const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8");

/// The signing algorithm and key type of an issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Es256,
    Es384,
    Rs256,
}

impl KeyKind {
    pub fn alg(self) -> &'static str {
        match self {
            KeyKind::Es256 => "ES256",
            KeyKind::Es384 => "ES384",
            KeyKind::Rs256 => "RS256",
        }
    }

    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::Es384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Rs256 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    fn key(self) -> KeyPair {
        match self {
            KeyKind::Rs256 => KeyPair::from_pkcs8_der_and_sign_algo(
                &rustls_pki_types::PrivatePkcs8KeyDer::from(RSA_PKCS8),
                self.rcgen(),
            )
            .unwrap(),
            _ => KeyPair::generate_for(self.rcgen()).unwrap(),
        }
    }
}

/// How a token names its signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// `x5c: [leaf, root]`, signed by the leaf's key.
    X5c,
    /// `kid` of the root's key, signed by the root's key.
    Kid,
}

/// One key with its certificate.
struct Signer {
    kind: KeyKind,
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl Signer {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let der = self.key.serialize_der();
        match self.kind {
            KeyKind::Es256 | KeyKind::Es384 => {
                let alg = if self.kind == KeyKind::Es256 {
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(alg, &der, &rng).unwrap();
                pair.sign(&rng, msg).unwrap().as_ref().to_vec()
            }
            KeyKind::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .unwrap();
                out
            }
        }
    }
}

/// A token server's root CA and signing certificate.
pub struct Issuer {
    root: Signer,
    leaf: Signer,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("kind", &self.root.kind)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// A root CA and a signing certificate under it, valid for centuries.
    pub fn new(kind: KeyKind) -> Issuer {
        Issuer::make(kind, false)
    }

    /// Like [`Issuer::new`], but the signing certificate expired in 2000.
    pub fn with_expired_leaf(kind: KeyKind) -> Issuer {
        Issuer::make(kind, true)
    }

    fn make(kind: KeyKind, expired_leaf: bool) -> Issuer {
        let root_key = kind.key();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test token issuer root");
        let root_cert = params.self_signed(&root_key).unwrap();
        let leaf_key = kind.key();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test token signer");
        if expired_leaf {
            params.not_before = rcgen::date_time_ymd(1999, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        let leaf_cert = params.signed_by(&leaf_key, &root_cert, &root_key).unwrap();
        Issuer {
            root: Signer {
                kind,
                key: root_key,
                cert: root_cert,
            },
            leaf: Signer {
                kind,
                key: leaf_key,
                cert: leaf_cert,
            },
        }
    }

    /// The root bundle a registry trusting this issuer is given.
    pub fn root_pem(&self) -> String {
        self.root.cert.pem()
    }

    /// The libtrust key ID of the root key.
    pub fn root_kid(&self) -> String {
        key_id(&self.root.key.public_key_der())
    }

    /// The JWS header of a token signed in `mode`.
    pub fn header(&self, mode: KeyMode) -> Value {
        match mode {
            KeyMode::X5c => json!({
                "typ": "JWT",
                "alg": self.root.kind.alg(),
                "x5c": [STANDARD.encode(self.leaf.cert.der()), STANDARD.encode(self.root.cert.der())],
            }),
            KeyMode::Kid => json!({
                "typ": "JWT",
                "alg": self.root.kind.alg(),
                "kid": self.root_kid(),
            }),
        }
    }

    /// A token with `claims`, signed in `mode`.
    pub fn token(&self, mode: KeyMode, claims: &Value) -> String {
        self.sign(mode, &self.header(mode), claims)
    }

    /// `header` and `claims` as given, signed with the key of `mode`.
    pub fn sign(&self, mode: KeyMode, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = match mode {
            KeyMode::X5c => &self.leaf,
            KeyMode::Kid => &self.root,
        };
        let signature = URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }
}

/// Claims for `service` from `issuer`, valid from `now` for five minutes,
/// granting `access` (the `access` claim's JSON array) to `subject`.
pub fn claims(issuer: &str, service: &str, subject: &str, now: u64, access: Value) -> Value {
    json!({
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": format!("{subject}-{now}"),
        "access": access,
    })
}
