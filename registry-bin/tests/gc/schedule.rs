//! The server's own schedule (`storage.gc.interval`): garbage goes without
//! any command, and `/metrics` counts the passes and the bytes they freed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::fixture::{metric, GcConfig, Registry};
use crate::images::{pull_verified, Blob, Image};
use crate::rng::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_passes_delete_garbage_and_count_it() {
    let gc = GcConfig {
        delay: Duration::from_secs(1),
        interval: Some("1s"),
        retention: None,
        metrics: true,
    };
    let registry = Registry::start(&gc);
    let client = &registry.client;
    let metrics = registry.metrics_url();
    let mut rng = Rng::new(1414);
    let base = Blob::new(rng.bytes(30_000));
    let keep = Image::new(
        Blob::new(br#"{"image":"keep"}"#.to_vec()),
        vec![base.clone(), Blob::new(rng.bytes(6_000))],
    );
    let gone = Image::new(
        Blob::new(br#"{"image":"gone"}"#.to_vec()),
        vec![base.clone(), Blob::new(rng.bytes(9_000))],
    );
    keep.push(client, "sched/app", "keep").await;
    gone.push(client, "sched/app", "gone").await;
    client
        .delete_manifest("sched/app", &gone.digest)
        .await
        .unwrap();
    let orphan = Blob::new(rng.bytes(5_000));
    client
        .push_monolithic("sched/other", &orphan.data)
        .await
        .unwrap();
    let live = keep.objects();
    // Whatever the delete left of `gone` (its bytes, config and own layer) and the orphan.
    let garbage: Vec<(String, u64)> = registry
        .blobs()
        .into_iter()
        .filter(|(d, _)| !live.contains_key(d))
        .collect();
    for blob in gone
        .blobs()
        .filter(|b| b.digest != base.digest)
        .chain([&orphan])
    {
        assert!(
            garbage.iter().any(|(d, _)| d == &blob.digest),
            "{garbage:?}"
        );
    }
    let freed: u64 = garbage.iter().map(|(_, size)| size).sum();

    // No command: the schedule alone must delete it once it is older than the grace period.
    let started = Instant::now();
    let deadline = started + gc.grace() + Duration::from_secs(10);
    let freed_total = "registry_gc_freed_bytes_total";
    loop {
        let counted = metric(&metrics, freed_total).await;
        let left: Vec<&String> = garbage
            .iter()
            .map(|(d, _)| d)
            .filter(|d| registry.has_blob(d))
            .collect();
        if left.is_empty() && counted == Some(freed as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:?}: {left:?} still on disk; {freed_total} {counted:?}, expected {freed}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok = metric(&metrics, "registry_gc_passes_total{result=\"ok\"}").await;
    assert!(ok.is_some_and(|n| n > 0.0), "passes ok: {ok:?}");
    let blobs = metric(&metrics, "registry_gc_deleted_blobs_total").await;
    assert_eq!(blobs, Some(garbage.len() as f64));
    for result in ["failed", "blocked"] {
        let n = metric(
            &metrics,
            &format!("registry_gc_passes_total{{result=\"{result}\"}}"),
        )
        .await;
        assert_eq!(n, Some(0.0), "{result} passes");
    }
    assert_eq!(registry.blobs(), live);
    let read = pull_verified(client, "sched/app", &keep.digest, &mut HashSet::new())
        .await
        .unwrap();
    assert_eq!(read, live);
    let tagged = client.get_manifest("sched/app", "keep").await.unwrap();
    assert_eq!(tagged.map(|(_, d)| d), Some(keep.digest.clone()));
}
