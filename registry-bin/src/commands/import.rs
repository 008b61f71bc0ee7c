//! `registry import --from-distribution DIR`: moves a CNCF Distribution filesystem storage
//! (the standard registry's `rootdirectory`) into this registry's storage, once, with the
//! old registry stopped or read-only. The work is `registry_storage::import`; this is
//! the command line around it: the target from the config, a progress display, the
//! summary and the exit status.
//!
//! The progress display is a hand-written `\r` line on standard error when that is a
//! terminal (one line, redrawn five times a second: a progress-bar crate would bring a
//! dependency tree for twenty lines of formatting), and a plain line every few seconds
//! otherwise (logs, CI). The summary goes to standard output.
//!
//! Exit status: 0 when everything was imported (or already was), 1 when the import ran
//! to the end but left objects out (each named with its reason in the summary: the
//! operator must decide about them), 2 when it could not run or stopped (run it again
//! to continue).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use registry_storage::import::{
    self, Distribution, Options, Progress, ProgressSnapshot, Summary, Transfer,
};
use registry_storage::{FsBackend, Store};

use crate::config::StorageSettings;
use crate::storage::open_backend;

/// `registry import` flags.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The standard registry's `storage.filesystem.rootdirectory` (the folder holding
    /// `docker/registry/v2`), e.g. /var/lib/registry.
    #[arg(long, value_name = "DIR")]
    pub from_distribution: PathBuf,
    /// This registry's YAML config file; the import writes to its
    /// `storage.filesystem.rootdirectory`.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Folder that holds this registry's storage (overrides the config) [default: ./data].
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// Hard-link blobs instead of copying them: no bytes written, both storages share
    /// the files. Both must be on one file system.
    #[arg(long)]
    pub link: bool,
}

/// Blobs moved at once. Large blobs are bound by hashing (one core each), small ones by
/// the synced writes each needs (four): enough in flight to keep both cores and the
/// disk busy with small blobs, at a few MiB of buffers each.
const CONCURRENCY: usize = 16;

/// Runs the import into `storage`. `Ok(true)` when nothing was left out.
pub fn run(args: &ImportArgs, storage: &StorageSettings) -> Result<bool, String> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run_async(args, storage))
}

async fn run_async(args: &ImportArgs, storage: &StorageSettings) -> Result<bool, String> {
    let source = Distribution::open(&args.from_distribution).map_err(|e| {
        format!(
            "{} is not a standard registry's storage root (no docker/registry/v2 in it): {e}",
            args.from_distribution.display()
        )
    })?;
    let (store, transfer) = match (storage, args.link) {
        (StorageSettings::Filesystem(root), true) => {
            crate::preflight::check_storage_root(root).map_err(|e| e.to_string())?;
            let backend = FsBackend::open(root)
                .await
                .map_err(|e| format!("{}: {e}", root.display()))?;
            (
                Store::new(Arc::new(backend.clone())),
                Transfer::HardLink(backend),
            )
        }
        (StorageSettings::S3(_), true) => {
            return Err("--link needs filesystem storage on the same file system; \
                        run without it to copy the blobs into the bucket"
                .into())
        }
        (_, false) => (Store::new(open_backend(storage).await?), Transfer::Copy),
    };
    let options = Options {
        transfer,
        mint: &crate::handlers::uploads::new_id,
        concurrency: CONCURRENCY,
    };
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let display = tokio::spawn(show_progress(Arc::clone(&progress), started));
    let result = import::import(&store, &source, &options, &progress).await;
    display.abort();
    let elapsed = started.elapsed();
    if std::io::stderr().is_terminal() {
        eprintln!("\r\x1b[K{}", progress_line(progress.snapshot(), elapsed));
    }
    let summary = result.map_err(|e| match e {
        import::ImportError::CrossDevice { .. } => {
            format!("{e}; run without --link to copy the blobs instead")
        }
        other => format!("{other} (run the import again to continue where it stopped)"),
    })?;
    let mode = if args.link { "hard links" } else { "copies" };
    let mut out = std::io::stdout().lock();
    let text = render_summary(
        &summary,
        &args.from_distribution,
        &storage.to_string(),
        mode,
        elapsed,
    );
    out.write_all(text.as_bytes())
        .map_err(|e| format!("writing the summary: {e}"))?;
    Ok(summary.skipped.is_empty())
}

/// Redraws the progress line until aborted.
async fn show_progress(progress: Arc<Progress>, started: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is now
    loop {
        tick.tick().await;
        let line = progress_line(progress.snapshot(), started.elapsed());
        if terminal {
            eprint!("\r\x1b[K{line}");
        } else {
            eprintln!("import: {line}");
        }
    }
}

