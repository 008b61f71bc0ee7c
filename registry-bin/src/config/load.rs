//! Reading the file, applying `REGISTRY_*` environment overrides, and
//! reporting errors that name the key, the line, or the variable.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::{compat, Config};

/// Every settable key, as a dotted path. An environment variable names one
/// of them in upper case with `_` for `.`: `REGISTRY_HTTP_TLS_KEY` sets
/// `http.tls.key`.
pub const KEYS: &[&str] = &[
    "log.level",
    "log.formatter",
    "storage.filesystem.rootdirectory",
    "storage.s3.region",
    "storage.s3.regionendpoint",
    "storage.s3.bucket",
    "storage.s3.rootdirectory",
    "storage.s3.accesskey",
    "storage.s3.secretkey",
    "storage.s3.sessiontoken",
    "storage.s3.forcepathstyle",
    "storage.s3.secure",
    "storage.s3.skipverify",
    "storage.s3.chunksize",
    "storage.s3.v4auth",
    "storage.redirect.disable",
    "storage.delete.enabled",
    "storage.maintenance.uploadpurging.enabled",
    "storage.maintenance.uploadpurging.age",
    "storage.maintenance.uploadpurging.interval",
    "storage.maintenance.readonly.enabled",
    "storage.gc.interval",
    "storage.gc.delay",
    "auth.htpasswd.realm",
    "auth.htpasswd.path",
    "auth.token.realm",
    "auth.token.service",
    "auth.token.issuer",
    "auth.token.rootcertbundle",
    "auth.token.autoredirect",
    "auth.anonymous",
    "auth.throttle.failures",
    "auth.throttle.window",
    "http.addr",
    "http.host",
    "http.relativeurls",
    "http.tls.certificate",
    "http.tls.key",
    "http.debug.addr",
    "http.debug.prometheus.enabled",
    "http.debug.prometheus.path",
    "http.timeouts.header",
    "http.timeouts.body",
    "http.timeouts.idle",
    "http.limits.uploads",
    "notifications.events.includereferences",
    "http.ui.enabled",
    "http.ui.prefix",
    "proxy.remoteurl",
    "proxy.username",
    "proxy.password",
    "proxy.ttl",
];

const ENV_PREFIX: &str = "REGISTRY_";

/// A configuration that cannot be used, with what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not match the schema.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// serde's message, which names the key and the line.
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
    },
    /// An environment variable has a value the key cannot take.
    #[error("environment variable {variable}: {message}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// A value parses but makes no sense (an address, a URL, a level).
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Loads `path` (or the defaults when `None`) and applies the `REGISTRY_*`
/// variables among `env`. Returns the config and warnings to log (variables
/// with the prefix that name no key; Kubernetes injects some, such as
/// `REGISTRY_PORT` for a Service named `registry`).
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut tree = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            // Typed parse of the text first: its errors carry line numbers.
            parse_text(path, &text)?;
            let tree: Value =
                serde_yaml_ng::from_str(&text).map_err(|e| file_error(path, &text, &e))?;
            match tree {
                Value::Null => Value::Mapping(Mapping::new()),
                other => other,
            }
        }
        None => Value::Mapping(Mapping::new()),
    };
    let mut warnings = compat::check(&tree)?;
    let mut applied = Vec::new();
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (variable, value) in env {
        let key = variable[ENV_PREFIX.len()..]
            .to_ascii_lowercase()
            .replace('_', ".");
        if !KEYS.contains(&key.as_str()) {
            warnings.push(format!(
                "ignoring {variable}: it names no configuration key"
            ));
            continue;
        }
        set(&mut tree, &key, Value::String(value));
        applied.push(variable);
    }
    let config: Config = serde_yaml_ng::from_value(tree).map_err(|e| ConfigError::Env {
        variable: applied.join(", "),
        message: e.to_string(),
    })?;
    Ok((config, warnings))
}

/// Parses config file text alone: no file, no environment. Errors are
/// [`ConfigError::File`] naming the key and the line, with the path `<text>`.
pub fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse_text(Path::new("<text>"), text)
}

fn parse_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    serde_yaml_ng::from_str::<Config>(text).map_err(|e| file_error(path, text, &e))
}

fn file_error(path: &Path, text: &str, e: &serde_yaml_ng::Error) -> ConfigError {
    let mut message = e.to_string();
    let mut line = e.location().map(|l| l.line());
    if !message.contains(" at line ") {
        // serde_yaml_ng gives no position for an unknown top-level key; find it.
        line = unknown_key(&message).and_then(|key| {
            text.lines()
                .position(|l| {
                    l.trim_end()
                        .strip_prefix(key)
                        .is_some_and(|rest| rest.starts_with(':'))
                })
                .map(|i| i + 1)
        });
        if let Some(n) = line {
            message = format!("{message} at line {n}");
        }
    }
    ConfigError::File {
        path: path.to_owned(),
        message,
        line,
    }
}

/// The key of an "unknown field `key`" message.
fn unknown_key(message: &str) -> Option<&str> {
    message.split("unknown field `").nth(1)?.split('`').next()
}

/// Sets a dotted key in a YAML tree, creating maps on the way and replacing
/// scalars that stand where a map is needed.
fn set(tree: &mut Value, key: &str, value: Value) {
    let mut node = tree;
    for part in key.split('.') {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else { return };
        node = map
            .entry(Value::String(part.to_owned()))
            .or_insert(Value::Null);
    }
    *node = value;
}

#[cfg(test)]
mod tests;
