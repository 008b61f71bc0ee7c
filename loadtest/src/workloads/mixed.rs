//! `mixed`: CI pushers and node pullers at once.
//!
//! Each pusher pushes new 2-layer images (made cheaply, see [`UniqueBlobs`]) as
//! docker does: for every blob a HEAD (absent), a POST and a PUT with the body,
//! then the manifest under a new tag. Each puller pulls the seeded images by
//! tag: the manifest, the config and both layers. Both run for `--duration`;
//! an image counts when its last request succeeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::data::{config, digest, manifest, random_bytes, UniqueBlobs};
use crate::report::{peak_rss_kib, reset_peak_rss, Report};
use crate::workloads::Errors;
use crate::Args;

const SEED_REPO: &str = "bench/mixed-seed";
const SEEDED: usize = 4;

/// An image ready to push: (digest, bytes) of the config and the layers.
pub(crate) struct Image {
    config: (String, Bytes),
    layers: Vec<(String, Bytes)>,
}

impl Image {
    pub(crate) fn new(id: &str, seed: u64, layer_kib: &[u64]) -> Image {
        let cfg = config(id);
        let layers = layer_kib
            .iter()
            .enumerate()
            .map(|(i, kib)| {
                let data = random_bytes(layer_seed(seed, i), layer_bytes(*kib));
                (digest(&data), data)
            })
            .collect();
        Image {
            config: (digest(&cfg), cfg),
            layers,
        }
    }

    /// A new image whose layers come from `sources`, one per layer (see [`UniqueBlobs`]).
    fn unique(id: &str, unique: u64, sources: &[UniqueBlobs]) -> Image {
        let cfg = config(id);
        Image {
            config: (digest(&cfg), cfg),
            layers: sources.iter().map(|source| source.make(unique)).collect(),
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        (self.config.1.len() + self.layers.iter().map(|(_, d)| d.len()).sum::<usize>()) as u64
    }

    fn manifest(&self) -> Bytes {
        let layers: Vec<(String, usize)> = self
            .layers
            .iter()
            .map(|(d, b)| (d.clone(), b.len()))
            .collect();
        manifest((&self.config.0, self.config.1.len()), &layers)
    }

    /// HEAD + POST + PUT per blob, then the manifest. Returns the request count.
    pub(crate) async fn push(&self, client: &Client, repo: &str, tag: &str) -> Result<u64, String> {
        let mut requests = 0;
        for (digest, data) in std::iter::once(&self.config).chain(&self.layers) {
            requests += 1;
            if !client.has_blob(repo, digest).await? {
                client.push_blob(repo, digest, data.clone()).await?;
                requests += 2;
            }
        }
        client.put_manifest(repo, tag, self.manifest()).await?;
        Ok(requests + 1)
    }

    /// Manifest by tag, then every blob. Returns the request count.
    async fn pull(&self, client: &Client, repo: &str, tag: &str) -> Result<u64, String> {
        client.get_manifest(repo, tag).await?;
        for (digest, data) in std::iter::once(&self.config).chain(&self.layers) {
            let answer = client.get_blob(repo, digest).await?;
            if answer.body_len != data.len() as u64 {
                return Err(format!("blob {digest}: {} bytes", answer.body_len));
            }
        }
        Ok(2 + self.layers.len() as u64)
    }
}

/// The seed of layer `i` of the image seeded with `seed`.
fn layer_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(64).wrapping_add(i as u64)
}

/// Bytes of a layer of `kib` KiB (0 when that does not fit in memory anyway).
fn layer_bytes(kib: u64) -> usize {
    kib.checked_mul(1024)
        .and_then(|b| usize::try_from(b).ok())
        .unwrap_or(0)
}

/// What one side (pushers or pullers) did.
#[derive(Default)]
struct Side {
    images: u64,
    requests: u64,
    bytes: u64,
    latencies: Vec<Duration>,
}

impl Side {
    fn add(&mut self, other: Side) {
        self.images += other.images;
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.latencies.extend(other.latencies);
    }
}

pub async fn run(client: &Client, args: &Args) -> Result<Vec<Report>, String> {
    let seeded: Arc<Vec<Image>> = Arc::new(
        (0..SEEDED)
            .map(|i| {
                let seed = args.seed.wrapping_mul(1000).wrapping_add(i as u64);
                Image::new(&format!("seed-{seed}"), seed, &args.layer_kib)
            })
            .collect(),
    );
    for (i, image) in seeded.iter().enumerate() {
        image.push(client, SEED_REPO, &format!("s{i}")).await?;
    }
    // The pushers' layer bodies, made before the clock starts.
    let sources: Arc<Vec<UniqueBlobs>> = Arc::new(
        args.layer_kib
            .iter()
            .enumerate()
            .map(|(i, kib)| UniqueBlobs::new(layer_seed(args.seed, i), layer_bytes(*kib)))
            .collect(),
    );
    let rss_reset = reset_peak_rss(&args.server_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let errors = Arc::new(Errors::default());
    let pushers: Vec<_> = (0..args.pushers)
        .map(|k| {
            let (client, errors, sources) = (client.clone(), errors.clone(), sources.clone());
            let seed = args.seed;
            tokio::spawn(async move {
                let mut side = Side::default();
                let repo = format!("bench/mixed-ci{k}");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let id = format!("{seed}-{k}-{n}");
                    let unique = seed
                        .wrapping_mul(1 << 40)
                        .wrapping_add(((k as u64) << 32) + n);
                    let image = Image::unique(&id, unique, &sources);
                    let t = Instant::now();
                    match image.push(&client, &repo, &format!("p{n}")).await {
                        Ok(requests) => {
                            side.latencies.push(t.elapsed());
                            side.images += 1;
                            side.requests += requests;
                            side.bytes += image.bytes();
                        }
                        Err(e) => errors.record(e),
                    }
                }
                side
            })
        })
        .collect();
    let pullers: Vec<_> = (0..args.pullers)
        .map(|k| {
            let (client, errors, seeded) = (client.clone(), errors.clone(), seeded.clone());
            tokio::spawn(async move {
                let mut side = Side::default();
                let mut n = k;
                while Instant::now() < deadline {
                    let i = n % SEEDED;
                    n += 1;
                    let t = Instant::now();
                    match seeded[i].pull(&client, SEED_REPO, &format!("s{i}")).await {
                        Ok(requests) => {
                            side.latencies.push(t.elapsed());
                            side.images += 1;
                            side.requests += requests;
                            side.bytes += seeded[i].bytes();
                        }
                        Err(e) => errors.record(e),
                    }
                }
                side
            })
        })
        .collect();
    let (mut push, mut pull) = (Side::default(), Side::default());
    for task in pushers {
        push.add(task.await.map_err(|e| e.to_string())?);
    }
    for task in pullers {
        pull.add(task.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib(&args.server_pid);
    let error = errors.summary();
    let report = |name: &str, side: Side| Report {
        workload: name.into(),
        bytes: side.bytes,
        seconds: elapsed,
        requests: side.requests,
        images: Some(side.images),
        latencies: side.latencies,
        peak_rss_kib: peak,
        rss_reset,
        error: error.clone(),
        ..Report::default()
    };
    Ok(vec![report("mixed-push", push), report("mixed-pull", pull)])
}
