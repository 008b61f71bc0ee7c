//! Built-in HTTPS: rustls with certificates that can be replaced while the
//! server runs.
//!
//! cert-manager renews a certificate by rewriting the Secret, which the
//! kubelet projects into the pod as new files. The resolver below holds the
//! current certificate; a watcher reloads the files when their content
//! changes. New handshakes get the new certificate; established connections
//! keep going untouched. A file that fails to load (half-written, wrong key)
//! leaves the previous certificate in place and is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate or key cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read or holds no PEM object of the right kind.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not fit the certificate, or rustls refuses it.
    #[error("{cert} / {key}: {message}")]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Loads and checks a certificate chain and its private key.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_owned(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, format!("invalid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no CERTIFICATE block found".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error(key, format!("no usable private key: {e}")))?;
    let pair_error = |message: String| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message,
    };
    let signing =
        any_supported_type(&private).map_err(|e| pair_error(format!("unsupported key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| pair_error(format!("the key does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

/// Serves whatever certificate was loaded last.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Loads the pair once; fails if it cannot be used.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ReloadingCert>, TlsError> {
        let current = load_certified_key(cert, key)?;
        Ok(Arc::new(ReloadingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(current),
        }))
    }

    /// The files to watch.
    pub fn paths(&self) -> [PathBuf; 2] {
        [self.cert.clone(), self.key.clone()]
    }

    /// Re-reads the files; keeps the old certificate when they do not load.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load_certified_key(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// A rustls server config using this certificate, offering HTTP/2 and
    /// HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}
