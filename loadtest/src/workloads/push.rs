//! Blob pushes: one large blob, four at once, and one in PATCH chunks.

use std::time::Instant;

use crate::client::Client;
use crate::data::{digest, random_bytes};
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::mib;
use crate::Args;

const REPO: &str = "bench/push";

/// `push-1g`: POST, then PUT of the whole blob.
pub async fn one(client: &Client, args: &Args) -> Result<Report, String> {
    let data = random_bytes(args.seed, mib(args.size_mib));
    let digest = digest(&data);
    let bytes = data.len() as u64;
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    client.push_blob(REPO, &digest, data).await?;
    let elapsed = started.elapsed();
    Ok(Report {
        workload: "push-1g".into(),
        bytes,
        seconds: elapsed.as_secs_f64(),
        requests: 2,
        latencies: vec![elapsed],
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        ..Report::default()
    })
}

/// `push-4x256m`: four monolithic pushes of a quarter of the size, at once.
pub async fn concurrent(client: &Client, args: &Args) -> Result<Report, String> {
    let blobs: Vec<_> = (0..4u64)
        .map(|i| {
            let data = random_bytes(args.seed.wrapping_mul(16) + 1 + i, mib(args.size_mib) / 4);
            (digest(&data), data)
        })
        .collect();
    let bytes: u64 = blobs.iter().map(|(_, d)| d.len() as u64).sum();
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let tasks: Vec<_> = blobs
        .into_iter()
        .map(|(digest, data)| {
            let client = client.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                client
                    .push_blob(REPO, &digest, data)
                    .await
                    .map(|()| t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    Ok(Report {
        workload: "push-4x256m".into(),
        bytes,
        seconds: elapsed.as_secs_f64(),
        requests: 8,
        latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        ..Report::default()
    })
}

/// `push-chunked`: half the size in `--chunk-mib` PATCHes, then PUT.
pub async fn chunked(client: &Client, args: &Args) -> Result<Report, String> {
    let data = random_bytes(args.seed.wrapping_mul(16) + 9, mib(args.size_mib) / 2);
    let digest = digest(&data);
    let bytes = data.len() as u64;
    let chunk = mib(args.chunk_mib).max(1);
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let latencies = client.push_blob_chunked(REPO, &digest, data, chunk).await?;
    let elapsed = started.elapsed();
    Ok(Report {
        workload: "push-chunked".into(),
        bytes,
        seconds: elapsed.as_secs_f64(),
        requests: latencies.len() as u64 + 2,
        latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        ..Report::default()
    })
}
