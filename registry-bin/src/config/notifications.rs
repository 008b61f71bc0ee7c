//! `notifications.*`: webhooks with the keys of CNCF Distribution's
//! `config.yml`, so a team's existing endpoint list works unchanged.
//!
//! ```yaml
//! notifications:
//!   events:
//!     includereferences: true        # manifest events list config, layers, children
//!   endpoints:
//!     - name: ci
//!       url: https://ci.example.com/registry-events
//!       headers:
//!         Authorization: [Bearer <token>]
//!       timeout: 1s                  # each POST
//!       threshold: 10                # failures in a row before backing off
//!       backoff: 1s                  # wait between retries once backing off
//!       disabled: false
//!       ignoredmediatypes: [application/octet-stream]
//!       ignore:
//!         mediatypes: [application/vnd.oci.image.config.v1+json]
//!         actions: [pull]
//!       queuesize: 10000             # not Distribution's: events kept while the endpoint is down
//! ```
//!
//! As in Distribution, a zero `timeout`, `threshold` or `backoff` means the
//! default (1s, 10, 1s).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::{duration, lenient_bool, lenient_u64, ConfigError};
use crate::notify::settings::{Action, EndpointSettings, NotifySettings, DEFAULT_QUEUE_SIZE};

/// `notifications.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// What events carry.
    pub events: EventsConfig,
    /// Where events go.
    pub endpoints: Vec<EndpointConfig>,
}

/// `notifications.events.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Manifest events list the descriptors the manifest references.
    #[serde(deserialize_with = "lenient_bool")]
    pub includereferences: bool,
}

/// One entry of `notifications.endpoints`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Names the endpoint in logs and metrics.
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// Header name to values, each value sent as its own header line.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Longest a POST may take; zero: 1s.
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Duration,
    /// Failures in a row before retries wait `backoff`; zero: 10.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub threshold: u64,
    /// Wait between retries once backing off; zero: 1s.
    #[serde(default, deserialize_with = "duration")]
    pub backoff: Duration,
    /// Configured but not used.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disabled: bool,
    /// Target media types not sent (older spelling of `ignore.mediatypes`).
    #[serde(default)]
    pub ignoredmediatypes: Vec<String>,
    /// Media types and actions not sent.
    #[serde(default)]
    pub ignore: IgnoreConfig,
    /// Events kept for the endpoint at most (this registry's key).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub queuesize: u64,
}

/// `notifications.endpoints[].ignore.*`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IgnoreConfig {
    /// Target media types not sent.
    pub mediatypes: Vec<String>,
    /// `pull`, `push`, `mount` or `delete`.
    pub actions: Vec<String>,
}

fn invalid(index: usize, field: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: format!("notifications.endpoints[{index}].{field}"),
        message,
    }
}

