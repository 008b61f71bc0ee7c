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
//!   # or, instead of htpasswd, tokens from a token server:
//!   # token:
//!   #   realm: https://auth.example.com/token
//!   #   service: registry.example.com
//!   #   issuer: auth.example.com
//!   #   rootcertbundle: /etc/registry/auth/token-ca.pem
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
//! notifications:                         # see notifications.rs
//!   endpoints:
//!     - name: ci
//!       url: https://ci.example.com/events
//! ```
//!
//! Unknown keys and wrong types are errors that name the key and the line.

mod compat;
mod load;
mod notifications;
mod proxy;
mod s3;
mod settings;

pub use load::{load, parse_str, ConfigError, KEYS};
pub use notifications::{EndpointConfig, EventsConfig, IgnoreConfig, NotificationsConfig};
pub use proxy::{Password, ProxyConfig, UpstreamConfig, UpstreamSettings, UpstreamTimeouts};
pub use s3::S3Settings;
pub use settings::{
    GcSettings, Limits, LogFormat, Settings, StorageSettings, TokenSettings, UrlMode,
};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use compat::Foreign;
use registry_core::gc::PolicyConfig;

/// The file as written. Every section is optional; defaults are the
/// quick-start defaults (loopback, `./data`, auth off).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Accepted for compatibility with the standard registry; ignored.
    pub version: Option<serde_yaml_ng::Value>,
    /// Logging.
    pub log: LogConfig,
    /// Where content is stored.
    pub storage: StorageConfig,
    /// Who may come in.
    pub auth: AuthConfig,
    /// The listener.
    pub http: HttpConfig,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub loglevel: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub middleware: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub reporting: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub redis: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub health: Foreign,
    /// The pull-through cache's upstreams (`proxy.rs`).
    pub proxy: ProxyConfig,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub compatibility: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub validation: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub policy: Foreign,
    /// Webhooks for pushes, pulls and deletes (`notifications.rs`).
    pub notifications: NotificationsConfig,
}

/// `log.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter).
    pub level: String,
    /// `text` or `json`.
    pub formatter: String,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub accesslog: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub fields: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub hooks: Foreign,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            formatter: "text".into(),
            accesslog: None,
            fields: None,
            hooks: None,
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
    /// Background maintenance.
    pub maintenance: MaintenanceConfig,
    /// Garbage collection and retention.
    pub gc: GcConfig,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub cache: Foreign,
    /// Blob GETs answered with a redirect to the store (S3 only).
    pub redirect: Option<RedirectConfig>,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub tag: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub inmemory: Foreign,
    /// S3-compatible object storage, instead of `filesystem`.
    pub s3: Option<s3::S3StorageConfig>,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub azure: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub gcs: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub swift: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub oss: Foreign,
}

/// `storage.gc.*`: online garbage collection and retention policies.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// How often the server runs a pass itself; absent: never (run `registry gc`).
    #[serde(deserialize_with = "optional_duration")]
    pub interval: Option<Duration>,
    /// The grace period: nothing uploaded, linked, mounted or answered 200 to a HEAD
    /// within it is swept.
    #[serde(deserialize_with = "duration")]
    pub delay: Duration,
    /// Which tags and untagged manifests each repository keeps; the first policy whose
    /// globs match a repository applies. No policy: everything is kept.
    pub retention: Vec<PolicyConfig<Span>>,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: None,
            delay: Duration::from_secs(3600),
            retention: Vec::new(),
        }
    }
}

/// A duration as the config writes it (`168h`), inside types of other crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        duration(d).map(Span)
    }
}

/// `storage.maintenance.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Removal of abandoned uploads.
    pub uploadpurging: UploadPurgingConfig,
    /// Refusing pushes and deletes.
    pub readonly: ReadOnlyConfig,
}

/// `storage.maintenance.readonly.*`: pulls work, pushes and deletes get 405
/// (for migrations and incidents), as in the standard registry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadOnlyConfig {
    /// Whether the registry refuses writes.
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
}

/// `storage.maintenance.uploadpurging.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadPurgingConfig {
    /// Whether abandoned uploads are removed.
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Uploads older than this are removed with their data.
    #[serde(deserialize_with = "duration")]
    pub age: Duration,
    /// How often to look.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
}

impl Default for UploadPurgingConfig {
    fn default() -> Self {
        UploadPurgingConfig {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}

/// `storage.filesystem.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// The storage folder.
    pub rootdirectory: PathBuf,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub maxthreads: Foreign,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            rootdirectory: PathBuf::from("./data"),
            maxthreads: None,
        }
    }
}