/// `[#####.....]  1.20 GB / 5.00 GB  120 / 900 objects  350.0 MB/s`, or a scan notice
/// before the totals are known.
fn progress_line(p: ProgressSnapshot, elapsed: Duration) -> String {
    if p.total_objects == 0 {
        return "scanning the source...".to_owned();
    }
    const WIDTH: u64 = 30;
    // By bytes; by objects when there are no bytes to move.
    let done = (p.bytes.min(p.total_bytes) * WIDTH)
        .checked_div(p.total_bytes)
        .unwrap_or(p.objects.min(p.total_objects) * WIDTH / p.total_objects);
    let bar: String = (0..WIDTH)
        .map(|i| if i < done { '#' } else { '.' })
        .collect();
    format!(
        "[{bar}] {} / {}  {} / {} objects  {}/s",
        bytes(p.bytes),
        bytes(p.total_bytes),
        p.objects,
        p.total_objects,
        bytes(rate(p.bytes, elapsed) as u64)
    )
}

/// Per second over `elapsed` (never dividing by zero).
fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-3)
}

/// Decimal units, as disks and networks are sold: `999 B`, `1.50 kB` ... `2.00 GB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// The summary printed at the end.
fn render_summary(s: &Summary, from: &Path, to: &str, mode: &str, elapsed: Duration) -> String {
    let mut out = String::new();
    let count =
        |c: import::Count| format!("{} imported, {} already present", c.imported, c.present);
    if s.repositories == 0 {
        out.push_str(&format!(
            "nothing to import: {} holds no repositories\n",
            from.display()
        ));
    } else if s.wrote_nothing() {
        out.push_str(&format!(
            "nothing to import: everything in {} is already in {}\n",
            from.display(),
            to
        ));
    } else {
        out.push_str(&format!(
            "imported {} into {} ({mode})\n",
            from.display(),
            to
        ));
    }
    out.push_str(&format!("repositories: {}\n", s.repositories));
    out.push_str(&format!("manifests:    {}\n", count(s.manifests)));
    out.push_str(&format!("tags:         {}\n", count(s.tags)));
    out.push_str(&format!("blobs:        {}\n", count(s.blobs)));
    out.push_str(&format!("blob links:   {}\n", count(s.links)));
    out.push_str(&format!("referrers:    {}\n", count(s.referrers)));
    out.push_str(&format!(
        "bytes:        {} ({} B)\n",
        bytes(s.bytes),
        s.bytes
    ));
    out.push_str(&format!(
        "time:         {:.2} s, {:.3} GB/s, {:.0} objects/s\n",
        elapsed.as_secs_f64(),
        rate(s.bytes, elapsed) / 1e9,
        rate(s.objects(), elapsed)
    ));
    if s.skipped.is_empty() {
        out.push_str("skipped:      none\n");
    } else {
        out.push_str(&format!(
            "skipped:      {} (not imported; the rest is complete)\n",
            s.skipped.len()
        ));
        for skip in &s.skipped {
            out.push_str(&format!("  skipped {skip}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1500), "1.50 kB");
        assert_eq!(bytes(2_000_000_000), "2.00 GB");
        assert_eq!(bytes(u64::MAX), "18446744.07 TB");
    }

    #[test]
    fn the_line_shows_bytes_objects_and_rate() {
        let p = ProgressSnapshot {
            total_bytes: 4_000,
            total_objects: 10,
            bytes: 2_000,
            objects: 3,
        };
        assert_eq!(
            progress_line(p, Duration::from_secs(2)),
            format!(
                "[{}{}] 2.00 kB / 4.00 kB  3 / 10 objects  1.00 kB/s",
                "#".repeat(15),
                ".".repeat(15)
            )
        );
        assert_eq!(
            progress_line(ProgressSnapshot::default(), Duration::ZERO),
            "scanning the source..."
        );
    }

    #[test]
    fn a_rerun_says_it_had_nothing_to_do() {
        let empty = Summary::default();
        let text = render_summary(
            &empty,
            Path::new("/old"),
            "/new",
            "copies",
            Duration::from_secs(1),
        );
        assert!(
            text.starts_with("nothing to import: /old holds no repositories\n"),
            "{text}"
        );
        let s = Summary {
            repositories: 2,
            ..Summary::default()
        };
        let text = render_summary(
            &s,
            Path::new("/old"),
            "/new",
            "copies",
            Duration::from_secs(1),
        );
        assert!(
            text.starts_with("nothing to import: everything in /old is already in /new\n"),
            "{text}"
        );
        assert!(text.contains("skipped:      none\n"), "{text}");
    }
}
