//! One notification endpoint: a bounded queue in memory and one task that
//! POSTs its events in order, one per request as Distribution does.
//!
//! ```text
//! request ──offer──► ignore filter ──try_send──► queue (bounded) ──► task: POST
//!                          │                        │ full                │ 2xx/3xx: next event
//!                       skipped                  dropped (counted)        │ else: same event again,
//!                                                                         │ after `backoff` once
//!                                                                         │ `threshold` failures ran
//! ```
//!
//! A request never waits for an endpoint: offering is a `try_send`. An
//! event in the queue is retried until the endpoint takes it, so none is
//! lost while the queue has room; when it is full, new events are dropped
//! and counted. Events still queued when the process exits are lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::event::{Envelope, Event, EVENTS_MEDIA_TYPE};
use super::settings::EndpointSettings;

impl EndpointSettings {
    fn ignores(&self, event: &Event) -> bool {
        self.ignored_actions.contains(&event.action)
            || self.ignored_media_types.contains(&event.target.media_type)
    }
}

/// Counters of one endpoint, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events the endpoint accepted.
    pub sent: AtomicU64,
    /// POSTs that failed (errors and statuses other than 2xx/3xx).
    pub failures: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Events queued or being sent.
    pub queued: AtomicU64,
}

/// A running endpoint. Dropping it ends its task once the queue is sent.
#[derive(Debug)]
pub struct Endpoint {
    settings: Arc<EndpointSettings>,
    queue: mpsc::Sender<Arc<Event>>,
    stats: Arc<Stats>,
}

impl Endpoint {
    /// Starts the delivery task (on the current tokio runtime).
    pub fn start(settings: EndpointSettings) -> Result<Endpoint, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("registry/", env!("CARGO_PKG_VERSION")))
            // A redirect is an answer (Distribution accepts any 3xx); POSTs are not replayed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let settings = Arc::new(settings);
        let (queue, events) = mpsc::channel(settings.queue_size.max(1));
        let stats = Arc::new(Stats::default());
        tokio::spawn(deliver(
            client,
            Arc::clone(&settings),
            events,
            Arc::clone(&stats),
        ));
        Ok(Endpoint {
            settings,
            queue,
            stats,
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queues `event` unless ignored; drops it when the queue is full. Never waits.
    pub fn offer(&self, event: &Arc<Event>) {
        if self.settings.ignores(event) {
            return;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(Arc::clone(event)).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(1000) {
                tracing::warn!(endpoint = %self.settings.name, dropped, "notification queue full: events dropped");
            }
        }
    }
}

/// Distribution's retry rule: after `threshold` failures in a row, each
/// attempt first waits `backoff`; one success resets the count.
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    backoff: Duration,
    failures: u32,
}

impl Breaker {
    fn record(&mut self, ok: bool) {
        self.failures = if ok {
            0
        } else {
            self.failures.saturating_add(1)
        };
    }

    /// How long to wait before the next attempt.
    fn wait(&self) -> Option<Duration> {
        (self.failures >= self.threshold).then_some(self.backoff)
    }
}

/// Sends the queue's events in order until every sender is gone.
async fn deliver(
    client: reqwest::Client,
    settings: Arc<EndpointSettings>,
    mut events: mpsc::Receiver<Arc<Event>>,
    stats: Arc<Stats>,
) {
    let mut breaker = Breaker {
        threshold: settings.threshold,
        backoff: settings.backoff,
        failures: 0,
    };
    while let Some(event) = events.recv().await {
        let body = match serde_json::to_vec(&Envelope { events: &[&event] }) {
            Ok(body) => bytes::Bytes::from(body),
            Err(e) => {
                // Cannot happen with these types; never retry what cannot be written.
                tracing::error!(endpoint = %settings.name, error = %e, "cannot encode an event");
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        loop {
            if let Some(wait) = breaker.wait() {
                tokio::time::sleep(wait).await;
            }
            let outcome = client
                .post(settings.url.clone())
                // Per request, not as the client's default headers, which keep one value per name.
                .headers(settings.headers.clone())
                .header(http::header::CONTENT_TYPE, EVENTS_MEDIA_TYPE)
                .body(body.clone())
                .send()
                .await;
            let failure = match outcome {
                // Any 2xx or 3xx is accepted, as Distribution does.
                Ok(response) if (200..400).contains(&response.status().as_u16()) => None,
                Ok(response) => Some(format!("status {}", response.status())),
                // Without the URL: it may hold credentials, and the endpoint is named.
                Err(e) => Some(with_causes(&e.without_url())),
            };
            let was_backing_off = breaker.wait().is_some();
            breaker.record(failure.is_none());
            match failure {
                None => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    if was_backing_off {
                        tracing::info!(endpoint = %settings.name, "notification endpoint accepts events again");
                    }
                    break;
                }
                Some(reason) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    if breaker.failures == settings.threshold {
                        tracing::warn!(endpoint = %settings.name, error = %reason, failures = breaker.failures, backoff_ms = settings.backoff.as_millis(), "notification endpoint failing; retrying after each backoff");
                    } else {
                        tracing::debug!(endpoint = %settings.name, error = %reason, "notification not delivered; retrying");
                    }
                }
            }
        }
        stats.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An error with its causes (reqwest's own text stops at the first).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_waits_only_after_threshold_failures_in_a_row() {
        let backoff = Duration::from_millis(500);
        let mut b = Breaker {
            threshold: 3,
            backoff,
            failures: 0,
        };
        for _ in 0..2 {
            b.record(false);
            assert_eq!(b.wait(), None);
        }
        b.record(false);
        assert_eq!(b.wait(), Some(backoff));
        b.record(false);
        assert_eq!(b.wait(), Some(backoff));
        b.record(true);
        assert_eq!(b.wait(), None);
    }
}
