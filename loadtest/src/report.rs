//! What a workload reports: one JSON object per line.

use std::time::Duration;

/// The outcome of one workload against one registry.
#[derive(Debug, Default)]
pub struct Report {
    pub workload: String,
    pub label: String,
    /// Payload bytes moved (blob bytes pushed or pulled).
    pub bytes: u64,
    pub seconds: f64,
    pub requests: u64,
    /// Completed images, for the mixed workload.
    pub images: Option<u64>,
    pub latencies: Vec<Duration>,
    pub peak_rss_kib: Option<u64>,
    pub rss_reset: bool,
    pub error: Option<String>,
}

impl Report {
    /// A workload that could not run or finish.
    pub fn failed(workload: &str, error: String) -> Report {
        Report {
            workload: workload.to_owned(),
            error: Some(error),
            ..Report::default()
        }
    }

    /// The JSON line: rates, p50/p99 in milliseconds, peak RSS in MiB.
    pub fn to_json(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            // Nearest rank: the smallest sample with at least p of them at or below it.
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            Some(round3(sorted[rank - 1].as_secs_f64() * 1000.0))
        };
        let per_s = |n: f64| {
            if self.seconds > 0.0 {
                round3(n / self.seconds)
            } else {
                0.0
            }
        };
        let value = serde_json::json!({
            "workload": self.workload,
            "label": self.label,
            "ok": self.error.is_none(),
            "seconds": round3(self.seconds),
            "bytes": self.bytes,
            "mb_s": per_s(self.bytes as f64 / 1e6),
            "requests": self.requests,
            "req_s": per_s(self.requests as f64),
            "images": self.images,
            "images_s": self.images.map(|n| per_s(n as f64)),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "peak_rss_mib": self.peak_rss_kib.map(|k| round3(k as f64 / 1024.0)),
            "rss_reset": self.rss_reset,
            "error": self.error,
        });
        value.to_string()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Resets the peak RSS of every process in `pids` to its current RSS (Linux:
/// `clear_refs` 5). False when that is not possible for one of them (not root, another
/// OS) or there is none.
pub fn reset_peak_rss(pids: &[u32]) -> bool {
    !pids.is_empty()
        && pids
            .iter()
            .all(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
}

/// The highest peak RSS (`VmHWM`) of any process in `pids`, in KiB; `None` when one of
/// them cannot be read (a replica that died is not a low peak).
pub fn peak_rss_kib(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .map(|&pid| own_peak_rss_kib(pid))
        .try_fold(None, |peak: Option<u64>, kib| Some(peak.max(Some(kib?))))
        .flatten()
}

/// The peak RSS (`VmHWM`) of `pid` in KiB.
fn own_peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        let r = Report {
            workload: "w".into(),
            bytes: 2_000_000,
            seconds: 2.0,
            requests: 100,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            ..Report::default()
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
        assert_eq!(v["mb_s"], 1.0);
        assert_eq!(v["req_s"], 50.0);
        assert_eq!(v["p50_ms"], 50.0);
        assert_eq!(v["p99_ms"], 99.0);
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn own_peak_rss_is_readable() {
        let own = std::process::id();
        let alone = peak_rss_kib(&[own]).unwrap_or(0);
        assert!(alone > 0);
        // The peak only grows (other tests run in this process meanwhile),
        // so the same process twice reads at least what it read alone.
        assert!(peak_rss_kib(&[own, own]).is_some_and(|k| k >= alone));
        assert_eq!(peak_rss_kib(&[]), None);
        assert_eq!(peak_rss_kib(&[own, u32::MAX]), None);
    }
}
