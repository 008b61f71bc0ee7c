//! The validated settings the server runs with, resolved from the file,
//! the environment and the flags.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use registry_auth::{AccessRules, Action, Pattern, Rule};

use registry_core::gc::RetentionPolicies;

use super::s3::S3Settings;
use super::{AccessRuleConfig, Config, ConfigError, GcConfig, Span, TlsConfig, UpstreamSettings};
use crate::notify::settings::NotifySettings;

/// Slow-client limits and resource caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Request headers, and the wait for the next request on a connection.
    pub header_timeout: Duration,
    /// Longest pause inside a request body.
    pub body_timeout: Duration,
    /// Longest a connection may neither read nor write.
    pub idle_timeout: Duration,
    /// Upload requests at once.
    pub uploads: usize,
    /// Failed logins allowed per address and per user within `throttle_window`.
    pub throttle_failures: u32,
    /// The throttle window.
    pub throttle_window: Duration,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How `Location` headers are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlMode {
    /// Paths only (`/v2/...`); clients resolve them against the URL they
    /// used, so they are right behind any proxy.
    Relative,
    /// Absolute, from `X-Forwarded-Proto`/`X-Forwarded-Host` or `Host`.
    FromRequest,
    /// Absolute, on a fixed base such as `https://registry.example.com`.
    Fixed(String),
}

/// `auth.token`, checked: where clients get tokens and what makes one good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The token server's URL (the challenge's `realm`).
    pub realm: String,
    /// The challenge's `service`, and the audience tokens must name.
    pub service: String,
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// The PEM root bundle.
    pub rootcertbundle: PathBuf,
}

/// Where the registry keeps its data: `storage.filesystem` or `storage.s3`.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// Files under this folder.
    Filesystem(PathBuf),
    /// A bucket of an S3-compatible object store.
    S3(Box<S3Settings>),
}

impl std::fmt::Display for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSettings::Filesystem(root) => write!(f, "{}", root.display()),
            StorageSettings::S3(s3) => {
                write!(f, "s3 bucket {} at {}", s3.bucket, s3.endpoint)?;
                if !s3.root.is_empty() {
                    write!(f, " under {}/", s3.root)?;
                }
                Ok(())
            }
        }
    }
}

/// Everything `registry serve` needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listener address.
    pub addr: SocketAddr,
    /// Where the registry keeps its data.
    pub storage: StorageSettings,
    /// Blob GETs answered with a 307 to a presigned URL of the store (`storage.redirect`,
    /// S3 only: files are always served by the registry, as in the standard registry).
    pub redirect: bool,
    /// DELETE allowed.
    pub delete_enabled: bool,
    /// Pushes and deletes refused; no maintenance writes either.
    pub read_only: bool,
    /// Garbage collection and retention.
    pub gc: GcSettings,
    /// htpasswd file and realm; `None` is auth off (unless `token`).
    pub htpasswd: Option<(PathBuf, String)>,
    /// Bearer tokens from a token server; never together with `htpasswd`.
    pub token: Option<TokenSettings>,
    /// Serve a public address without auth.
    pub allow_anonymous: bool,
    /// Tracing filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// `Location` style.
    pub urls: UrlMode,
    /// Built-in HTTPS.
    pub tls: Option<TlsConfig>,
    /// Metrics listener and path, when enabled.
    pub metrics: Option<(SocketAddr, String)>,
    /// Per-repository access rules; `None`: authenticated users may do everything.
    pub access: Option<Arc<AccessRules>>,
    /// Abandoned uploads older than `.0` are removed every `.1`.
    pub upload_purging: Option<(Duration, Duration)>,
    /// Timeouts and caps.
    pub limits: Limits,
    /// Notification endpoints.
    pub notifications: NotifySettings,
    /// Where the web page is mounted; `None` when it is off.
    pub ui_prefix: Option<String>,
    /// Pull-through cache upstreams (`proxy`); empty: no cache.
    pub upstreams: Vec<UpstreamSettings>,
}

