//! Many clients at once: 24 pushers send images whose layers overlap (the
//! same bytes into the same repository and into different ones, by one-shot
//! and by chunked uploads) while 8 deleters remove other tags and manifests
//! in the same repositories. Afterwards everything pushed and not deleted is
//! pullable and byte-correct, everything deleted is gone, and the storage
//! folder holds no temporary file and no upload.

#![allow(clippy::unwrap_used)]

#[path = "common/client.rs"]
mod client;
#[path = "common/mod.rs"]
mod common;
#[path = "common/disk.rs"]
mod disk;
#[path = "common/rng.rs"]
mod rng;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{image_manifest, sha256, Client};
use common::TestServer;
use rng::Rng;
use tokio::sync::Barrier;

const PUSHERS: usize = 24;
const DELETERS: usize = 8;
const IMAGES_PER_PUSHER: usize = 3;
const VICTIMS_PER_DELETER: usize = 4;

/// Pushers and victims share these repositories; pusher `i` uses `repo(i)`.
fn repo(i: usize) -> String {
    if i.is_multiple_of(2) {
        "shared/app".to_owned()
    } else {
        format!("team{}/app", i % 4)
    }
}

/// An image as pushed: where, its manifest, and every blob it references.
#[derive(Debug, Clone)]
struct Pushed {
    repo: String,
    tag: String,
    manifest: String,
    blobs: Vec<(String, Arc<Vec<u8>>)>,
}