/// `storage.redirect.*`: the standard registry's switch for answering blob GETs with a
/// 307 to a presigned URL of the store. There it is on unless `disable: true`; here it is
/// off unless the section is written (`disable: false`), since a client must then reach
/// the store itself.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectConfig {
    /// Whether blobs are served by the registry after all.
    #[serde(deserialize_with = "lenient_bool")]
    pub disable: bool,
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
    /// Bearer tokens from an external token server (instead of htpasswd).
    pub token: Option<TokenConfig>,
    /// Serve a non-loopback address without auth.
    #[serde(deserialize_with = "lenient_bool")]
    pub anonymous: bool,
    /// Named sets of users, for access rules.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Per-repository grants; absent means every authenticated user may do
    /// everything.
    pub access: Option<Vec<AccessRuleConfig>>,
    /// Limits on failed logins.
    pub throttle: ThrottleConfig,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub silly: Foreign,
}

/// One entry of `auth.access`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// Repository pattern; `*` matches anything, slashes included.
    pub repository: String,
    /// Users by name; `*` for any authenticated user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups from `auth.groups`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Include callers without credentials.
    #[serde(default)]
    pub anonymous: bool,
    /// Any of `pull`, `push`, `delete`.
    pub actions: Vec<String>,
}

/// `auth.throttle.*`: failed logins allowed per client address and per
/// user name within a window before answering 429.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failures allowed per window.
    #[serde(deserialize_with = "lenient_u64")]
    pub failures: u64,
    /// The window, e.g. `60s`, `5m`.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            failures: 10,
            window: Duration::from_secs(60),
        }
    }
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

/// `auth.token.*`: trust tokens from an external token server, as CNCF
/// Distribution's `auth.token` does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// URL of the token server, sent in the `Bearer` challenge.
    pub realm: String,
    /// This registry's name: the `service` clients ask tokens for, and the
    /// audience tokens must name.
    pub service: String,
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// PEM certificates whose keys (or whose chains) sign tokens.
    pub rootcertbundle: PathBuf,
    /// Redirect-to-self of the realm; only `false` is supported.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub autoredirect: bool,
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
    /// Slow-client limits.
    pub timeouts: TimeoutsConfig,
    /// Resource caps.
    pub limits: LimitsConfig,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub net: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub prefix: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub secret: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub draintimeout: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub headers: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub http2: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    pub h2c: Foreign,
    /// The web page.
    pub ui: UiConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:5000".into(),
            host: None,
            relativeurls: true,
            tls: None,
            debug: None,
            timeouts: TimeoutsConfig::default(),
            limits: LimitsConfig::default(),
            net: None,
            prefix: None,
            secret: None,
            draintimeout: None,
            headers: None,
            http2: None,
            h2c: None,
            ui: UiConfig::default(),
        }
    }
}

/// `http.timeouts.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Longest a client may take to send request headers, and to start the
    /// next request on a kept-alive connection.
    #[serde(deserialize_with = "duration")]
    pub header: Duration,
    /// Longest pause between two pieces of a request body.
    #[serde(deserialize_with = "duration")]
    pub body: Duration,
    /// Longest a connection may neither read nor write.
    #[serde(deserialize_with = "duration")]
    pub idle: Duration,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            header: Duration::from_secs(30),
            body: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

/// `http.limits.*`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Upload requests (bodies streaming into storage) at once; more get 429.
    #[serde(deserialize_with = "lenient_u64")]
    pub uploads: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { uploads: 64 }
    }
}

/// `http.ui.*`: the web page, served on the API's port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the page (on by default).
    #[serde(deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Where the page is mounted (`/` by default; `/ui` and the like when
    /// `/` is taken by something in front of the registry).
    pub prefix: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            prefix: "/".into(),
        }
    }
}

/// `http.tls.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    #[serde(default)]
    pub clientcas: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    #[serde(default)]
    pub letsencrypt: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    #[serde(default)]
    pub minimumtls: Foreign,
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    #[serde(default)]
    pub ciphersuites: Foreign,
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
    /// A standard registry key this registry warns about or refuses (`compat.rs`).
    #[serde(default)]
    pub tls: Foreign,
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

/// Like [`lenient_bool`], for a key whose absence means something of its own.
fn optional_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    lenient_bool(d).map(Some)
}

/// A whole number, from YAML or from an environment variable's text.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Number;
    impl serde::de::Visitor<'_> for Number {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<u64, E> {
            s.trim()
                .parse()
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(s), &self))
        }
    }
    d.deserialize_any(Number)
}

/// A duration written `90s`, `30m`, `168h`, `500ms`, or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Span;
    impl serde::de::Visitor<'_> for Span {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as 30s, 5m or 168h")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(n))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
            parse_duration(s).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(s), &self))
        }
    }
    d.deserialize_any(Span)
}

/// [`duration`], for a key that may be absent or null.
fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<Span>::deserialize(d).map(|s| s.map(|s| s.0))
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h` (or none: seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}
