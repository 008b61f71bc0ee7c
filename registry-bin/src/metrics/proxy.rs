//! The pull-through cache in `/metrics`: per upstream, what was served from storage,
//! what had to be fetched, the bytes fetched, the upstream's failures, and tags served
//! past their ttl because the upstream could not be asked.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::header;

/// What happened to one proxied request, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyEvent {
    /// Served from storage (a tag within its ttl, or confirmed by a HEAD).
    Hit,
    /// Fetched from the upstream.
    Miss,
    /// The upstream failed (unreachable, an error status, corrupt bytes).
    UpstreamError,
    /// A tag past its ttl served because the upstream could not be asked.
    Stale,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    hits: u64,
    misses: u64,
    errors: u64,
    stale: u64,
    bytes: u64,
}

/// Series per upstream, labelled by the upstream's prefix (or host for the
/// standard registry's single upstream).
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    upstreams: Mutex<BTreeMap<String, Counters>>,
}

impl ProxyMetrics {
    fn with(&self, upstream: &str, f: impl FnOnce(&mut Counters)) {
        let mut map = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get_mut(upstream) {
            f(c);
        } else {
            f(map.entry(upstream.to_owned()).or_default());
        }
    }

    /// Makes the upstream's series appear (at zero) before its first request.
    pub fn register(&self, upstream: &str) {
        self.with(upstream, |_| {});
    }

    /// One event.
    pub fn record(&self, upstream: &str, event: ProxyEvent) {
        self.with(upstream, |c| match event {
            ProxyEvent::Hit => c.hits += 1,
            ProxyEvent::Miss => c.misses += 1,
            ProxyEvent::UpstreamError => c.errors += 1,
            ProxyEvent::Stale => c.stale += 1,
        });
    }

    /// Bytes received from the upstream.
    pub fn fetched(&self, upstream: &str, bytes: u64) {
        self.with(upstream, |c| c.bytes += bytes);
    }

    /// Appends the series to `out` (nothing without upstreams).
    pub fn render(&self, out: &mut String) {
        let map = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return;
        }
        type Get = fn(&Counters) -> u64;
        let series: [(&str, &str, Get); 5] = [
            (
                "registry_proxy_hits_total",
                "Proxied pulls served from storage.",
                |c| c.hits,
            ),
            (
                "registry_proxy_misses_total",
                "Proxied pulls fetched from the upstream.",
                |c| c.misses,
            ),
            (
                "registry_proxy_fetched_bytes_total",
                "Bytes received from the upstream.",
                |c| c.bytes,
            ),
            (
                "registry_proxy_upstream_errors_total",
                "Upstream requests that failed (unreachable, error status, corrupt content).",
                |c| c.errors,
            ),
            (
                "registry_proxy_stale_total",
                "Tags served past their ttl because the upstream could not be asked.",
                |c| c.stale,
            ),
        ];
        for (name, help, get) in series {
            header(out, name, "counter", help);
            for (upstream, c) in map.iter() {
                let _ = writeln!(out, "{name}{{upstream=\"{upstream}\"}} {}", get(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_upstream() {
        let m = ProxyMetrics::default();
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.is_empty());
        m.register("ghcr.io");
        m.record("docker.io", ProxyEvent::Miss);
        m.record("docker.io", ProxyEvent::Hit);
        m.record("docker.io", ProxyEvent::Hit);
        m.record("docker.io", ProxyEvent::Stale);
        m.record("docker.io", ProxyEvent::UpstreamError);
        m.fetched("docker.io", 42);
        m.render(&mut out);
        for line in [
            "registry_proxy_hits_total{upstream=\"docker.io\"} 2",
            "registry_proxy_misses_total{upstream=\"docker.io\"} 1",
            "registry_proxy_fetched_bytes_total{upstream=\"docker.io\"} 42",
            "registry_proxy_upstream_errors_total{upstream=\"docker.io\"} 1",
            "registry_proxy_stale_total{upstream=\"docker.io\"} 1",
            "registry_proxy_hits_total{upstream=\"ghcr.io\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "{line}\n{out}");
        }
    }
}
