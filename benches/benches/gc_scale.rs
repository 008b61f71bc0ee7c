//! Garbage collection at scale: one pass over a synthetic store on the file system
//! backend, at several sizes, to show the cost grows linearly with the store.
//!
//! ```text
//! cargo bench -p registry-benches --bench gc_scale                # 25k, 50k, 100k manifests
//! cargo bench -p registry-benches --bench gc_scale -- 2000 4000   # quick look
//! ```
//!
//! Under `cargo test` (no `--bench` argument) it builds and collects one store of 200
//! manifests, as a smoke test.
//!
//! Each size gets a fresh store in a temporary directory (`GC_SCALE_DIR`, else the
//! system's), built through `Store` as pushes leave it: per image a config and a layer
//! blob (data and layer links), the manifest (`put_manifest`), ten images per repository.
//! Every even image is tagged; the odd ones are untagged, so a pass with
//! `delete_untagged` frees them: half the manifests and half the blobs are garbage.
//! The pass then runs with a zero grace period and its figures are printed, with its
//! peak RSS (`VmHWM` of this process, reset before the pass, so the build does not
//! count; the pass runs in-process, as in the server).
//!
//! Not criterion: one pass at each size is the measurement (seconds, not nanoseconds),
//! and a second pass over the same store would find nothing to delete. The stores are
//! removed at the end, not between sizes: on ext4 a bulk delete slows file creation in
//! the same block groups for minutes, which would be measured as the next build's cost.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use registry_core::gc::RetentionPolicies;
use registry_core::{Algorithm, Digest, RepoName, Tag};
use registry_storage::{layout, FsBackend, GcOptions, StorageError, Store};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Images per repository.
const PER_REPO: usize = 10;
/// Images stored at once while building (file system writes wait for syncs).
const BUILDERS: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this too, without
    // it: then one small store, to check the bench still works, not to measure.
    let sizes = match (sizes.is_empty(), args.iter().any(|a| a == "--bench")) {
        (false, _) => sizes,
        (true, true) => vec![25_000, 50_000, 100_000],
        (true, false) => vec![200],
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut dirs = Vec::new();
    let mut rows = Vec::new();
    for &manifests in &sizes {
        let dir = match std::env::var_os("GC_SCALE_DIR") {
            Some(base) => tempfile::tempdir_in(base),
            None => tempfile::tempdir(),
        }
        .expect("temporary directory");
        let store = Store::new(Arc::new(FsBackend::new(dir.path())));
        let built = Instant::now();
        rt.block_on(build(&store, manifests))
            .expect("building the store");
        eprintln!(
            "{manifests} manifests, {} blobs: built in {:.1} s",
            manifests * 2,
            built.elapsed().as_secs_f64()
        );
        let rss_before = status_kib("VmRSS");
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let options = GcOptions {
            delay: Duration::ZERO,
            retention: RetentionPolicies::default(),
            delete_untagged: true,
            dry_run: false,
            evict: Vec::new(),
        };
        let now = SystemTime::now() + Duration::from_secs(1);
        let report = rt
            .block_on(store.collect_garbage(&options, now))
            .expect("garbage collection pass");
        let peak = status_kib("VmHWM");
        // What the pass must have done: half the manifests, their two blobs each and
        // their own bytes.
        assert_eq!(
            report.deleted_manifests.len(),
            manifests / 2,
            "manifests deleted"
        );
        assert_eq!(report.deleted_blobs, manifests / 2 * 3, "blob data deleted");
        assert_eq!(report.blob_sweep_skipped, None);
        let line = serde_line(manifests, &report, rss_before, peak, reset);
        println!("{line}");
        rows.push((manifests, report.seconds, report.storage_ops));
        dirs.push(dir);
    }
    summary(&rows);
    eprintln!("removing the stores");
    drop(dirs);
}

/// Stores `manifests` images (see the module docs).
async fn build(store: &Store, manifests: usize) -> Result<(), StorageError> {
    let mut images = futures::stream::iter(0..manifests)
        .map(|i| image(store, i))
        .buffer_unordered(BUILDERS);
    while let Some(done) = images.next().await {
        done?;
    }
    Ok(())
}

/// Image `i`: config and layer blobs, linked; the manifest; a tag when `i` is even.
async fn image(store: &Store, i: usize) -> Result<(), StorageError> {
    let repo: RepoName = format!("scale/r{:05}", i / PER_REPO)
        .parse()
        .expect("repository name");
    let config = Bytes::from(format!(
        r#"{{"architecture":"amd64","os":"linux","i":{i}}}"#
    ));
    let layer = Bytes::from(format!("layer {i} {}", "x".repeat(200)));
    let mut descriptors = Vec::new();
    for (media_type, bytes) in [
        ("application/vnd.oci.image.config.v1+json", config),
        ("application/vnd.oci.image.layer.v1.tar", layer),
    ] {
        let digest = Digest::of(Algorithm::Sha256, &bytes);
        descriptors.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
            bytes.len()
        ));
        store
            .backend()
            .put(&layout::blob_data(&digest), bytes)
            .await?;
        store.link_blob(&repo, &digest).await?;
    }
    let manifest = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{}]}}"#,
        descriptors[0], descriptors[1]
    ));
    let digest = Digest::of(Algorithm::Sha256, &manifest);
    store
        .put_manifest(&repo, &digest, MANIFEST, manifest)
        .await?;
    if i.is_multiple_of(2) {
        let tag: Tag = format!("t{i}").parse().expect("tag");
        store.put_tag(&repo, &tag, &digest).await?;
    }
    Ok(())
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One JSON line per size.
fn serde_line(
    manifests: usize,
    report: &registry_storage::GcReport,
    rss_before: Option<u64>,
    peak: Option<u64>,
    reset: bool,
) -> String {
    let mib = |k: Option<u64>| k.map_or("null".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    format!(
        r#"{{"manifests":{manifests},"repositories":{},"blobs":{},"seconds":{:.3},"storage_ops":{},"deleted_manifests":{},"deleted_blobs":{},"swept_links":{},"rss_before_mib":{},"peak_rss_mib":{},"peak_reset":{reset},"us_per_manifest":{:.1}}}"#,
        report.repositories,
        report.blobs,
        report.seconds,
        report.storage_ops,
        report.deleted_manifests.len(),
        report.deleted_blobs,
        report.swept_links,
        mib(rss_before),
        mib(peak),
        report.seconds * 1e6 / manifests as f64,
    )
}

/// Time and operations per manifest at each size, against the smallest.
fn summary(rows: &[(usize, f64, u64)]) {
    let Some(&(n0, s0, _)) = rows.first() else {
        return;
    };
    println!("\n| manifests | pass s | µs per manifest | vs smallest | ops per manifest |");
    println!("|---:|---:|---:|---:|---:|");
    for &(n, s, ops) in rows {
        let per = s * 1e6 / n as f64;
        let base = s0 * 1e6 / n0 as f64;
        println!(
            "| {n} | {s:.2} | {per:.1} | {:.2}× | {:.2} |",
            per / base,
            ops as f64 / n as f64
        );
    }
}
