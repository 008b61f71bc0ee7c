//! Storage maintenance: garbage collection on the server's own schedule and from the
//! command line (`registry gc`, alias `garbage-collect`; `registry du`), and what they
//! print and log. The passes themselves are `Store::collect_garbage`
//! (registry-storage/src/store/gc.rs, where the safety rule is stated); this module only
//! runs them and reports.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use registry_core::gc::Usage;
use registry_storage::{Eviction, GcOptions, GcReport, Pace, Store};

use crate::background;
use crate::cli::GcArgs;
use crate::config::{GcSettings, Settings};
use crate::storage::open_backend;
use crate::Registry;

/// The options of a pass under `gc` settings.
pub fn options(gc: &GcSettings, dry_run: bool, delete_untagged: bool) -> GcOptions {
    GcOptions {
        delay: gc.delay,
        retention: gc.retention.clone(),
        delete_untagged,
        dry_run,
        evict: gc
            .evict
            .iter()
            .map(|rule| Eviction {
                prefix: rule.prefix.clone(),
                after: rule.after,
            })
            .collect(),
    }
}

/// Opens the configured storage for a maintenance command (the server may be running on
/// it: every pass is safe beside it).
pub async fn open_store(settings: &Settings) -> Result<Store, String> {
    let backend = open_backend(&settings.storage).await?;
    Ok(Store::new(backend).with_gc_delay(settings.gc.delay))
}

/// Runs a pass every `interval` (the first one interval after the start), logging one
/// line per pass and recording it in `/metrics`. A pass that fails, or a storage that
/// cannot be opened for it, is logged, counted as failed and tried again at the next tick.
///
/// The passes run on background threads ([`crate::background`]) over a store of their
/// own, as `registry gc` does from another process (safe beside the server, see
/// `Store::collect_garbage`): the server's threads, and the storage client's pooled
/// connections, which live on the runtime that opened them, stay the requests'. The
/// server's metadata cache learns of a deletion within its TTL, as from any other process.
pub fn spawn_schedule(
    registry: Registry,
    settings: &Settings,
    interval: std::time::Duration,
) -> Result<(), String> {
    let (runtime, governor) = background::runtime()
        .map_err(|e| format!("cannot start the garbage collection threads: {e}"))?;
    // `block_on` polls the passes' own futures on the schedule's thread: background
    // work too.
    let enlist = governor.clone();
    let settings = settings.clone();
    let schedule = async move {
        let options = options(&settings.gc, false, false);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut store = None;
        loop {
            ticker.tick().await;
            if store.is_none() {
                match open_store(&settings).await {
                    Ok(opened) => store = Some(opened.with_pace(governor.clone())),
                    Err(e) => {
                        tracing::warn!(error = %e, "garbage collection cannot open the storage; trying again at the next interval");
                        registry.metrics().gc.failed();
                        continue;
                    }
                }
            }
            if let Some(store) = &store {
                let served = registry.clone();
                let _watching = governor.watch(Some(Box::new(move || served.metrics().served())));
                run_pass(store, &registry, &options).await;
            }
        }
    };
    std::thread::Builder::new()
        .name("registry-gc-schedule".into())
        .spawn(move || {
            enlist.enlist_this_thread();
            runtime.block_on(schedule)
        })
        .map_err(|e| format!("cannot start the garbage collection schedule: {e}"))?;
    Ok(())
}

/// One scheduled pass over `store`: logged and counted in `registry`'s metrics.
async fn run_pass(store: &Store, registry: &Registry, options: &GcOptions) {
    let metrics = &registry.metrics().gc;
    match store.collect_garbage(options, SystemTime::now()).await {
        Ok(report) => {
            log(&report);
            metrics.pass(&report);
        }
        Err(e) => {
            tracing::warn!(error = %e, "garbage collection pass failed; trying again at the next interval");
            metrics.failed();
        }
    }
}

/// `registry gc`: one pass now, at `pace`; the report on standard output. Fails (exit 2)
/// when the blob sweep had to be skipped, so a cron job notices an unreadable manifest.
pub async fn gc_command(
    settings: Settings,
    args: &GcArgs,
    pace: Arc<dyn Pace>,
) -> Result<(), String> {
    let store = open_store(&settings).await?.with_pace(pace);
    let options = options(&settings.gc, args.dry_run, args.delete_untagged);
    let report = store
        .collect_garbage(&options, SystemTime::now())
        .await
        .map_err(|e| format!("garbage collection failed: {e}"))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        emit(&format!("{json}\n"))?;
    } else {
        emit(&render(&report, args.quiet))?;
    }
    match &report.blob_sweep_skipped {
        Some(reason) => Err(reason.clone()),
        None => Ok(()),
    }
}