/// Pushes config + layers (each by a random method) and the manifest.
async fn push_image(
    client: &Client,
    rng: &mut Rng,
    repo: &str,
    tag: &str,
    config: Vec<u8>,
    layers: &[Arc<Vec<u8>>],
) -> client::Result<Pushed> {
    let mut blobs = vec![(sha256(&config), Arc::new(config))];
    for layer in layers {
        blobs.push((sha256(layer), Arc::clone(layer)));
    }
    for (_, data) in &blobs {
        if rng.chance(50) {
            client.push_monolithic(repo, data).await?;
        } else {
            // At most about six chunks; sometimes one covering everything.
            let len = data.len() as u64;
            let chunk = rng.range(len / 6 + 1, len + 2) as usize;
            client
                .push_chunked(repo, data, chunk, rng.chance(50))
                .await?;
        }
    }
    let refs: Vec<(String, usize)> = blobs[1..]
        .iter()
        .map(|(d, b)| (d.clone(), b.len()))
        .collect();
    let manifest = image_manifest((&blobs[0].0, blobs[0].1.len()), &refs);
    client.put_manifest(repo, tag, &manifest).await?;
    Ok(Pushed {
        repo: repo.to_owned(),
        tag: tag.to_owned(),
        manifest,
        blobs,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_and_deletes_keep_the_store_consistent() {
    let started = Instant::now();
    let server = TestServer::anonymous().await;
    let seed = std::env::var("CONCURRENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Rng::clock_seed);
    eprintln!("CONCURRENCY_SEED={seed}");
    let mut rng = Rng::new(seed);
    // Shared layers: every pusher uses two of them.
    let pool: Vec<Arc<Vec<u8>>> = (0..4)
        .map(|_| {
            let len = rng.range(1, 128 * 1024) as usize;
            Arc::new(rng.bytes(len))
        })
        .collect();
    let client = Client::new(&server.base, Duration::from_secs(30));

    // Victims: images the deleters remove, in the pushers' repositories.
    let mut victims = Vec::new();
    for v in 0..DELETERS * VICTIMS_PER_DELETER {
        let config = format!(r#"{{"victim":{v}}}"#).into_bytes();
        let layers = [Arc::clone(&pool[v % pool.len()])];
        let pushed = push_image(
            &client,
            &mut rng,
            &repo(v),
            &format!("victim-{v}"),
            config,
            &layers,
        )
        .await
        .unwrap();
        victims.push(pushed);
    }

    let barrier = Arc::new(Barrier::new(PUSHERS + DELETERS));
    let mut pushers = Vec::new();
    for i in 0..PUSHERS {
        let (client, barrier, pool) = (client.clone(), Arc::clone(&barrier), pool.clone());
        let mut rng = rng.fork();
        pushers.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut pushed = Vec::new();
            for k in 0..IMAGES_PER_PUSHER {
                let config = format!(r#"{{"pusher":{i},"image":{k}}}"#).into_bytes();
                let len = rng.range(1, 64 * 1024) as usize;
                let own = Arc::new(rng.bytes(len));
                let layers = [
                    Arc::clone(&pool[(i + k) % pool.len()]),
                    Arc::clone(&pool[(i + k + 1) % pool.len()]),
                    own,
                ];
                let tag = format!("p{i}-{k}");
                pushed.push(push_image(&client, &mut rng, &repo(i), &tag, config, &layers).await?);
            }
            client::Result::Ok(pushed)
        }));
    }
    let mut deleters = Vec::new();
    for d in 0..DELETERS {
        let (client, barrier) = (client.clone(), Arc::clone(&barrier));
        let first = d * VICTIMS_PER_DELETER;
        let mine: Vec<(usize, Pushed)> = (first..first + VICTIMS_PER_DELETER)
            .map(|n| (n, victims[n].clone()))
            .collect();
        deleters.push(tokio::spawn(async move {
            barrier.wait().await;
            // Even victims lose their tag only; odd ones their manifest (and so the tag).
            for (n, victim) in &mine {
                let reference = if n % 2 == 0 {
                    victim.tag.clone()
                } else {
                    sha256(victim.manifest.as_bytes())
                };
                client.delete_manifest(&victim.repo, &reference).await?;
            }
            client::Result::Ok(())
        }));
    }
    let mut pushed = Vec::new();
    for task in pushers {
        pushed.extend(
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("a push failed: {e}")),
        );
    }
    for task in deleters {
        task.await
            .unwrap()
            .unwrap_or_else(|e| panic!("a delete failed: {e}"));
    }
    assert_eq!(pushed.len(), PUSHERS * IMAGES_PER_PUSHER);

    // Everything pushed is there, byte for byte.
    for image in &pushed {
        let (bytes, digest) = client
            .get_manifest(&image.repo, &image.tag)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}:{} is gone", image.repo, image.tag));
        assert_eq!(
            bytes,
            image.manifest.as_bytes(),
            "{}:{}",
            image.repo,
            image.tag
        );
        assert_eq!(digest, sha256(&bytes));
        for (digest, data) in &image.blobs {
            let got = client.get_blob(&image.repo, digest).await.unwrap();
            let got = got.unwrap_or_else(|| panic!("{} lost {digest}", image.repo));
            assert_eq!(sha256(&got), *digest);
            assert_eq!(got.len(), data.len());
        }
    }
    // Deleted tags are gone; manifests deleted by digest too; tag-only
    // deletes keep the manifest.
    for (n, victim) in victims.iter().enumerate() {
        let by_tag = client
            .get_manifest(&victim.repo, &victim.tag)
            .await
            .unwrap();
        assert!(
            by_tag.is_none(),
            "{}:{} survived its delete",
            victim.repo,
            victim.tag
        );
        let digest = sha256(victim.manifest.as_bytes());
        let by_digest = client.get_manifest(&victim.repo, &digest).await.unwrap();
        assert_eq!(by_digest.is_some(), n % 2 == 0, "{}@{digest}", victim.repo);
    }
    // Tag lists hold exactly the pushed tags.
    let mut repos: Vec<String> = pushed.iter().map(|p| p.repo.clone()).collect();
    repos.sort();
    repos.dedup();
    assert_eq!(client.catalog().await.unwrap(), repos);
    for name in &repos {
        let mut expected: Vec<String> = pushed
            .iter()
            .filter(|p| &p.repo == name)
            .map(|p| p.tag.clone())
            .collect();
        expected.sort();
        assert_eq!(
            client.tags(name).await.unwrap().unwrap(),
            expected,
            "{name}"
        );
    }

    // On disk: every blob hashes to its name; no temp file, no upload left.
    let root = server.dir.path();
    let (count, problems) = disk::BlobCheck::default().run(root);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        count >= pool.len() + pushed.len() * 3,
        "only {count} blob files"
    );
    let files = disk::files(root);
    let temps: Vec<_> = files.iter().filter(|f| disk::is_temp(f)).collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    let uploads: Vec<_> = files.iter().filter(|f| disk::is_upload(f)).collect();
    assert!(uploads.is_empty(), "uploads left: {uploads:?}");
    // Completed uploads leave their repository's `_uploads` in place, and empty.
    let left: Vec<String> = std::fs::read_dir(root.join("v1/repositories/shared/app/_uploads"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "uploads left: {left:?}");
    eprintln!(
        "{} images pushed, {} deletes, {count} blob files checked in {:?}",
        pushed.len(),
        victims.len(),
        started.elapsed()
    );
}
