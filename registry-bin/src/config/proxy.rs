//! `proxy.*`: the pull-through cache's upstreams, as written and as checked.
//!
//! Two shapes are accepted. This registry's own, several upstreams each on a repository
//! prefix:
//!
//! ```yaml
//! proxy:
//!   upstreams:
//!     - prefix: docker.io                # pull myregistry/docker.io/library/alpine:3.20
//!       url: https://registry-1.docker.io
//!       username: someone                # optional
//!       passwordfile: /run/secrets/hub   # or password:
//!       ttl: 10m                         # how long a tag is trusted before a HEAD
//!       evict: 720h                      # GC deletes what was not pulled this long
//!       timeouts: {connect: 10s, read: 60s}
//! ```
//!
//! and the standard registry's, `proxy: {remoteurl, username, password, ttl}`, which is an
//! upstream with an empty prefix: repositories stored here win, misses go upstream, and
//! pushes still work.

use std::path::PathBuf;
use std::time::Duration;

use registry_core::RepoName;
use serde::Deserialize;

use super::{duration, optional_duration, ConfigError};

/// How long a tag is trusted when `ttl` is not set (the standard registry's default is
/// a week for blobs; tags move more often, so ten minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// `proxy.*` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// The standard registry's single upstream (an upstream with an empty prefix).
    pub remoteurl: Option<String>,
    /// Its user.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// How long its tags are trusted.
    #[serde(deserialize_with = "optional_duration")]
    pub ttl: Option<Duration>,
    /// Upstreams on repository prefixes.
    pub upstreams: Vec<UpstreamConfig>,
}

/// One entry of `proxy.upstreams`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The repository prefix that is a cache of this upstream (`docker.io`).
    pub prefix: String,
    /// The upstream registry's base URL (`https://registry-1.docker.io`).
    pub url: String,
    /// User for Basic auth or for the token service.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (a mounted Secret); trailing newlines are dropped.
    #[serde(default)]
    pub passwordfile: Option<PathBuf>,
    /// How long a tag is trusted before it is checked again.
    #[serde(default, deserialize_with = "optional_duration")]
    pub ttl: Option<Duration>,
    /// Garbage collection evicts cached content not pulled for this long; absent: never.
    #[serde(default, deserialize_with = "optional_duration")]
    pub evict: Option<Duration>,
    /// Connection and read timeouts.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
}

/// `proxy.upstreams[].timeouts`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTimeouts {
    /// Longest wait for a connection (TCP and TLS).
    #[serde(deserialize_with = "duration")]
    pub connect: Duration,
    /// Longest wait for the next bytes of a response.
    #[serde(deserialize_with = "duration")]
    pub read: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
        }
    }
}

/// Where an upstream's password comes from. `Debug` does not show an inline one.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// Written in the config.
    Inline(String),
    /// Read from this file when the server starts.
    File(PathBuf),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::Inline(_) => f.write_str("Inline(..)"),
            Password::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// A checked upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// The config key it came from (`proxy.upstreams[0]`, `proxy`), for messages.
    pub key: String,
    /// The prefix; `None` for the standard registry's shape (every repository, local first).
    pub prefix: Option<RepoName>,
    /// The base URL without a trailing slash.
    pub url: String,
    /// User and password, when set.
    pub credentials: Option<(String, Password)>,
    /// How long a tag is trusted.
    pub ttl: Duration,
    /// Cached content not pulled for this long goes at the next GC pass; `None`: never.
    /// Only on an upstream with a prefix, where every repository is the cache's.
    pub evict: Option<Duration>,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
}

impl UpstreamSettings {
    /// A name for logs, metrics and error messages: the prefix, or the URL's host.
    pub fn label(&self) -> String {
        match &self.prefix {
            Some(prefix) => prefix.to_string(),
            None => host_of(&self.url).to_owned(),
        }
    }
}

