//! `manifest-get`: many clients fetching one manifest by tag, as nodes do
//! when a deployment rolls out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::data::{config, digest, manifest, random_bytes};
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::Errors;
use crate::Args;

const REPO: &str = "bench/manifest";

/// Pushes a small image tagged `latest` (as `--user`), then GETs its
/// manifest from `--clients` loops (as `--get-user`) until the duration or
/// the request cap.
pub async fn run(client: &Client, args: &Args) -> Result<Report, String> {
    let cfg = config(&format!("manifest-{}", args.seed));
    let layer = random_bytes(args.seed.wrapping_mul(16) + 11, 4096);
    let (cfg_digest, layer_digest) = (digest(&cfg), digest(&layer));
    client.push_blob(REPO, &cfg_digest, cfg.clone()).await?;
    client.push_blob(REPO, &layer_digest, layer.clone()).await?;
    let body = manifest((&cfg_digest, cfg.len()), &[(layer_digest, layer.len())]);
    client.put_manifest(REPO, "latest", body).await?;

    let getter = client.with_user(
        args.get_user.as_deref().unwrap_or(&args.user),
        args.get_password.as_deref().unwrap_or(&args.password),
    );
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let tasks: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let (getter, issued, errors) = (getter.clone(), issued.clone(), errors.clone());
            let max = args.max_requests;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                    match getter.get_manifest(REPO, "latest").await {
                        Ok(answer) => latencies.push(answer.elapsed),
                        Err(e) => errors.record(e),
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed();
    Ok(Report {
        workload: "manifest-get".into(),
        seconds: elapsed.as_secs_f64(),
        requests: latencies.len() as u64,
        latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        error: errors.summary(),
        ..Report::default()
    })
}
