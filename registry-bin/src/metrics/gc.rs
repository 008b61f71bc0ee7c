//! Garbage collection in `/metrics`: the last pass (when, how long, what it freed), totals
//! since the start, and the bytes each repository holds as that pass measured them.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use registry_storage::GcReport;

use super::header;

/// Passes kept for the web page's overview (`recent`).
const RECENT_PASSES: usize = 10;

/// One finished pass in a few numbers (what the overview lists; the full
/// report of the last pass is [`GcMetrics::last`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PassRecord {
    /// When it started, unix seconds.
    pub started: u64,
    /// How long it took.
    pub seconds: f64,
    /// Tags deleted by retention.
    pub deleted_tags: usize,
    /// Manifests deleted.
    pub deleted_manifests: usize,
    /// Blob data objects deleted.
    pub deleted_blobs: usize,
    /// Bytes of blob data deleted.
    pub freed_bytes: u64,
    /// An unreadable manifest stopped the blob sweep.
    pub blocked: bool,
}

impl From<&GcReport> for PassRecord {
    fn from(r: &GcReport) -> Self {
        PassRecord {
            started: r.started,
            seconds: r.seconds,
            deleted_tags: r.deleted_tags.len(),
            deleted_manifests: r.deleted_manifests.len(),
            deleted_blobs: r.deleted_blobs,
            freed_bytes: r.freed_bytes,
            blocked: r.blob_sweep_skipped.is_some(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    last: Option<GcReport>,
    recent: VecDeque<PassRecord>,
    passes_ok: u64,
    passes_failed: u64,
    passes_blocked: u64,
    freed_bytes: u64,
    deleted_blobs: u64,
    deleted_manifests: u64,
    deleted_tags: u64,
}

/// Garbage collection series, fed by the server's scheduled passes.
#[derive(Debug, Default)]
pub struct GcMetrics {
    state: Mutex<State>,
}

impl GcMetrics {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A pass that finished (dry runs are not recorded).
    pub fn pass(&self, report: &GcReport) {
        self.with(|s| {
            if report.blob_sweep_skipped.is_some() {
                s.passes_blocked += 1;
            } else {
                s.passes_ok += 1;
            }
            s.freed_bytes += report.freed_bytes;
            s.deleted_blobs += report.deleted_blobs as u64;
            s.deleted_manifests += report.deleted_manifests.len() as u64;
            s.deleted_tags += report.deleted_tags.len() as u64;
            s.last = Some(report.clone());
            if s.recent.len() == RECENT_PASSES {
                s.recent.pop_back();
            }
            s.recent.push_front(PassRecord::from(report));
        });
    }

    /// The last passes, newest first (at most ten).
    pub fn recent(&self) -> Vec<PassRecord> {
        self.with(|s| s.recent.iter().cloned().collect())
    }

    /// A pass that stopped on a storage error.
    pub fn failed(&self) {
        self.with(|s| s.passes_failed += 1);
    }

    /// The last pass, if any.
    pub fn last(&self) -> Option<GcReport> {
        self.with(|s| s.last.clone())
    }

    /// Appends the series to `out`.
    pub fn render(&self, out: &mut String) {
        self.with(|s| {
            header(out, "registry_gc_passes_total", "counter", "Garbage collection passes by result (blocked: an unreadable manifest stopped the blob sweep).");
            for (result, n) in [("ok", s.passes_ok), ("blocked", s.passes_blocked), ("failed", s.passes_failed)] {
                let _ = writeln!(out, "registry_gc_passes_total{{result=\"{result}\"}} {n}");
            }
            for (name, help, n) in [
                ("registry_gc_freed_bytes_total", "Blob bytes deleted by garbage collection.", s.freed_bytes),
                ("registry_gc_deleted_blobs_total", "Blob data objects deleted.", s.deleted_blobs),
                ("registry_gc_deleted_manifests_total", "Manifests deleted (untagged, by retention).", s.deleted_manifests),
                ("registry_gc_deleted_tags_total", "Tags deleted by retention.", s.deleted_tags),
            ] {
                header(out, name, "counter", help);
                let _ = writeln!(out, "{name} {n}");
            }
            let Some(last) = &s.last else { return };
            for (name, help, value) in [
                ("registry_gc_last_run_timestamp_seconds", "When the last pass started.", last.started as f64),
                ("registry_gc_last_duration_seconds", "How long the last pass took.", last.seconds),
                ("registry_gc_last_freed_bytes", "Blob bytes the last pass deleted.", last.freed_bytes as f64),
                ("registry_storage_stored_bytes", "Bytes of distinct blobs some repository links (last pass).", last.usage.stored as f64),
            ] {
                header(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {value}");
            }
            header(out, "registry_storage_logical_bytes", "gauge", "What pulling every tag of a repository moves (last pass).");
            for u in &last.usage.repositories {
                let _ = writeln!(out, "registry_storage_logical_bytes{{repository=\"{}\"}} {}", u.repository, u.logical);
            }
            header(out, "registry_storage_unique_bytes", "gauge", "Bytes only this repository links (last pass).");
            for u in &last.usage.repositories {
                let _ = writeln!(out, "registry_storage_unique_bytes{{repository=\"{}\"}} {}", u.repository, u.unique);
            }
        });
    }
}
