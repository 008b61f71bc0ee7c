//! Checked notification settings: plain data the config module builds and the notifier
//! runs. Kept apart from the sending code so the config module (which the config fuzz
//! target compiles on its own) depends on nothing that does IO.

use std::collections::BTreeSet;
use std::time::Duration;

use http::HeaderMap;
use serde::Serialize;

/// Checked `notifications` settings.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// `events.includereferences`.
    pub include_references: bool,
    /// The endpoints that are not disabled.
    pub endpoints: Vec<EndpointSettings>,
}

/// Events waiting per endpoint unless configured (`queuesize`).
/// Distribution's queue has no bound; an event is about 1 KiB.
pub const DEFAULT_QUEUE_SIZE: usize = 10_000;

/// A checked endpoint configuration.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// Names the endpoint in logs and metrics.
    pub name: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: url::Url,
    /// Sent with every POST.
    pub headers: HeaderMap,
    /// Longest a POST may take.
    pub timeout: Duration,
    /// Failures in a row after which each retry first waits `backoff`.
    pub threshold: u32,
    /// The wait between retries once `threshold` failures ran.
    pub backoff: Duration,
    /// Events whose target has one of these media types are not sent.
    pub ignored_media_types: BTreeSet<String>,
    /// Events with one of these actions are not sent.
    pub ignored_actions: BTreeSet<Action>,
    /// Events waiting at most; more are dropped.
    pub queue_size: usize,
}

/// What was done to which content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A manifest stored or a blob upload completed.
    Push,
    /// A manifest or blob read, `HEAD` included.
    Pull,
    /// A blob linked from another repository.
    Mount,
    /// A manifest, tag or blob removed.
    Delete,
}

impl Action {
    /// Parses `push`, `pull`, `mount` or `delete`.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "push" => Some(Action::Push),
            "pull" => Some(Action::Pull),
            "mount" => Some(Action::Mount),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}
