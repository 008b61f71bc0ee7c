//! The pull-through cache workloads of `benches/compare.sh`'s `proxy` workload.
//!
//! - `proxy-seed` pushes one image of `--size-mib` in `--proxy-layers` layers of
//!   seeded random bytes (plus a small config) to `--proxy-repo:latest`: the upstream's
//!   content, or a local copy to compare a warm pull against.
//! - `proxy-pull` pulls `--proxy-repo:latest` the way a node does, `--pulls` times at
//!   once, each of them `--pull-repeats` times in a row: the manifest by tag, then
//!   every blob it lists, all of them at once, each on a connection of its own (skopeo
//!   and containerd fetch layers in parallel). The bodies are counted, not hashed (the
//!   client shares the cores it measures). It reports as `proxy-<phase>`
//!   (`--proxy-phase`: direct, cold, warm, local, concurrent), the rate over the wall
//!   time of all pulls. Only the first pull of an uncached image is cold: a cold phase
//!   runs with `--pull-repeats 1`; the others repeat to measure more than a blink.

use std::time::Instant;

use crate::client::Client;
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::mixed::Image;
use crate::workloads::{mib, Errors};
use crate::Args;

/// The tag the seeded image is pushed under and pulled by.
const TAG: &str = "latest";

pub async fn seed(client: &Client, args: &Args) -> Result<Report, String> {
    let layers = args.proxy_layers.max(1);
    let layer_kib = (mib(args.size_mib) / 1024) as u64 / layers;
    let image = Image::new(
        &format!("proxy-{}", args.seed),
        args.seed,
        &vec![layer_kib; layers as usize],
    );
    let started = Instant::now();
    let requests = image.push(client, &args.proxy_repo, TAG).await?;
    Ok(Report {
        workload: "proxy-seed".into(),
        bytes: image.bytes(),
        seconds: started.elapsed().as_secs_f64(),
        requests,
        ..Report::default()
    })
}

/// A blob the manifest lists: digest and size.
struct Listed {
    digest: String,
    size: u64,
}

/// The config and layers of a Docker or OCI image manifest.
fn listed_blobs(manifest: &[u8]) -> Result<Vec<Listed>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let layers = value["layers"]
        .as_array()
        .ok_or("manifest lists no layers (not an image manifest)")?;
    std::iter::once(&value["config"])
        .chain(layers)
        .map(|d| match (d["digest"].as_str(), d["size"].as_u64()) {
            (Some(digest), Some(size)) => Ok(Listed {
                digest: digest.to_owned(),
                size,
            }),
            _ => Err(format!("manifest descriptor without digest or size: {d}")),
        })
        .collect()
}

/// One pull: the manifest, then every blob at once. Returns the blob bytes received.
async fn pull_once(client: Client, repo: String) -> Result<u64, String> {
    let manifest = client.fetch_manifest(&repo, TAG).await?;
    let blobs = listed_blobs(&manifest)?;
    let fetches: Vec<_> = blobs
        .into_iter()
        .map(|blob| {
            let (client, repo) = (client.clone(), repo.clone());
            tokio::spawn(async move {
                let answer = client.get_blob_alone(&repo, &blob.digest).await?;
                if answer.body_len != blob.size {
                    return Err(format!(
                        "blob {}: {} bytes of {}",
                        blob.digest, answer.body_len, blob.size
                    ));
                }
                Ok(blob.size)
            })
        })
        .collect();
    let mut bytes = 0;
    for fetch in fetches {
        bytes += fetch.await.map_err(|e| e.to_string())??;
    }
    Ok(bytes)
}

pub async fn pull(client: &Client, args: &Args) -> Result<Report, String> {
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let pulls: Vec<_> = (0..args.pulls.max(1))
        .map(|_| {
            let (client, repo) = (client.clone(), args.proxy_repo.clone());
            let repeats = args.pull_repeats.max(1);
            tokio::spawn(async move {
                let mut done = Vec::new();
                for _ in 0..repeats {
                    let t = Instant::now();
                    let bytes = pull_once(client.clone(), repo.clone()).await?;
                    done.push((bytes, t.elapsed()));
                }
                Ok::<_, String>(done)
            })
        })
        .collect();
    let errors = Errors::default();
    let (mut bytes, mut latencies) = (0, Vec::new());
    for task in pulls {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(done) => {
                for (n, elapsed) in done {
                    bytes += n;
                    latencies.push(elapsed);
                }
            }
            Err(e) => errors.record(e),
        }
    }
    Ok(Report {
        workload: format!("proxy-{}", args.proxy_phase),
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        requests: latencies.len() as u64,
        latencies,
        peak_rss_kib: peak_rss_kib(&args.server_pid),
        rss_reset,
        error: errors.summary(),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::manifest;

    #[test]
    fn manifest_lists_config_then_layers() {
        let m = manifest(("sha256:c", 2), &[("sha256:l".to_owned(), 5)]);
        let blobs = listed_blobs(&m).unwrap_or_default();
        let listed: Vec<(&str, u64)> = blobs.iter().map(|b| (b.digest.as_str(), b.size)).collect();
        assert_eq!(listed, [("sha256:c", 2), ("sha256:l", 5)]);
        assert!(listed_blobs(br#"{"manifests":[]}"#).is_err());
    }
}
