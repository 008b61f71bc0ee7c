//! `pull-1g`: GETs of the large blob, one at a time, each on a connection of its own
//! read by one task; the client counts bytes, never hashes.

use std::time::Instant;

use crate::client::Client;
use crate::data::{digest, random_bytes};
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::mib;
use crate::Args;

const REPO: &str = "bench/push";

pub async fn run(client: &Client, args: &Args) -> Result<Report, String> {
    // The blob push-1g stored with the same seed; pushed now (untimed) if missing.
    let data = random_bytes(args.seed, mib(args.size_mib));
    let digest = digest(&data);
    let size = data.len() as u64;
    if !client.has_blob(REPO, &digest).await? {
        client.push_blob(REPO, &digest, data).await?;
    } else {
        drop(data);
    }
    let rss_reset = reset_peak_rss(&args.server_pid);
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..args.pull_repeats.max(1) {
        let answer = client.get_blob_alone(REPO, &digest).await?;
        if answer.body_len != size {
            return Err(format!("pulled {} bytes of {size}", answer.body_len));
        }
        latencies.push(answer.elapsed);
    }
    let elapsed = started.elapsed();
    Ok(Report {
        workload: "pull-1g".into(),
        bytes: size * latencies.len() as u64,
        seconds: elapsed.as_secs_f64(),
        requests: latencies.len() as u64,
        latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        ..Report::default()
    })
}
