//! `gc-fill` and `gc-latency`: what the garbage collection benchmark needs from a
//! registry over HTTP (the pass itself is the registry's own command; `benches/compare.sh`
//! times it).
//!
//! `gc-fill` makes the same store on any registry: `--gc-images` small images (a unique
//! config and a unique layer of `--gc-layer-bytes` each, so two blobs per image) spread
//! round-robin over `--gc-repos` repositories and tagged, pushed by `--clients` loops;
//! then every other image's manifest is deleted by digest. What a pass should then free:
//! half of the blobs and the deleted manifests' own bytes. The objects, not the bytes,
//! make a pass's cost, so the blobs stay small.
//!
//! `gc-latency` is `mixed` under other names (`gc-latency-push`, `gc-latency-pull`):
//! run once alone and once beside a pass, it shows what a pass costs the clients.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::data::{config, digest, manifest, UniqueBlobs};
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::{mixed, Errors};
use crate::Args;

/// The repository of image `i`.
fn repo(i: u64, repos: u64) -> String {
    format!("gc/r{:04}", i % repos.max(1))
}

/// Pushes the images, then deletes every odd one's manifest by digest. One report: every
/// request, and the latency of each image's push.
pub async fn fill(client: &Client, args: &Args) -> Result<Report, String> {
    let layers = Arc::new(UniqueBlobs::new(args.seed, args.gc_layer_bytes));
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let pushers: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let (client, next, errors, layers) =
                (client.clone(), next.clone(), errors.clone(), layers.clone());
            let (images, repos, seed) = (args.gc_images, args.gc_repos, args.seed);
            tokio::spawn(async move {
                let mut pushed = Pushed::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= images {
                        break pushed;
                    }
                    let t = Instant::now();
                    match push_image(&client, &repo(i, repos), seed, i, &layers).await {
                        Ok((manifest_digest, bytes)) => {
                            pushed.latencies.push(t.elapsed());
                            pushed.bytes += bytes;
                            if i % 2 == 1 {
                                pushed.garbage.push((i, manifest_digest));
                            }
                        }
                        Err(e) => errors.record(e),
                    }
                }
            })
        })
        .collect();
    let mut pushed = Pushed::default();
    for task in pushers {
        let part = task.await.map_err(|e| e.to_string())?;
        pushed.latencies.extend(part.latencies);
        pushed.bytes += part.bytes;
        pushed.garbage.extend(part.garbage);
    }
    let pushes = pushed.latencies.len() as u64;
    let deletes = delete_manifests(client, args, pushed.garbage, &errors).await?;
    Ok(Report {
        workload: "gc-fill".into(),
        bytes: pushed.bytes,
        seconds: started.elapsed().as_secs_f64(),
        // POST + PUT per blob, PUT manifest, and the DELETEs.
        requests: pushes * 5 + deletes,
        images: Some(pushes),
        latencies: pushed.latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        error: errors.summary(),
        ..Report::default()
    })
}

/// What one pushing loop did.
#[derive(Default)]
struct Pushed {
    latencies: Vec<Duration>,
    bytes: u64,
    /// Images whose manifest goes after the pushes: (index, manifest digest).
    garbage: Vec<(u64, String)>,
}

/// Pushes image `i` (config, layer, manifest under tag `t<i>`); its manifest's digest
/// and the blob bytes pushed.
async fn push_image(
    client: &Client,
    repo: &str,
    seed: u64,
    i: u64,
    layers: &UniqueBlobs,
) -> Result<(String, u64), String> {
    let cfg = config(&format!("gc-{seed}-{i}"));
    let cfg_digest = digest(&cfg);
    let (layer_digest, layer) = layers.make(seed.wrapping_mul(1 << 40).wrapping_add(i));
    let bytes = (cfg.len() + layer.len()) as u64;
    let body = manifest(
        (&cfg_digest, cfg.len()),
        &[(layer_digest.clone(), layer.len())],
    );
    let manifest_digest = digest(&body);
    client.push_blob(repo, &cfg_digest, cfg).await?;
    client.push_blob(repo, &layer_digest, layer).await?;
    client.put_manifest(repo, &format!("t{i}"), body).await?;
    Ok((manifest_digest, bytes))
}

/// Deletes the manifests by digest, `--clients` at a time; how many went.
async fn delete_manifests(
    client: &Client,
    args: &Args,
    garbage: Vec<(u64, String)>,
    errors: &Arc<Errors>,
) -> Result<u64, String> {
    let garbage = Arc::new(garbage);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let (client, garbage, next, errors) = (
                client.clone(),
                garbage.clone(),
                next.clone(),
                errors.clone(),
            );
            let repos = args.gc_repos;
            tokio::spawn(async move {
                let mut deleted = 0u64;
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some((i, digest)) = garbage.get(k) else {
                        break deleted;
                    };
                    match client.delete_manifest(&repo(*i, repos), digest).await {
                        Ok(()) => deleted += 1,
                        Err(e) => errors.record(e),
                    }
                }
            })
        })
        .collect();
    let mut deleted = 0;
    for task in tasks {
        deleted += task.await.map_err(|e| e.to_string())?;
    }
    Ok(deleted)
}

/// `mixed`, reported as `gc-latency-push` and `gc-latency-pull`.
pub async fn latency(client: &Client, args: &Args) -> Result<Vec<Report>, String> {
    let mut reports = mixed::run(client, args).await?;
    for r in &mut reports {
        r.workload = r.workload.replacen("mixed", "gc-latency", 1);
    }
    Ok(reports)
}
