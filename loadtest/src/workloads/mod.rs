//! The workloads: what each one sends, and what it measures.
//!
//! | name | what | rate reported |
//! |---|---|---|
//! | `push-1g` | one blob of `--size-mib`, POST + PUT | MB/s |
//! | `push-4x256m` | four blobs of a quarter of it at once | MB/s over the wall time |
//! | `push-chunked` | half of it in `--chunk-mib` PATCHes, then PUT | MB/s; p50/p99 per PATCH |
//! | `pull-1g` | GET the `push-1g` blob `--pull-repeats` times, body not hashed | MB/s |
//! | `manifest-get` | `--clients` loops of GET manifest by tag (as `--get-user`) | req/s, p50/p99 |
//! | `mixed` | `--pushers` CI pushers of 2-layer images and `--pullers` pullers | images/s each way |
//! | `gc-fill` | `--gc-images` small images over `--gc-repos` repositories, then half deleted | images/s |
//! | `gc-latency` | `mixed`, reported as `gc-latency-push`/`-pull` (run with and without a pass) | p50/p99 |
//! | `proxy-seed` | one image of `--size-mib` in `--proxy-layers` layers, to `--proxy-repo` | MB/s |
//! | `proxy-pull` | `--pulls` pulls at once of `--proxy-repo:latest`, reported as `proxy-<phase>` | MB/s |

mod gc;
mod manifest;
mod mixed;
mod proxy;
mod pull;
mod push;

use crate::client::Client;
use crate::report::Report;
use crate::Args;

/// One workload of the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Push,
    PushConcurrent,
    PushChunked,
    Pull,
    ManifestGet,
    Mixed,
    GcFill,
    GcLatency,
    ProxySeed,
    ProxyPull,
}

/// Every workload; `all` runs the first six (the gc ones serve `benches/compare.sh`'s
/// `gc` workload, which times a pass between them; the proxy ones its `proxy` workload).
const ALL: [Workload; 10] = [
    Workload::Push,
    Workload::PushConcurrent,
    Workload::PushChunked,
    Workload::Pull,
    Workload::ManifestGet,
    Workload::Mixed,
    Workload::GcFill,
    Workload::GcLatency,
    Workload::ProxySeed,
    Workload::ProxyPull,
];

impl Workload {
    /// The name used on the command line and in the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Push => "push-1g",
            Workload::PushConcurrent => "push-4x256m",
            Workload::PushChunked => "push-chunked",
            Workload::Pull => "pull-1g",
            Workload::ManifestGet => "manifest-get",
            Workload::Mixed => "mixed",
            Workload::GcFill => "gc-fill",
            Workload::GcLatency => "gc-latency",
            Workload::ProxySeed => "proxy-seed",
            Workload::ProxyPull => "proxy-pull",
        }
    }

    /// Parses `--workload` values; `all` is every workload in table order.
    pub fn parse_list(names: &[String]) -> Result<Vec<Workload>, String> {
        let mut out = Vec::new();
        for name in names {
            if name == "all" {
                out.extend(&ALL[..6]);
                continue;
            }
            match ALL.iter().find(|w| w.name() == name) {
                Some(w) => out.push(*w),
                None => return Err(format!("unknown workload {name:?}")),
            }
        }
        Ok(out)
    }

    /// Runs the workload; most report one line, `mixed` and `gc-latency` report two.
    pub async fn run(self, client: &Client, args: &Args) -> Vec<Report> {
        let result = match self {
            Workload::Push => push::one(client, args).await.map(|r| vec![r]),
            Workload::PushConcurrent => push::concurrent(client, args).await.map(|r| vec![r]),
            Workload::PushChunked => push::chunked(client, args).await.map(|r| vec![r]),
            Workload::Pull => pull::run(client, args).await.map(|r| vec![r]),
            Workload::ManifestGet => manifest::run(client, args).await.map(|r| vec![r]),
            Workload::Mixed => mixed::run(client, args).await,
            Workload::GcFill => gc::fill(client, args).await.map(|r| vec![r]),
            Workload::GcLatency => gc::latency(client, args).await,
            Workload::ProxySeed => proxy::seed(client, args).await.map(|r| vec![r]),
            Workload::ProxyPull => proxy::pull(client, args).await.map(|r| vec![r]),
        };
        result.unwrap_or_else(|e| vec![Report::failed(self.name(), e)])
    }
}

/// Bytes in `mib` MiB.
pub(crate) fn mib(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// Errors seen by concurrent loops: a count and the first message.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    count: std::sync::atomic::AtomicU64,
    first: std::sync::Mutex<Option<String>>,
}

impl Errors {
    pub(crate) fn record(&self, error: String) {
        use std::sync::atomic::Ordering;
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Ok(mut first) = self.first.lock() {
                *first = Some(error);
            }
        }
    }

    /// `None` when nothing failed, else "N errors, first: ...".
    pub(crate) fn summary(&self) -> Option<String> {
        use std::sync::atomic::Ordering;
        let n = self.count.load(Ordering::Relaxed);
        if n == 0 {
            return None;
        }
        let first = self.first.lock().ok().and_then(|f| f.clone());
        Some(format!("{n} errors, first: {}", first.unwrap_or_default()))
    }
}
