//! A test certificate authority for the HTTPS tests (`ops`, `clients`):
//! made with rcgen, it signs server certificates for 127.0.0.1 and
//! localhost, and builds reqwest clients that trust only it.

#![allow(dead_code)]

use std::path::Path;

/// A test certificate authority that signs server certificates for 127.0.0.1.
pub struct TestCa {
    ca: rcgen::Certificate,
    key: rcgen::KeyPair,
    pub pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca = params.self_signed(&key).unwrap();
        let pem = ca.pem();
        TestCa { ca, key, pem }
    }

    /// Writes a server certificate and key for 127.0.0.1 and localhost.
    pub fn issue(&self, cert: &Path, key: &Path) {
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let leaf = params.signed_by(&leaf_key, &self.ca, &self.key).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
    }

    /// An HTTPS client that trusts only this CA.
    pub fn client(&self, http1_only: bool) -> reqwest::Client {
        https_client(self.pem.as_bytes(), http1_only)
    }
}

/// An HTTPS client that trusts only the CA in `ca_pem` (none of the
/// system's); `http1_only` turns HTTP/2 off, else ALPN picks it.
pub fn https_client(ca_pem: &[u8], http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .use_rustls_tls();
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}
