//! Prometheus metrics, kept in memory and rendered in the text format.
//!
//! A handful of counters and histograms do not justify a metrics framework:
//! each series is a map entry behind one mutex, touched once per request.

mod gc;
mod proxy;

pub use gc::{GcMetrics, PassRecord};
pub use proxy::{ProxyEvent, ProxyMetrics};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the duration histograms.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0, 60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Series {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    uploads: Histogram,
    bytes_in: u64,
    bytes_out: u64,
    auth_failures: BTreeMap<&'static str, u64>,
    storage_errors: u64,
}

/// The registry's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
    /// Requests answered, read without the lock by background work that yields to them.
    served: AtomicU64,
    /// Garbage collection passes and storage use.
    pub gc: GcMetrics,
    /// The pull-through cache, per upstream (shared with the tasks that fetch blobs).
    pub proxy: std::sync::Arc<ProxyMetrics>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Series) -> T) -> T {
        f(&mut self.series.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// One finished request.
    pub fn request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        took: Duration,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        self.served.fetch_add(1, Ordering::Relaxed);
        self.with(|s| {
            *s.requests
                .entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
            s.durations
                .entry(route.to_owned())
                .or_default()
                .observe(took.as_secs_f64());
            s.bytes_in += bytes_in;
            s.bytes_out += bytes_out;
        });
    }

    /// How many requests were answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// A completed blob upload, from its start to its commit.
    pub fn upload_completed(&self, took: Duration) {
        self.with(|s| s.uploads.observe(took.as_secs_f64()));
    }

    /// A refused authentication; `reason` is `missing` or `invalid`.
    pub fn auth_failure(&self, reason: &'static str) {
        self.with(|s| *s.auth_failures.entry(reason).or_default() += 1);
    }

    /// A storage operation that failed.
    pub fn storage_error(&self) {
        self.with(|s| s.storage_errors += 1);
    }

    /// The text exposition format, with `uploads_in_progress` supplied by the caller.
    pub fn render(&self, uploads_in_progress: usize) -> String {
        self.with(|s| {
            let mut out = String::new();
            header(&mut out, "registry_http_requests_total", "counter", "HTTP requests by route, method and status.");
            for ((route, method, status), n) in &s.requests {
                let _ = writeln!(out, "registry_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
            }
            header(&mut out, "registry_http_request_duration_seconds", "histogram", "Request duration by route.");
            for (route, h) in &s.durations {
                histogram(&mut out, "registry_http_request_duration_seconds", &format!("route=\"{route}\""), h);
            }
            header(&mut out, "registry_upload_duration_seconds", "histogram", "Blob uploads from start to commit.");
            histogram(&mut out, "registry_upload_duration_seconds", "", &s.uploads);
            header(&mut out, "registry_http_received_bytes_total", "counter", "Request body bytes received.");
            let _ = writeln!(out, "registry_http_received_bytes_total {}", s.bytes_in);
            header(&mut out, "registry_http_sent_bytes_total", "counter", "Response body bytes sent.");
            let _ = writeln!(out, "registry_http_sent_bytes_total {}", s.bytes_out);
            header(&mut out, "registry_auth_failures_total", "counter", "Refused authentications by reason.");
            for reason in ["missing", "invalid"] {
                let n = s.auth_failures.get(reason).copied().unwrap_or(0);
                let _ = writeln!(out, "registry_auth_failures_total{{reason=\"{reason}\"}} {n}");
            }
            header(&mut out, "registry_storage_errors_total", "counter", "Storage operations that failed.");
            let _ = writeln!(out, "registry_storage_errors_total {}", s.storage_errors);
            header(&mut out, "registry_uploads_in_progress", "gauge", "Upload sessions open in this process.");
            let _ = writeln!(out, "registry_uploads_in_progress {uploads_in_progress}");
            self.gc.render(&mut out);
            self.proxy.render(&mut out);
            out
        })
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series_after_traffic() {
        let m = Metrics::default();
        m.request("blob_get", "GET", 200, Duration::from_millis(3), 0, 10);
        m.request("blob_get", "GET", 200, Duration::from_millis(30), 0, 5);
        m.request("base", "GET", 401, Duration::from_micros(100), 0, 0);
        m.auth_failure("missing");
        m.upload_completed(Duration::from_secs(2));
        let text = m.render(3);
        assert!(
            text.contains(
                "registry_http_requests_total{route=\"blob_get\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "registry_http_requests_total{route=\"base\",method=\"GET\",status=\"401\"} 1"
        ));
        assert!(text.contains(
            "registry_http_request_duration_seconds_bucket{route=\"blob_get\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "registry_http_request_duration_seconds_bucket{route=\"blob_get\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("registry_http_request_duration_seconds_count{route=\"blob_get\"} 2"));
        assert!(text.contains("registry_http_sent_bytes_total 15"));
        assert!(text.contains("registry_auth_failures_total{reason=\"missing\"} 1"));
        assert!(text.contains("registry_auth_failures_total{reason=\"invalid\"} 0"));
        assert!(text.contains("registry_upload_duration_seconds_bucket{le=\"2.5\"} 1"));
        assert!(text.contains("registry_upload_duration_seconds_count 1"));
        assert!(text.contains("registry_uploads_in_progress 3"));
    }
}