/// What a pass under the configured policies would delete now, rendered (for
/// `registry config check`).
pub async fn preview(settings: &Settings) -> Result<String, String> {
    let store = open_store(settings).await?;
    let report = store
        .collect_garbage(&options(&settings.gc, true, false), SystemTime::now())
        .await
        .map_err(|e| format!("walking the storage failed: {e}"))?;
    Ok(render(&report, false))
}

/// `registry du`: the bytes each repository holds, as a table or JSON; the walk at `pace`.
pub async fn du_command(settings: Settings, json: bool, pace: Arc<dyn Pace>) -> Result<(), String> {
    let store = open_store(&settings).await?.with_pace(pace);
    let usage = store
        .usage()
        .await
        .map_err(|e| format!("walking the storage failed: {e}"))?;
    if json {
        let text = serde_json::to_string_pretty(&usage).map_err(|e| e.to_string())?;
        emit(&format!("{text}\n"))
    } else {
        emit(&render_usage(&usage))
    }
}

/// Writes a command's report to standard output. A reader that left early (`| head`)
/// ends the output quietly, as it does other command-line tools' (`print!` would panic:
/// Rust ignores `SIGPIPE`); the pass itself has run whole by then.
fn emit(report: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the report: {e}"))
        }
        _ => Ok(()),
    }
}

/// The log line of a pass.
pub fn log(report: &GcReport) {
    if let Some(reason) = &report.blob_sweep_skipped {
        tracing::warn!(unreadable = ?report.unreadable, "garbage collection: {reason}");
    }
    tracing::info!(
        dry_run = report.dry_run,
        seconds = report.seconds,
        repositories = report.repositories,
        manifests = report.manifests,
        blobs = report.blobs,
        deleted_tags = report.deleted_tags.len(),
        deleted_manifests = report.deleted_manifests.len(),
        swept_links = report.swept_links,
        deleted_blobs = report.deleted_blobs,
        freed_bytes = report.freed_bytes,
        kept_as_new = report.kept_as_new,
        "garbage collection pass"
    );
}

/// What `registry gc` prints: a summary, then (unless `quiet`) every deleted tag and
/// manifest.
pub fn render(report: &GcReport, quiet: bool) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let _ = writeln!(
        out,
        "walked {} repositories, {} manifests, {} blobs in {:.2} s ({} storage operations)",
        report.repositories, report.manifests, report.blobs, report.seconds, report.storage_ops
    );
    let _ = writeln!(
        out,
        "{verb} {} tags, {} manifests, {} layer links, {} blobs ({})",
        report.deleted_tags.len(),
        report.deleted_manifests.len(),
        report.swept_links,
        report.deleted_blobs,
        bytes(report.freed_bytes)
    );
    if report.kept_as_new > 0 {
        let _ = writeln!(
            out,
            "kept {} objects written or claimed since the walk",
            report.kept_as_new
        );
    }
    if !quiet {
        for tag in &report.deleted_tags {
            let _ = writeln!(out, "  tag {tag}");
        }
        for manifest in &report.deleted_manifests {
            let _ = writeln!(out, "  manifest {manifest}");
        }
    }
    for key in &report.unreadable {
        let _ = writeln!(
            out,
            "unreadable manifest {key}: its repository was left whole"
        );
    }
    if let Some(reason) = &report.blob_sweep_skipped {
        let _ = writeln!(out, "{reason}");
    }
    out
}

/// What `registry du` prints: one row per repository, then the totals.
pub fn render_usage(usage: &Usage) -> String {
    let width = usage
        .repositories
        .iter()
        .map(|u| u.repository.len())
        .max()
        .unwrap_or(0)
        .max("REPOSITORY".len());
    let mut out = format!(
        "{:<width$}  {:>12}  {:>12}\n",
        "REPOSITORY", "LOGICAL", "UNIQUE"
    );
    for u in &usage.repositories {
        let _ = writeln!(
            out,
            "{:<width$}  {:>12}  {:>12}",
            u.repository,
            bytes(u.logical),
            bytes(u.unique)
        );
    }
    let _ = writeln!(
        out,
        "{:<width$}  {:>12}  {:>12}\nstored (distinct blobs): {}",
        "TOTAL",
        bytes(usage.logical),
        bytes(usage.unique),
        bytes(usage.stored)
    );
    out
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_du() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