/// The page's mount point when it is on: an absolute path of plain
/// characters, never under the API's `/v2`.
fn ui_prefix(ui: &super::UiConfig) -> Result<Option<String>, ConfigError> {
    if !ui.enabled {
        return Ok(None);
    }
    let prefix = ui.prefix.trim();
    let plain = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
    let api = prefix.trim_end_matches('/') == "/v2" || prefix.starts_with("/v2/");
    if !prefix.starts_with('/') || !plain || api || prefix.contains("//") {
        return Err(ConfigError::Invalid {
            key: "http.ui.prefix".into(),
            message: format!(
                "{prefix:?} must be a path such as / or /ui (letters, digits, - . _ ~), not under /v2"
            ),
        });
    }
    Ok(Some(prefix.to_owned()))
}

/// `storage.gc`, checked.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// How often the server runs a pass; `None`: only `registry gc` does.
    pub interval: Option<Duration>,
    /// The grace period.
    pub delay: Duration,
    /// The validated retention policies.
    pub retention: RetentionPolicies,
    /// The pull-through cache's eviction rules (`proxy.upstreams[].evict`).
    pub evict: Vec<EvictRule>,
}

/// One upstream's eviction rule: what is cached under `prefix` and not pulled for
/// `after` goes. Plain data, so this module stays free of the storage crate (the fuzz
/// target compiles it alone); garbage collection takes it as `registry_storage::Eviction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictRule {
    /// The upstream's repository prefix.
    pub prefix: String,
    /// The window.
    pub after: Duration,
}

impl GcSettings {
    fn from_config(c: &GcConfig) -> Result<GcSettings, ConfigError> {
        if c.interval.is_some_and(|i| i.is_zero()) {
            return Err(ConfigError::Invalid {
                key: "storage.gc.interval".into(),
                message: "must be more than zero (leave it out for no schedule)".into(),
            });
        }
        let retention = RetentionPolicies::new(&c.retention, |d: &Span| {
            // The unit of every time given to the mark (registry-storage's gc.rs).
            u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX)
        })
        .map_err(|e| {
            let dot = if e.field.is_empty() || e.field.starts_with('.') {
                ""
            } else {
                "."
            };
            ConfigError::Invalid {
                key: format!("storage.gc.retention[{}]{dot}{}", e.policy, e.field),
                message: e.kind.to_string(),
            }
        })?;
        Ok(GcSettings {
            interval: c.interval,
            delay: c.delay,
            retention,
            evict: Vec::new(),
        })
    }

    /// Adds the eviction rule of every upstream that has one.
    fn evicting(mut self, upstreams: &[UpstreamSettings]) -> GcSettings {
        self.evict = upstreams
            .iter()
            .filter_map(|u| {
                Some(EvictRule {
                    prefix: u.prefix.as_ref()?.to_string(),
                    after: u.evict?,
                })
            })
            .collect();
        self
    }
}

/// Parses `HOST:PORT`, `[v6]:PORT` or `:PORT` (every interface).
pub fn parse_addr(key: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: key.to_owned(),
        message,
    };
    if let Some(port) = s.strip_prefix(':') {
        let port = port
            .parse()
            .map_err(|_| invalid(format!("{s:?} is not HOST:PORT or :PORT")))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    match s.rsplit_once(':') {
        Some(("localhost", port)) => port
            .parse()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| invalid(format!("{s:?} has an invalid port"))),
        _ => Err(invalid(format!(
            "{s:?} is not an IP address and port such as 0.0.0.0:5000 or :5000"
        ))),
    }
}

fn check_host(host: &str) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "http.host".into(),
        message,
    };
    let rest = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .ok_or_else(|| invalid(format!("{host:?} must start with https:// or http://")))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains(['?', '#', ' ']) {
        return Err(invalid(format!(
            "{host:?} must be a scheme and host only, such as https://registry.example.com"
        )));
    }
    Ok(host.trim_end_matches('/').to_owned())
}

fn rule_error(index: usize, field: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: format!("auth.access[{index}].{field}"),
        message,
    }
}

