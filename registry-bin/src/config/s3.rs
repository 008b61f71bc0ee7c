//! `storage.s3.*`: S3-compatible object storage, with the standard registry's keys.
//!
//! ```yaml
//! storage:
//!   s3:
//!     region: us-east-1
//!     regionendpoint: http://rgw.storage:8080   # absent: AWS
//!     bucket: registry
//!     rootdirectory: /registry                  # optional key prefix
//!     accesskey: ...                            # absent: AWS_ACCESS_KEY_ID and friends
//!     secretkey: ...
//!     forcepathstyle: true                      # bucket in the path, not the host name
//!     secure: true                              # https for the AWS endpoint
//!     skipverify: false
//!     chunksize: 5242880                        # multipart part size, >= 5 MiB
//! ```
//!
//! Every value can also come from `REGISTRY_STORAGE_S3_<KEY>`.

use std::path::PathBuf;

use serde::Deserialize;

use super::{lenient_bool, lenient_u64, optional_bool, ConfigError, Foreign};

/// S3's smallest multipart part but the last.
const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// The default part size: S3's smallest, half the standard registry's 10 MiB. Each
/// upload in flight holds one part in memory until it is sent, so this halves a replica's
/// memory under concurrent pushes; pushes measured as fast with 5 and 10 MiB parts
/// (docs/performance.md). Parts still grow with the blob so that 10,000 suffice.
const DEFAULT_CHUNK: u64 = MIN_CHUNK;

/// `storage.s3`, checked: plain data (the storage crate's client is built from it when
/// the storage opens, so this module stays free of IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The endpoint: `regionendpoint`, or AWS's for the region.
    pub endpoint: url::Url,
    /// The region requests are signed for.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without slashes at either end.
    pub root: String,
    /// Access key, secret key and session token; `None`: from the environment.
    pub credentials: Option<(String, String, Option<String>)>,
    /// Bucket in the path instead of the host name.
    pub path_style: bool,
    /// No TLS certificate checks.
    pub skip_verify: bool,
    /// `AWS_CA_BUNDLE`: more trusted certificates.
    pub ca_bundle: Option<PathBuf>,
    /// Multipart part size.
    pub part_size: u64,
}

/// `storage.s3.*` as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3StorageConfig {
    /// The bucket's region (signing needs it).
    pub region: String,
    /// The S3 endpoint of a store other than AWS.
    pub regionendpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket.
    pub rootdirectory: String,
    /// Access key id; absent: from the environment.
    pub accesskey: Option<String>,
    /// Secret key.
    pub secretkey: Option<String>,
    /// Session token of temporary credentials.
    pub sessiontoken: Option<String>,
    /// Path-style addressing; absent: on with a `regionendpoint` (what most stores other
    /// than AWS need), off for AWS.
    #[serde(deserialize_with = "optional_bool")]
    pub forcepathstyle: Option<bool>,
    /// https (true) or http for the AWS endpoint; a `regionendpoint` says its own scheme.
    #[serde(deserialize_with = "lenient_bool")]
    pub secure: bool,
    /// Skip TLS certificate checks of the endpoint (test setups only).
    #[serde(deserialize_with = "lenient_bool")]
    pub skipverify: bool,
    /// Multipart part size in bytes.
    #[serde(deserialize_with = "lenient_u64")]
    pub chunksize: u64,
    /// Signature version 4 (the only one; `false` is refused).
    #[serde(deserialize_with = "lenient_bool")]
    pub v4auth: bool,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub encrypt: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub keyid: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub storageclass: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub objectacl: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub useragent: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub usedualstack: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub accelerate: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub multipartcopychunksize: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub multipartcopymaxconcurrency: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub multipartcopythresholdsize: Foreign,
    /// A standard registry key this registry warns about (`compat.rs`).
    pub loglevel: Foreign,
}

impl Default for S3StorageConfig {
    fn default() -> Self {
        S3StorageConfig {
            region: String::new(),
            regionendpoint: None,
            bucket: String::new(),
            rootdirectory: String::new(),
            accesskey: None,
            secretkey: None,
            sessiontoken: None,
            forcepathstyle: None,
            secure: true,
            skipverify: false,
            chunksize: DEFAULT_CHUNK,
            v4auth: true,
            encrypt: None,
            keyid: None,
            storageclass: None,
            objectacl: None,
            useragent: None,
            usedualstack: None,
            accelerate: None,
            multipartcopychunksize: None,
            multipartcopymaxconcurrency: None,
            multipartcopythresholdsize: None,
            loglevel: None,
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("storage.s3.{key}"),
        message: message.into(),
    }
}

impl S3StorageConfig {
    /// Checks the keys and builds the client's settings. Credentials absent from the
    /// config come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`); `AWS_CA_BUNDLE` adds trusted certificates.
    pub fn check(&self) -> Result<S3Settings, ConfigError> {
        if self.bucket.is_empty() {
            return Err(invalid("bucket", "must be set"));
        }
        if self.region.is_empty() {
            return Err(invalid(
                "region",
                "must be set (any value for a store without regions, e.g. us-east-1)",
            ));
        }
        if !self.v4auth {
            return Err(invalid("v4auth", "only signature version 4 is implemented"));
        }
        if self.chunksize < MIN_CHUNK {
            return Err(invalid(
                "chunksize",
                format!(
                    "{} is under S3's smallest part, {MIN_CHUNK}",
                    self.chunksize
                ),
            ));
        }
        let endpoint = match &self.regionendpoint {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.secure { "https" } else { "http" };
                format!("{scheme}://s3.{}.amazonaws.com", self.region)
            }
        };
        let endpoint = url::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(
                    "regionendpoint",
                    format!("{endpoint:?} is not an http(s) URL"),
                )
            })?;
        let credentials = match (&self.accesskey, &self.secretkey) {
            (Some(access), Some(secret)) if !access.is_empty() => {
                Some((access.clone(), secret.clone(), self.sessiontoken.clone()))
            }
            (None, None) => None,
            (Some(_), _) => return Err(invalid("secretkey", "must be set with accesskey")),
            (None, Some(_)) => return Err(invalid("accesskey", "must be set with secretkey")),
        };
        Ok(S3Settings {
            endpoint,
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            root: self.rootdirectory.trim_matches('/').to_owned(),
            credentials,
            path_style: self.forcepathstyle.unwrap_or(self.regionendpoint.is_some()),
            skip_verify: self.skipverify,
            ca_bundle: std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            part_size: self.chunksize,
        })
    }
}