fn endpoint(index: usize, raw: &EndpointConfig) -> Result<EndpointSettings, ConfigError> {
    let err = |field, message| invalid(index, field, message);
    if raw.name.trim().is_empty() || raw.name.chars().any(char::is_control) {
        return Err(err(
            "name",
            format!("{:?} must be a non-empty name", raw.name),
        ));
    }
    let url = url::Url::parse(&raw.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            err(
                "url",
                format!("{:?} is not an http:// or https:// URL", raw.url),
            )
        })?;
    let mut headers = HeaderMap::new();
    for (name, values) in &raw.headers {
        let header = HeaderName::try_from(name.as_str())
            .map_err(|_| err("headers", format!("{name:?} is not a header name")))?;
        for value in values {
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| err("headers", format!("the value of {name} is not header text")))?;
            headers.append(header.clone(), value);
        }
    }
    let actions = raw
        .ignore
        .actions
        .iter()
        .map(|a| {
            Action::parse(a).ok_or_else(|| {
                err(
                    "ignore.actions",
                    format!("{a:?} is not pull, push, mount or delete"),
                )
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    let or = |d: Duration, default| if d.is_zero() { default } else { d };
    Ok(EndpointSettings {
        name: raw.name.clone(),
        url,
        headers,
        timeout: or(raw.timeout, Duration::from_secs(1)),
        threshold: match raw.threshold {
            0 => 10,
            n => u32::try_from(n).map_err(|_| err("threshold", format!("{n} is too large")))?,
        },
        backoff: or(raw.backoff, Duration::from_secs(1)),
        ignored_media_types: raw
            .ignore
            .mediatypes
            .iter()
            .chain(&raw.ignoredmediatypes)
            .cloned()
            .collect(),
        ignored_actions: actions,
        queue_size: match raw.queuesize {
            0 => DEFAULT_QUEUE_SIZE,
            n => usize::try_from(n).map_err(|_| err("queuesize", format!("{n} is too large")))?,
        },
    })
}

/// Checks the section; disabled endpoints are left out.
pub fn notify_settings(c: &NotificationsConfig) -> Result<NotifySettings, ConfigError> {
    let mut names = BTreeSet::new();
    let mut endpoints = Vec::new();
    for (index, raw) in c.endpoints.iter().enumerate() {
        let checked = endpoint(index, raw)?;
        if !names.insert(raw.name.clone()) {
            return Err(invalid(
                index,
                "name",
                format!(
                    "{:?} names two endpoints (names label their metrics)",
                    raw.name
                ),
            ));
        }
        if !raw.disabled {
            endpoints.push(checked);
        }
    }
    Ok(NotifySettings {
        include_references: c.events.includereferences,
        endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<NotifySettings, ConfigError> {
        let c: NotificationsConfig = serde_yaml_ng::from_str(yaml).unwrap();
        notify_settings(&c)
    }

    #[test]
    fn distribution_keys_and_defaults() {
        let s = one(
            "events:\n  includereferences: true\nendpoints:\n  - name: ci\n    url: http://127.0.0.1:9/hook\n    headers:\n      Authorization: [Bearer t]\n      X-Multi: [a, b]\n    timeout: 500ms\n    threshold: 3\n    backoff: 2s\n    ignoredmediatypes: [application/octet-stream]\n    ignore:\n      mediatypes: [x/y]\n      actions: [pull, mount]\n  - name: off\n    url: https://example.com/\n    disabled: true\n",
        )
        .unwrap();
        assert!(s.include_references);
        assert_eq!(s.endpoints.len(), 1, "the disabled endpoint is left out");
        let e = &s.endpoints[0];
        assert_eq!(e.timeout, Duration::from_millis(500));
        assert_eq!((e.threshold, e.backoff), (3, Duration::from_secs(2)));
        assert_eq!(e.headers.get_all("x-multi").iter().count(), 2);
        assert!(e.ignored_media_types.contains("application/octet-stream"));
        assert!(e.ignored_media_types.contains("x/y"));
        assert_eq!(
            e.ignored_actions,
            BTreeSet::from([Action::Pull, Action::Mount])
        );
        assert_eq!(e.queue_size, DEFAULT_QUEUE_SIZE);

        let d = one("endpoints:\n  - name: d\n    url: http://h/\n").unwrap();
        let d = &d.endpoints[0];
        assert_eq!(
            (d.timeout, d.threshold, d.backoff),
            (Duration::from_secs(1), 10, Duration::from_secs(1))
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            ("url: ftp://h/", "notifications.endpoints[0].url"),
            ("url: not a url", "notifications.endpoints[0].url"),
            (
                "url: http://h/\n    headers:\n      'bad name': [x]",
                "notifications.endpoints[0].headers",
            ),
            (
                "url: http://h/\n    ignore:\n      actions: [pul]",
                "notifications.endpoints[0].ignore.actions",
            ),
        ];
        for (rest, key) in cases {
            let err = one(&format!("endpoints:\n  - name: a\n    {rest}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("{key}: ")), "{key}: {err}");
        }
        let err =
            one("endpoints:\n  - name: a\n    url: http://h/\n  - name: a\n    url: http://i/\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("notifications.endpoints[1].name: "),
            "{err}"
        );
        let wrong_type: Result<NotificationsConfig, _> = serde_yaml_ng::from_str(
            "endpoints:\n  - name: a\n    url: http://h/\n    timeout: soon\n",
        );
        assert!(wrong_type.unwrap_err().to_string().contains("timeout"));
    }
}
