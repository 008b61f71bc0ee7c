//! The configuration file: YAML with key names that users of the standard
//! registry's `config.yml` know, overridden by `REGISTRY_*` environment
//! variables, overridden in turn by command-line flags.
//!
//! ```yaml
//! version: 0.1
//! log:
//!   level: info                  # error | warn | info | debug | trace
//!   formatter: text              # text | json
//! storage:
//!   filesystem:
//!     rootdirectory: /var/lib/registry
//!   delete:
//!     enabled: true
//! auth:
//!   htpasswd:
//!     realm: Registry
//!     path: /etc/registry/auth/htpasswd
//! http:
//!   addr: 0.0.0.0:5000
//!   host: https://registry.example.com   # absolute Location headers
//!   relativeurls: true                   # Location headers as paths
//!   tls:
//!     certificate: /etc/registry/tls/tls.crt
//!     key: /etc/registry/tls/tls.key
//!   debug:
//!     addr: 0.0.0.0:5001                 # metrics without auth
//!     prometheus:
//!       enabled: true
//!       path: /metrics
//! ```
//!
//! Unknown keys and wrong types are errors that name the key and the line.

mod load;
mod settings;

pub use load::{load, parse_str, ConfigError, KEYS};
pub use settings::{LogFormat, Settings, UrlMode};

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// The file as written. Every section is optional; defaults are the
/// quick-start defaults (loopback, `./data`, auth off).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Accepted for compatibility with the standard registry; ignored.
    pub version: Option<serde_yaml::Value>,
    /// Logging.
    pub log: LogConfig,
    /// Where content is stored.
    pub storage: StorageConfig,
    /// Who may come in.
    pub auth: AuthConfig,
    /// The listener.
    pub http: HttpConfig,
}

/// `log.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter).
    pub level: String,
    /// `text` or `json`.
    pub formatter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            formatter: "text".into(),
        }
    }
}

/// `storage.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The filesystem driver.
    pub filesystem: FilesystemConfig,
    /// Deletes.
    pub delete: DeleteConfig,
}

/// `storage.filesystem.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// The storage folder.
    pub rootdirectory: PathBuf,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            rootdirectory: PathBuf::from("./data"),
        }
    }
}

/// `storage.delete.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteConfig {
    /// Whether DELETE of manifests, tags and blobs is allowed.
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
}

impl Default for DeleteConfig {
    fn default() -> Self {
        DeleteConfig { enabled: true }
    }
}

/// `auth.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Basic auth from an htpasswd file; absent means auth is off.
    pub htpasswd: Option<HtpasswdConfig>,
    /// Serve a non-loopback address without auth.
    #[serde(deserialize_with = "lenient_bool")]
    pub anonymous: bool,
}

/// `auth.htpasswd.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdConfig {
    /// Realm of the `WWW-Authenticate` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// The htpasswd file (bcrypt entries only).
    pub path: PathBuf,
}

fn default_realm() -> String {
    "Registry Realm".into()
}

/// `http.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `HOST:PORT`, or `:PORT` for every interface.
    pub addr: String,
    /// External base URL (`https://registry.example.com`) for absolute
    /// `Location` headers.
    pub host: Option<String>,
    /// `Location` headers as paths (the default), right behind any proxy.
    #[serde(deserialize_with = "lenient_bool")]
    pub relativeurls: bool,
    /// Built-in HTTPS.
    pub tls: Option<TlsConfig>,
    /// A second listener for metrics, without auth.
    pub debug: Option<DebugConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:5000".into(),
            host: None,
            relativeurls: true,
            tls: None,
            debug: None,
        }
    }
}

/// `http.tls.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `http.debug.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Address of the metrics listener.
    pub addr: String,
    /// Prometheus exposition.
    #[serde(default)]
    pub prometheus: PrometheusConfig,
}

/// `http.debug.prometheus.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Serve metrics on the debug listener.
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Path of the metrics endpoint.
    pub path: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            enabled: true,
            path: "/metrics".into(),
        }
    }
}

/// Accepts YAML booleans and, from environment variables, the strings
/// `true`/`false` (any case), `1`/`0`, `yes`/`no`, `on`/`off`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<bool, E> {
            Ok(b)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<bool, E> {
            match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
            }
        }
    }
    d.deserialize_any(Flag)
}
