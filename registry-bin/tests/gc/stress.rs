//! Issue 14's stress test: pushers push images that share layers (some
//! mounted across repositories), a deleter deletes tags and manifests, and
//! passes run in a loop both on the server's schedule and from `registry gc`
//! in other processes. Afterwards every manifest acknowledged and not
//! deleted pulls completely, every byte verified, and the bytes on disk are
//! within 10% of the live set's.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::disk;
use crate::fixture::{metric, registry, registry_ok, seeded, GcConfig, Registry};
use crate::images::pull_verified;
use crate::load::{Ledger, Load};
use crate::rng::Rng;
use crate::walk;

/// How long the clients push and delete.
const LOAD: Duration = Duration::from_secs(15);

/// The grace period of the race tests: short, so that layers become garbage
/// (and are claimed back) many times during the load.
pub const DELAY: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_mounts_deletes_and_passes_race_without_losing_anything() {
    let started = Instant::now();
    let mut rng = seeded("stress");
    let gc = GcConfig {
        delay: DELAY,
        interval: Some("1s"),
        retention: None,
        metrics: true,
    };
    let registry = Registry::start(&gc);
    let (ledger, passes) = race(&registry.client, registry.config_arg(), &mut rng, gc.delay).await;
    let scheduled = metric(
        &registry.metrics_url(),
        "registry_gc_passes_total{result=\"ok\"}",
    )
    .await;
    let swept = metric(&registry.metrics_url(), "registry_gc_freed_bytes_total").await;
    assert!(
        scheduled.is_some_and(|n| n >= 3.0),
        "scheduled passes: {scheduled:?}"
    );
    for result in ["blocked", "failed"] {
        let series = format!("registry_gc_passes_total{{result=\"{result}\"}}");
        let n = metric(&registry.metrics_url(), &series).await;
        assert_eq!(n, Some(0.0), "{result} scheduled passes");
    }
    assert!(
        swept.is_some_and(|n| n > 0.0),
        "the schedule freed nothing: {swept:?}"
    );

    let summary = settle_and_verify(&registry, &gc, &ledger).await;
    eprintln!(
        "stress: {summary}; registry gc passes {passes:?}; scheduled ok passes {scheduled:?}, freed {swept:?} B; counts {:?}; late claims {}; {:?}",
        ledger.counts,
        ledger.late_claims,
        started.elapsed()
    );
}

/// Runs the load against `client` for [`LOAD`], with `registry gc` on `config` in a
/// loop beside it. Checks that no client got a wrong answer and that every pass
/// completed: a DELETE racing a pass's walk must not read as an unreadable manifest
/// (exit 2, no blob sweep). Returns the ledger and how the passes ended.
pub async fn race(
    client: &Client,
    config: String,
    rng: &mut Rng,
    delay: Duration,
) -> (Ledger, BTreeMap<String, usize>) {
    let load = Load::start(client, rng, delay);
    let stop = Arc::new(AtomicBool::new(false));
    let passes = tokio::spawn(gc_loop(config, Arc::clone(&stop)));
    tokio::time::sleep(LOAD).await;
    stop.store(true, Ordering::Relaxed);
    let ledger = load.stop().await;
    let passes = passes.await.unwrap();
    ledger.assert_clean();
    assert_eq!(passes.keys().collect::<Vec<_>>(), ["exit 0"], "{passes:?}");
    assert!(
        passes["exit 0"] >= 2,
        "too few `registry gc` passes: {passes:?}"
    );
    (ledger, passes)
}

/// `registry gc` (every other one with `--delete-untagged`) again and again
/// until `stop`; how each ended, e.g. `exit 0`, `exit 2: no blob data swept`.
async fn gc_loop(config: String, stop: Arc<AtomicBool>) -> BTreeMap<String, usize> {
    let mut ends = BTreeMap::new();
    for n in 0..500 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut args = vec!["gc", "-q"];
        if n % 2 == 1 {
            args.push("--delete-untagged");
        }
        args.push(&config);
        let output = registry(&args).await;
        let end = match output.status.code() {
            Some(0) => "exit 0".to_owned(),
            code => format!(
                "exit {code:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        };
        *ends.entry(end).or_default() += 1;
    }
    ends
}

/// After the load: waits out the grace period, runs one last `registry gc
/// --delete-untagged`, and checks that the storage tree is whole, every blob
/// file hashes to its name, every acknowledged image nothing deleted pulls
/// completely by tag and digest, and the blob bytes on disk are at least the
/// live set's and at most 10% more. Returns a summary line.
pub async fn settle_and_verify(registry: &Registry, gc: &GcConfig<'_>, ledger: &Ledger) -> String {
    tokio::time::sleep(gc.grace()).await;
    let out = registry_ok(&["gc", "--delete-untagged", &registry.config_arg()]).await;
    let tree = walk::check(&registry.root);
    assert!(
        tree.problems.is_empty(),
        "storage after the final pass: {:#?}",
        tree.problems
    );
    let (files, problems) = disk::BlobCheck::default().run(&registry.root);
    assert!(problems.is_empty(), "{problems:#?}");

    let live = survivors_pull_whole(&registry.client, ledger).await;
    let (live_bytes, disk_bytes) = assert_live_set_kept(&live, &registry.blobs(), &out);
    format!(
        "{} images acknowledged, {} survived; live set {} blobs {live_bytes} B, on disk {files} blobs {disk_bytes} B; tree {} repositories {} tags {} manifests",
        ledger.pushed.len(),
        ledger.survivors().len(),
        live.len(),
        tree.repositories,
        tree.tags,
        tree.manifests
    )
}

/// Every acknowledged image nothing was asked to delete still reads by its tag and
/// pulls completely, every byte verified. Returns the blobs they hold: digest to size.
pub async fn survivors_pull_whole(client: &Client, ledger: &Ledger) -> BTreeMap<String, u64> {
    let survivors = ledger.survivors();
    assert!(
        !survivors.is_empty(),
        "nothing survived: the load meant nothing"
    );
    let mut seen = HashSet::new();
    let mut live: BTreeMap<String, u64> = BTreeMap::new();
    for image in &survivors {
        let name = format!("{}:{} ({})", image.repo, image.tag, image.digest);
        let tagged = client.get_manifest(&image.repo, &image.tag).await.unwrap();
        assert_eq!(
            tagged.map(|(_, d)| d).as_ref(),
            Some(&image.digest),
            "{name}: the tag no longer reads it"
        );
        let read = pull_verified(client, &image.repo, &image.digest, &mut seen)
            .await
            .unwrap_or_else(|e| panic!("acknowledged and never deleted, but: {e}"));
        assert_eq!(read, image.objects, "{name}");
        live.extend(read);
    }
    live
}

/// Every live blob is stored, and the stored blob bytes are at most 10% more than the
/// live set's (what the last pass, `last_pass`, left). Returns both byte counts.
pub fn assert_live_set_kept(
    live: &BTreeMap<String, u64>,
    stored: &BTreeMap<String, u64>,
    last_pass: &str,
) -> (u64, u64) {
    let missing: Vec<&String> = live.keys().filter(|d| !stored.contains_key(*d)).collect();
    assert!(missing.is_empty(), "live blobs not stored: {missing:?}");
    let (live_bytes, stored_bytes) = (live.values().sum::<u64>(), stored.values().sum::<u64>());
    assert!(
        stored_bytes <= live_bytes + live_bytes / 10,
        "{stored_bytes} B of blobs stored for a live set of {live_bytes} B; last pass:\n{last_pass}"
    );
    (live_bytes, stored_bytes)
}
