//! Notifications: events about pushes, pulls, mounts and deletes, POSTed to
//! webhooks in the envelope CNCF Distribution uses
//! (`application/vnd.docker.distribution.events.v1+json`), so receivers
//! written for it keep working.
//!
//! Handlers attach a [`Happened`] to a successful reply
//! ([`Reply::event`](crate::reply::Reply::event)); the request path turns it
//! into [`Event`]s with the request's context and hands them to the
//! registry's [`EventSink`], which must not wait. [`Notifier`] is the sink
//! of `registry serve`: one bounded queue and one sending task per
//! configured endpoint. A registry built without a sink skips all of it.
//!
//! # Layout
//! - [`event`]: the envelope's types, and what each request reports.
//! - [`endpoint`]: an endpoint's queue, retries and counters.
//! - [`origin`]: the request's side of an event (client address, host, user agent).
//! - [`timestamp`]: RFC 3339 as Distribution writes it.

pub mod endpoint;
pub mod event;
pub mod origin;
pub mod settings;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use event::{Action, Event, Happened, Origin, SourceRecord};
pub use settings::{EndpointSettings, NotifySettings, DEFAULT_QUEUE_SIZE};

/// Where the registry hands its events. Implementations must return at
/// once: they are called on the request path.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Takes one event.
    fn send(&self, event: Event);

    /// Whether manifest events should list what the manifest references
    /// (costs a parse of the manifest on pulls).
    fn include_references(&self) -> bool {
        false
    }

    /// Appends the sink's metrics in the Prometheus text format.
    fn render_metrics(&self, _out: &mut String) {}
}

/// An endpoint that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("notification endpoint {name}: cannot create its HTTP client: {source}")]
pub struct NotifyError {
    /// The endpoint.
    pub name: String,
    /// Why.
    pub source: reqwest::Error,
}

/// The sink of `registry serve`: every event to every endpoint that does
/// not ignore it.
#[derive(Debug)]
pub struct Notifier {
    endpoints: Vec<endpoint::Endpoint>,
    source: SourceRecord,
    include_references: bool,
}

impl Notifier {
    /// Starts one delivery task per endpoint on the current tokio runtime.
    /// `source` is stamped on every event.
    pub fn start(settings: NotifySettings, source: SourceRecord) -> Result<Notifier, NotifyError> {
        let endpoints = settings
            .endpoints
            .into_iter()
            .map(|e| {
                let name = e.name.clone();
                endpoint::Endpoint::start(e).map_err(|source| NotifyError { name, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Notifier {
            endpoints,
            source,
            include_references: settings.include_references,
        })
    }
}

impl EventSink for Notifier {
    fn send(&self, mut event: Event) {
        event.source = self.source.clone();
        let event = Arc::new(event);
        for endpoint in &self.endpoints {
            endpoint.offer(&event);
        }
    }

    fn include_references(&self) -> bool {
        self.include_references
    }

    fn render_metrics(&self, out: &mut String) {
        type Pick = fn(&endpoint::Stats) -> &std::sync::atomic::AtomicU64;
        let series: [(&str, &str, &str, Pick); 4] = [
            (
                "registry_notifications_sent_total",
                "counter",
                "Events a notification endpoint accepted.",
                |s| &s.sent,
            ),
            (
                "registry_notifications_failures_total",
                "counter",
                "Notification POSTs that failed (each retry counts).",
                |s| &s.failures,
            ),
            (
                "registry_notifications_dropped_total",
                "counter",
                "Events dropped because an endpoint's queue was full.",
                |s| &s.dropped,
            ),
            (
                "registry_notifications_queue_length",
                "gauge",
                "Events waiting for an endpoint, the one being sent included.",
                |s| &s.queued,
            ),
        ];
        for (name, kind, help, pick) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for e in &self.endpoints {
                let n = pick(e.stats()).load(Ordering::Relaxed);
                let label = e.name().replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "{name}{{endpoint=\"{label}\"}} {n}");
            }
        }
    }
}

/// `hostname:port` for the `source.addr` of events, as Distribution writes it.
pub fn source_addr(port: u16) -> String {
    let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".into());
    format!("{hostname}:{port}")
}
