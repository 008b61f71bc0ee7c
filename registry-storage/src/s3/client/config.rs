//! `S3Config`: where the bucket is and how to reach it, and the HTTP client built from it.

use std::path::PathBuf;
use std::time::Duration;

use crate::StorageError;

/// The smallest part S3 accepts in a multipart upload, the last part excepted.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// How long to wait for a TCP (and TLS) connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a response may stay silent (headers or body) before the request fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the bucket is and how to reach it: the `storage.s3` settings of the config.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `regionendpoint`, or `https://s3.<region>.amazonaws.com`.
    pub endpoint: url::Url,
    /// The region requests are signed for.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// `rootdirectory` without leading or trailing `/`; empty for the bucket root.
    pub root: String,
    /// Access key, secret key and session token. `None`: see [`S3Config::from_env_credentials`]
    /// and, for web identity, `S3Client::new`.
    pub credentials: Option<(String, String, Option<String>)>,
    /// `forcepathstyle`: `endpoint/bucket/key` instead of `bucket.endpoint/key`.
    pub path_style: bool,
    /// `skipverify`: accept any certificate from the endpoint.
    pub skip_verify: bool,
    /// `AWS_CA_BUNDLE`: PEM certificates trusted in addition to the system's roots.
    /// Read only for an `https` endpoint (a plain `http` endpoint never needs it).
    pub ca_bundle: Option<PathBuf>,
    /// `chunksize`: the part size of multipart uploads, at least [`MIN_PART_SIZE`].
    pub part_size: u64,
}

impl S3Config {
    /// Static keys from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`, for a config that names none; `None` when either key is
    /// unset or empty.
    pub fn from_env_credentials() -> Option<(String, String, Option<String>)> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Some((
            var("AWS_ACCESS_KEY_ID")?,
            var("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN"),
        ))
    }

    /// The HTTP client for this endpoint: rustls with the system's roots, plus the CA
    /// bundle for an `https` endpoint.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, StorageError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .danger_accept_invalid_certs(self.skip_verify);
        if let (Some(path), "https") = (&self.ca_bundle, self.endpoint.scheme()) {
            let unusable =
                |why: String| self.invalid(format!("CA bundle {}: {why}", path.display()));
            let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(e.to_string()))?;
            if certs.is_empty() {
                return Err(unusable("no PEM certificate in the file".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| self.invalid(format!("cannot build the HTTP client: {e}")))
    }

    /// Checks what S3 itself would refuse later, less clearly.
    pub(crate) fn validate(&self) -> Result<(), StorageError> {
        if self.part_size < MIN_PART_SIZE {
            return Err(self.invalid(format!(
                "chunksize {} is below the S3 minimum part size of {MIN_PART_SIZE}",
                self.part_size
            )));
        }
        if self.root.starts_with('/') || self.root.ends_with('/') {
            return Err(self.invalid(format!(
                "rootdirectory {:?} must be given without leading or trailing '/'",
                self.root
            )));
        }
        Ok(())
    }

    /// A configuration error, as the storage error the client reports.
    pub(crate) fn invalid(&self, reason: String) -> StorageError {
        StorageError::Unavailable {
            key: self.bucket.clone(),
            reason,
        }
    }
}