fn rule(index: usize, raw: &AccessRuleConfig) -> Result<Rule, ConfigError> {
    let repository = Pattern::parse(&raw.repository).ok_or_else(|| {
        rule_error(
            index,
            "repository",
            format!(
                "{:?} is not a repository name pattern (lowercase name characters, / and *)",
                raw.repository
            ),
        )
    })?;
    let actions = raw
        .actions
        .iter()
        .map(|a| match a.as_str() {
            "pull" => Ok(Action::Pull),
            "push" => Ok(Action::Push),
            "delete" => Ok(Action::Delete),
            other => Err(rule_error(
                index,
                "actions",
                format!("{other:?} is not pull, push or delete"),
            )),
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if actions.is_empty() {
        return Err(rule_error(index, "actions", "grants no action".into()));
    }
    Ok(Rule {
        repository,
        users: raw.users.iter().cloned().collect(),
        groups: raw.groups.iter().cloned().collect(),
        anonymous: raw.anonymous,
        actions,
    })
}

fn access_rules(c: &Config) -> Result<Option<Arc<AccessRules>>, ConfigError> {
    let Some(raw) = &c.auth.access else {
        return Ok(None);
    };
    let rules = raw
        .iter()
        .enumerate()
        .map(|(i, r)| rule(i, r))
        .collect::<Result<Vec<_>, _>>()?;
    let groups: BTreeMap<String, BTreeSet<String>> = c
        .auth
        .groups
        .iter()
        .map(|(name, users)| (name.clone(), users.iter().cloned().collect()))
        .collect();
    AccessRules::new(rules, groups)
        .map(|r| Some(Arc::new(r)))
        .map_err(|e| ConfigError::Invalid {
            key: "auth.access".into(),
            message: e.to_string(),
        })
}

/// `auth.token`, refused with htpasswd (one authority per registry) and
/// with `autoredirect: true` (not implemented).
fn token_settings(c: &Config) -> Result<Option<TokenSettings>, ConfigError> {
    let Some(t) = &c.auth.token else {
        return Ok(None);
    };
    let invalid = |key: &str, message: &str| ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    };
    if c.auth.htpasswd.is_some() {
        return Err(invalid(
            "auth.token",
            "auth.htpasswd and auth.token are both set: a registry takes basic auth \
             or tokens, not both; remove one",
        ));
    }
    if t.autoredirect {
        return Err(invalid(
            "auth.token.autoredirect",
            "true is not supported (this registry does not serve its own token realm); \
             set false and point auth.token.realm at the token server",
        ));
    }
    for (key, value) in [
        ("auth.token.realm", &t.realm),
        ("auth.token.service", &t.service),
        ("auth.token.issuer", &t.issuer),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
    }
    if t.rootcertbundle.as_os_str().is_empty() {
        return Err(invalid("auth.token.rootcertbundle", "must not be empty"));
    }
    Ok(Some(TokenSettings {
        realm: t.realm.clone(),
        service: t.service.clone(),
        issuer: t.issuer.clone(),
        rootcertbundle: t.rootcertbundle.clone(),
    }))
}

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl Settings {
    /// Validates a loaded config.
    pub fn from_config(c: &Config) -> Result<Settings, ConfigError> {
        let level = c.log.level.trim().to_owned();
        if level.is_empty() || (!level.contains(['=', ',']) && !LEVELS.contains(&level.as_str())) {
            return Err(ConfigError::Invalid {
                key: "log.level".into(),
                message: format!("{level:?} is not one of error, warn, info, debug, trace"),
            });
        }
        let log_format = match c.log.formatter.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    key: "log.formatter".into(),
                    message: format!("{other:?} is not text or json"),
                })
            }
        };
        let urls = match (&c.http.host, c.http.relativeurls) {
            (Some(host), _) => UrlMode::Fixed(check_host(host)?),
            (None, true) => UrlMode::Relative,
            (None, false) => UrlMode::FromRequest,
        };
        let metrics = match &c.http.debug {
            Some(debug) if debug.prometheus.enabled => {
                if !debug.prometheus.path.starts_with('/') {
                    return Err(ConfigError::Invalid {
                        key: "http.debug.prometheus.path".into(),
                        message: format!("{:?} must start with /", debug.prometheus.path),
                    });
                }
                Some((
                    parse_addr("http.debug.addr", &debug.addr)?,
                    debug.prometheus.path.clone(),
                ))
            }
            _ => None,
        };
        if c.storage.filesystem.rootdirectory.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "storage.filesystem.rootdirectory".into(),
                message: "must not be empty".into(),
            });
        }
        let positive = |key: &str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::Invalid {
                    key: key.into(),
                    message: "must be more than zero".into(),
                })
            } else {
                Ok(d)
            }
        };
        let purging = &c.storage.maintenance.uploadpurging;
        // Read-only storage is not written by maintenance either (the standard registry
        // also stops purging uploads then).
        let read_only = c.storage.maintenance.readonly.enabled;
        let upload_purging = if purging.enabled && !read_only {
            Some((
                positive("storage.maintenance.uploadpurging.age", purging.age)?,
                positive(
                    "storage.maintenance.uploadpurging.interval",
                    purging.interval,
                )?,
            ))
        } else {
            None
        };
        let limits = Limits {
            header_timeout: positive("http.timeouts.header", c.http.timeouts.header)?,
            body_timeout: positive("http.timeouts.body", c.http.timeouts.body)?,
            idle_timeout: positive("http.timeouts.idle", c.http.timeouts.idle)?,
            uploads: usize::try_from(c.http.limits.uploads)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "http.limits.uploads".into(),
                    message: "must be at least 1".into(),
                })?,
            throttle_failures: u32::try_from(c.auth.throttle.failures)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "auth.throttle.failures".into(),
                    message: "must be at least 1".into(),
                })?,
            throttle_window: positive("auth.throttle.window", c.auth.throttle.window)?,
        };
        let token = token_settings(c)?;
        if c.auth.access.is_some() && token.is_some() {
            return Err(ConfigError::Invalid {
                key: "auth.access".into(),
                message: "access rules are for htpasswd users; with auth.token the token's \
                          access claim says what each request may do"
                    .into(),
            });
        }
        if c.auth.access.is_some() && c.auth.htpasswd.is_none() {
            return Err(ConfigError::Invalid {
                key: "auth.access".into(),
                message: "access rules need users: set auth.htpasswd.path".into(),
            });
        }
        let upstreams = c.proxy.check()?;
        let gc = GcSettings::from_config(&c.storage.gc)?.evicting(&upstreams);
        Ok(Settings {
            notifications: super::notifications::notify_settings(&c.notifications)?,
            ui_prefix: ui_prefix(&c.http.ui)?,
            token,
            upstreams,
            access: access_rules(c)?,
            upload_purging,
            limits,
            addr: parse_addr("http.addr", &c.http.addr)?,
            storage: match &c.storage.s3 {
                Some(s3) => StorageSettings::S3(Box::new(s3.check()?)),
                None => StorageSettings::Filesystem(c.storage.filesystem.rootdirectory.clone()),
            },
            redirect: c.storage.s3.is_some()
                && c.storage.redirect.as_ref().is_some_and(|r| !r.disable),
            delete_enabled: c.storage.delete.enabled,
            read_only,
            gc,
            htpasswd: c
                .auth
                .htpasswd
                .as_ref()
                .map(|h| (h.path.clone(), h.realm.clone())),
            allow_anonymous: c.auth.anonymous,
            log_level: level,
            log_format,
            urls,
            tls: c.http.tls.clone(),
            metrics,
        })
    }

    /// Refuses an open registry on a public address unless asked for.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.htpasswd.is_none()
            && self.token.is_none()
            && !self.addr.ip().is_loopback()
            && !self.allow_anonymous
        {
            return Err(format!(
                "refusing to serve {} without authentication: anyone who can reach it could push and pull.\n\
                 Create an htpasswd file (`registry htpasswd USER > htpasswd` or `htpasswd -Bbn USER PASSWORD > htpasswd`)\n\
                 and pass `--htpasswd htpasswd` (config: auth.htpasswd.path),\n\
                 or pass `--allow-anonymous` (config: auth.anonymous: true) if this network is trusted.",
                self.addr
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(edit: impl FnOnce(&mut Config)) -> Result<Settings, ConfigError> {
        let mut c = Config::default();
        edit(&mut c);
        Settings::from_config(&c)
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("http.addr", ":5000").unwrap().to_string(),
            "0.0.0.0:5000"
        );
        assert_eq!(
            parse_addr("http.addr", "[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert_eq!(
            parse_addr("http.addr", "localhost:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        let err = parse_addr("http.addr", "example.com:80")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("http.addr: "), "{err}");
        assert!(parse_addr("http.addr", ":99999").is_err());
    }

    #[test]
    fn invalid_values_name_their_key() {
        type Edit = Box<dyn FnOnce(&mut Config)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("log.level", Box::new(|c| c.log.level = "loud".into())),
            (
                "log.formatter",
                Box::new(|c| c.log.formatter = "xml".into()),
            ),
            (
                "http.host",
                Box::new(|c| c.http.host = Some("registry.example.com".into())),
            ),
            (
                "http.host",
                Box::new(|c| c.http.host = Some("https://r.example.com/v2".into())),
            ),
            ("http.addr", Box::new(|c| c.http.addr = "nowhere".into())),
            (
                "storage.filesystem.rootdirectory",
                Box::new(|c| c.storage.filesystem.rootdirectory = "".into()),
            ),
        ];
        for (key, edit) in cases {
            let err = settings(edit).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key}: ")), "{key}: {err}");
        }
    }

    fn token(autoredirect: bool) -> super::super::TokenConfig {
        super::super::TokenConfig {
            realm: "https://auth.example.com/token".into(),
            service: "registry.example.com".into(),
            issuer: "auth.example.com".into(),
            rootcertbundle: "/etc/token-ca.pem".into(),
            autoredirect,
        }
    }

    #[test]
    fn token_auth_settings() {
        let s = settings(|c| {
            c.auth.token = Some(token(false));
            c.http.addr = ":5000".into();
        })
        .unwrap();
        let t = s.token.as_ref().unwrap();
        assert_eq!(t.service, "registry.example.com");
        assert!(s.htpasswd.is_none());
        assert!(s.check_exposure().is_ok(), "tokens are auth");
    }

    #[test]
    fn token_refusals_name_their_keys() {
        let err = settings(|c| c.auth.token = Some(token(true)))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("auth.token.autoredirect: "), "{err}");
        let err = settings(|c| {
            c.auth.token = Some(token(false));
            c.auth.htpasswd = Some(super::super::HtpasswdConfig {
                realm: "r".into(),
                path: "/h".into(),
            });
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("auth.htpasswd") && err.contains("auth.token"),
            "{err}"
        );
        let err = settings(|c| {
            c.auth.token = Some(token(false));
            c.auth.access = Some(Vec::new());
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("auth.access: "), "{err}");
        let err = settings(|c| {
            let mut t = token(false);
            t.service = " ".into();
            c.auth.token = Some(t);
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("auth.token.service: "), "{err}");
    }

    #[test]
    fn url_modes() {
        assert_eq!(settings(|_| {}).unwrap().urls, UrlMode::Relative);
        assert_eq!(
            settings(|c| c.http.relativeurls = false).unwrap().urls,
            UrlMode::FromRequest
        );
        let s = settings(|c| c.http.host = Some("https://r.example.com/".into())).unwrap();
        assert_eq!(s.urls, UrlMode::Fixed("https://r.example.com".into()));
    }

    #[test]
    fn exposure_needs_auth_or_consent() {
        let public = |anonymous| {
            settings(|c| {
                c.http.addr = ":5000".into();
                c.auth.anonymous = anonymous;
            })
        };
        let err = public(false).unwrap().check_exposure().unwrap_err();
        assert!(
            err.contains("--htpasswd") && err.contains("--allow-anonymous"),
            "{err}"
        );
        assert!(public(true).unwrap().check_exposure().is_ok());
        assert!(settings(|_| {}).unwrap().check_exposure().is_ok());
    }

    /// `storage.redirect` is off unless its section is written with `disable: false`,
    /// and only S3 storage can redirect.
    #[test]
    fn redirect_needs_the_section_and_s3() {
        let s3 = "  s3:\n    region: us-east-1\n    bucket: b\n";
        for (storage, redirect) in [
            (s3.to_owned(), false),
            (format!("{s3}  redirect:\n    disable: false\n"), true),
            (format!("{s3}  redirect:\n    disable: true\n"), false),
            ("  redirect:\n    disable: false\n".to_owned(), false),
        ] {
            let c = super::super::load::parse_str(&format!("storage:\n{storage}")).unwrap();
            let settings = Settings::from_config(&c).unwrap();
            assert_eq!(settings.redirect, redirect, "{storage}");
        }
    }
}