/// The host (and port) of a checked URL.
fn host_of(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

fn invalid(key: String, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

/// An `http(s)://host[:port]` base URL, without a path.
fn check_url(key: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                key.to_owned(),
                format!("{url:?} must start with https:// or http://"),
            )
        })?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(invalid(
            key.to_owned(),
            format!("{url:?} must be a scheme and host only, such as https://registry-1.docker.io"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn credentials(
    key: &str,
    username: &Option<String>,
    password: &Option<String>,
    passwordfile: &Option<PathBuf>,
) -> Result<Option<(String, Password)>, ConfigError> {
    let password = match (password, passwordfile) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{key}.passwordfile"),
                "set password or passwordfile, not both".into(),
            ))
        }
        (Some(p), None) => Some(Password::Inline(p.clone())),
        (None, Some(f)) => Some(Password::File(f.clone())),
        (None, None) => None,
    };
    match (username, password) {
        (Some(user), Some(password)) => Ok(Some((user.clone(), password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(
            format!("{key}.password"),
            "a username needs a password (or passwordfile)".into(),
        )),
        (None, Some(_)) => Err(invalid(
            format!("{key}.username"),
            "a password needs a username".into(),
        )),
    }
}

/// Whether `a` equals `b` or is a parent of it, component by component.
fn covers(a: &RepoName, b: &RepoName) -> bool {
    let (a, b) = (a.as_str(), b.as_str());
    b == a || b.strip_prefix(a).is_some_and(|rest| rest.starts_with('/'))
}

impl ProxyConfig {
    /// The checked upstreams: URLs, credentials, prefixes that are repository names and
    /// that do not overlap, at most one upstream without a prefix.
    pub fn check(&self) -> Result<Vec<UpstreamSettings>, ConfigError> {
        let mut out: Vec<UpstreamSettings> = Vec::new();
        if let Some(url) = &self.remoteurl {
            out.push(UpstreamSettings {
                key: "proxy".into(),
                prefix: None,
                url: check_url("proxy.remoteurl", url)?,
                credentials: credentials("proxy", &self.username, &self.password, &None)?,
                ttl: self.ttl.unwrap_or(DEFAULT_TTL),
                evict: None,
                connect_timeout: UpstreamTimeouts::default().connect,
                read_timeout: UpstreamTimeouts::default().read,
            });
        } else if self.username.is_some() || self.password.is_some() || self.ttl.is_some() {
            return Err(invalid(
                "proxy.remoteurl".into(),
                "proxy.username, proxy.password and proxy.ttl need proxy.remoteurl".into(),
            ));
        }
        for (i, raw) in self.upstreams.iter().enumerate() {
            let key = format!("proxy.upstreams[{i}]");
            let prefix = if raw.prefix.is_empty() {
                None
            } else {
                Some(raw.prefix.parse::<RepoName>().map_err(|_| {
                    invalid(
                        format!("{key}.prefix"),
                        format!(
                            "{:?} is not a repository name (lowercase letters, digits, . _ - and /)",
                            raw.prefix
                        ),
                    )
                })?)
            };
            for other in &out {
                let overlap = match (&prefix, &other.prefix) {
                    (None, None) => true,
                    (Some(a), Some(b)) => covers(a, b) || covers(b, a),
                    _ => false,
                };
                if overlap {
                    return Err(invalid(
                        format!("{key}.prefix"),
                        format!(
                            "{:?} overlaps the prefix of {} ({:?}): a repository must belong to one upstream",
                            raw.prefix,
                            other.key,
                            other.prefix.as_ref().map_or("", |p| p.as_str())
                        ),
                    ));
                }
            }
            for (name, d) in [
                ("connect", raw.timeouts.connect),
                ("read", raw.timeouts.read),
            ] {
                if d.is_zero() {
                    return Err(invalid(
                        format!("{key}.timeouts.{name}"),
                        "must be more than zero".into(),
                    ));
                }
            }
            match (raw.evict, &prefix) {
                (Some(d), _) if d.is_zero() => {
                    return Err(invalid(
                        format!("{key}.evict"),
                        "must be more than zero (leave it out to keep cached content until unused)"
                            .into(),
                    ))
                }
                (Some(_), None) => {
                    return Err(invalid(
                        format!("{key}.evict"),
                        "needs a prefix: without one, pushed and cached repositories cannot be told apart".into(),
                    ))
                }
                _ => {}
            }
            out.push(UpstreamSettings {
                url: check_url(&format!("{key}.url"), &raw.url)?,
                credentials: credentials(&key, &raw.username, &raw.password, &raw.passwordfile)?,
                ttl: raw.ttl.unwrap_or(DEFAULT_TTL),
                evict: raw.evict,
                connect_timeout: raw.timeouts.connect,
                read_timeout: raw.timeouts.read,
                prefix,
                key,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn check(text: &str) -> Result<Vec<UpstreamSettings>, ConfigError> {
        parse_str(text)?.proxy.check()
    }

    fn key_of(text: &str) -> String {
        match check(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn both_shapes_parse() {
        let up = check(
            "proxy:\n  upstreams:\n    - prefix: docker.io\n      url: https://registry-1.docker.io/\n      username: u\n      passwordfile: /run/p\n      ttl: 5m\n      evict: 720h\n      timeouts: {connect: 2s, read: 30s}\n    - prefix: ghcr.io\n      url: http://127.0.0.1:5001\n",
        )
        .unwrap();
        assert_eq!(up.len(), 2);
        assert_eq!(up[0].prefix.as_ref().unwrap().as_str(), "docker.io");
        assert_eq!(up[0].url, "https://registry-1.docker.io");
        assert_eq!(
            up[0].credentials,
            Some(("u".into(), Password::File("/run/p".into())))
        );
        assert_eq!(up[0].ttl, Duration::from_secs(300));
        assert_eq!(up[0].connect_timeout, Duration::from_secs(2));
        assert_eq!(up[1].ttl, DEFAULT_TTL);
        assert_eq!(up[0].evict, Some(Duration::from_secs(720 * 3600)));
        assert_eq!(up[1].evict, None);
        assert_eq!(up[1].label(), "ghcr.io");

        let up = check("proxy:\n  remoteurl: https://registry-1.docker.io\n  username: u\n  password: p\n  ttl: 1h\n").unwrap();
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].prefix, None);
        assert_eq!(up[0].label(), "registry-1.docker.io");
        assert_eq!(
            up[0].credentials,
            Some(("u".into(), Password::Inline("p".into())))
        );
    }

    #[test]
    fn bad_upstreams_name_their_key() {
        let up = |rest: &str| format!("proxy:\n  upstreams:\n{rest}");
        for (text, key) in [
            (up("    - prefix: Docker.io\n      url: https://a\n"), "proxy.upstreams[0].prefix"),
            (up("    - prefix: a//b\n      url: https://a\n"), "proxy.upstreams[0].prefix"),
            (
                up("    - prefix: docker.io\n      url: https://a\n    - prefix: docker.io/library\n      url: https://b\n"),
                "proxy.upstreams[1].prefix",
            ),
            (
                up("    - prefix: a/b\n      url: https://a\n    - prefix: a\n      url: https://b\n"),
                "proxy.upstreams[1].prefix",
            ),
            (
                "proxy:\n  remoteurl: https://a\n  upstreams:\n    - prefix: ''\n      url: https://b\n".into(),
                "proxy.upstreams[0].prefix",
            ),
            (up("    - prefix: a\n      url: ftp://a\n"), "proxy.upstreams[0].url"),
            (up("    - prefix: a\n      url: https://a/v2\n"), "proxy.upstreams[0].url"),
            (
                up("    - prefix: a\n      url: https://a\n      username: u\n"),
                "proxy.upstreams[0].password",
            ),
            (
                up("    - prefix: a\n      url: https://a\n      username: u\n      password: p\n      passwordfile: /f\n"),
                "proxy.upstreams[0].passwordfile",
            ),
            (
                up("    - prefix: a\n      url: https://a\n      timeouts: {read: 0s}\n"),
                "proxy.upstreams[0].timeouts.read",
            ),
            (
                up("    - prefix: a\n      url: https://a\n      evict: 0s\n"),
                "proxy.upstreams[0].evict",
            ),
            (
                up("    - prefix: ''\n      url: https://a\n      evict: 1h\n"),
                "proxy.upstreams[0].evict",
            ),
            ("proxy:\n  username: u\n".into(), "proxy.remoteurl"),
            ("proxy:\n  remoteurl: registry-1.docker.io\n".into(), "proxy.remoteurl"),
        ] {
            assert_eq!(key_of(&text), key, "{text}");
        }
        // Siblings are not overlaps.
        assert!(check(&up(
            "    - prefix: docker.io\n      url: https://a\n    - prefix: docker.io-mirror\n      url: https://b\n"
        ))
        .is_ok());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err = parse_str(
            "proxy:\n  upstreams:\n    - prefix: a\n      url: https://a\n      tll: 5m\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown field `tll`") && err.contains("line 5"),
            "{err}"
        );
        let err = parse_str("proxy:\n  remoteurl: https://a\n  mirrors: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `mirrors`"), "{err}");
    }
}
