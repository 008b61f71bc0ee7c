//! Crash safety: the real `registry` binary is killed with SIGKILL at random
//! moments while several clients push blobs (one-shot and chunked), images
//! with tags, and delete images; then it is restarted on the same storage.
//! After every restart:
//! - every blob file on disk hashes to its name (`v1/blobs/<alg>/<2>/<hex>/data`);
//! - the catalog and tag lists hold only valid names, never a temp file;
//! - every tag points to a complete manifest whose blobs exist and hash right;
//! - everything acknowledged before the kill is there (deleted: gone);
//! - an upload cut off by the kill resumes from its stored `Range`;
//! - a fresh push and pull succeed.
//!
//! `CRASH_SEED` reproduces a run's contents and kill timings (the
//! scheduling of the clients stays the machine's); `CRASH_KILLS` changes the
//! number of kills (default 32).

#![allow(clippy::unwrap_used)]

#[path = "common/binary.rs"]
mod binary;
#[path = "common/client.rs"]
mod client;
#[path = "common/disk.rs"]
mod disk;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/spawn.rs"]
mod spawn;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use binary::Binary;
use client::{image_manifest, sha256, Client, Failure};
use rng::Rng;

const CLIENTS: usize = 6;
const REPOS: usize = 3;
const DEFAULT_KILLS: usize = 32;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the registry acknowledged (or was asked and may have done).
#[derive(Debug, Default)]
struct Ledger {
    /// `(repo, digest)` answered 201.
    blobs: Vec<(String, String)>,
    /// `(repo, tag, manifest digest)` answered 201.
    images: Vec<(String, String, String)>,
    /// `(repo, manifest digest)` whose DELETE was sent: may or may not be done.
    delete_sent: HashSet<(String, String)>,
    /// `(repo, manifest digest)` whose DELETE answered 202: must be gone.
    deleted: HashSet<(String, String)>,
    /// Wrong answers from a live server.
    wrong: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

fn note_failure(ledger: &Shared, e: &Failure) {
    if e.is_status() {
        ledger.lock().unwrap().wrong.push(e.to_string());
    }
}

/// Blob contents that several clients push, so pushes of one blob race.
fn pool(rng: &mut Rng) -> Vec<Arc<Vec<u8>>> {
    (0..6)
        .map(|_| {
            let len = rng.range(0, 192 * 1024) as usize;
            Arc::new(rng.bytes(len))
        })
        .collect()
}

/// One client of one round.
struct Worker {
    id: usize,
    round: usize,
    client: Client,
    rng: Rng,
    pool: Arc<Vec<Arc<Vec<u8>>>>,
    ledger: Shared,
    stop: Arc<AtomicBool>,
    /// Images this client may delete: `(repo, manifest digest)`.
    mine: Vec<(String, String)>,
}

/// Random operations until `stop`, or until the server is gone.
async fn client_loop(worker: Worker) {
    let Worker {
        id,
        round,
        client,
        mut rng,
        pool,
        ledger,
        stop,
        mut mine,
    } = worker;
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let repo = format!("crash/r{}", rng.range(0, REPOS as u64));
        let pick = rng.range(0, 100);
        let result = if pick < 30 {
            let data = if rng.chance(30) {
                pool[rng.range(0, pool.len() as u64) as usize].to_vec()
            } else {
                let len = rng.range(0, 256 * 1024) as usize;
                rng.bytes(len)
            };
            client.push_monolithic(&repo, &data).await.map(|digest| {
                ledger.lock().unwrap().blobs.push((repo.clone(), digest));
            })
        } else if pick < 55 {
            let len = rng.range(1, 1536 * 1024) as usize;
            let data = rng.bytes(len);
            let chunk = rng.range(64 * 1024, 768 * 1024) as usize;
            let last_in_put = rng.chance(50);
            client
                .push_chunked(&repo, &data, chunk, last_in_put)
                .await
                .map(|digest| {
                    ledger.lock().unwrap().blobs.push((repo.clone(), digest));
                })
        } else if pick < 80 || mine.is_empty() {
            let tag = format!("r{round}-c{id}-{seq}");
            push_image(&client, &mut rng, &pool, &repo, &tag, &ledger)
                .await
                .map(|digest| mine.push((repo.clone(), digest)))
        } else {
            let (repo, digest) = mine.swap_remove(rng.range(0, mine.len() as u64) as usize);
            let key = (repo.clone(), digest.clone());
            ledger.lock().unwrap().delete_sent.insert(key.clone());
            client.delete_manifest(&repo, &digest).await.map(|()| {
                ledger.lock().unwrap().deleted.insert(key);
            })
        };
        if let Err(e) = result {
            note_failure(&ledger, &e);
            // The server is probably dead: do not spin on refused connections.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Config + a pool layer + a new layer, then the manifest under `tag`.
async fn push_image(
    client: &Client,
    rng: &mut Rng,
    pool: &[Arc<Vec<u8>>],
    repo: &str,
    tag: &str,
    ledger: &Shared,
) -> client::Result<String> {
    let config = format!(r#"{{"tag":"{tag}","repo":"{repo}"}}"#).into_bytes();
    let shared = &pool[rng.range(0, pool.len() as u64) as usize];
    let len = rng.range(1, 128 * 1024) as usize;
    let own = rng.bytes(len);
    let config_digest = client.push_monolithic(repo, &config).await?;
    let shared_digest = client.push_monolithic(repo, shared).await?;
    let own_digest = client.push_chunked(repo, &own, 48 * 1024, true).await?;
    let manifest = image_manifest(
        (&config_digest, config.len()),
        &[(shared_digest, shared.len()), (own_digest, own.len())],
    );
    let digest = client.put_manifest(repo, tag, &manifest).await?;
    ledger
        .lock()
        .unwrap()
        .images
        .push((repo.to_owned(), tag.to_owned(), digest.clone()));
    Ok(digest)
}

/// Walks the API: catalog, tags, every tagged manifest and the blobs it
/// references. Blobs already verified in a repository are only HEADed.
async fn walk_api(
    client: &Client,
    verified: &mut HashSet<(String, String)>,
) -> Result<usize, String> {
    let mut tags_seen = 0;
    let catalog = client.catalog().await.map_err(|e| e.to_string())?;
    for repo in &catalog {
        let valid = repo
            .strip_prefix("crash/r")
            .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n < REPOS))
            || repo.starts_with("fresh/")
            || repo == "crash/resume";
        if !valid {
            return Err(format!("catalog lists {repo:?}"));
        }
        let tags = client
            .tags(repo)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{repo} is in the catalog but has no tag list"))?;
        for tag in tags {
            tags_seen += 1;
            if tag.starts_with('.')
                || !tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(format!("{repo} lists tag {tag:?}"));
            }
            let (bytes, digest) = client
                .get_manifest(repo, &tag)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{repo}:{tag} is listed but its manifest is missing"))?;
            if digest != sha256(&bytes) {
                return Err(format!(
                    "{repo}:{tag}: digest header {digest} for other bytes"
                ));
            }
            let manifest: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{repo}:{tag}: not JSON: {e}"))?;
            let mut refs = vec![manifest["config"].clone()];
            refs.extend(manifest["layers"].as_array().cloned().unwrap_or_default());
            for descriptor in refs {
                let blob = descriptor["digest"].as_str().unwrap_or("").to_owned();
                let size = descriptor["size"].as_u64().unwrap_or(u64::MAX);
                check_blob(client, verified, repo, &blob, size)
                    .await
                    .map_err(|e| format!("{repo}:{tag} references {blob}: {e}"))?;
            }
        }
    }
    Ok(tags_seen)
}

/// GET and hash a blob the first time, HEAD it afterwards.
async fn check_blob(
    client: &Client,
    verified: &mut HashSet<(String, String)>,
    repo: &str,
    digest: &str,
    size: u64,
) -> Result<(), String> {
    let key = (repo.to_owned(), digest.to_owned());
    if verified.contains(&key) {
        let len = client
            .head_blob(repo, digest)
            .await
            .map_err(|e| e.to_string())?;
        return match len {
            Some(len) if len == size || size == u64::MAX => Ok(()),
            Some(len) => Err(format!("{len} bytes, not {size}")),
            None => Err("missing".into()),
        };
    }
    let bytes = client
        .get_blob(repo, digest)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("missing")?;
    if sha256(&bytes) != digest {
        return Err(format!(
            "{} bytes that hash to {}",
            bytes.len(),
            sha256(&bytes)
        ));
    }
    if size != u64::MAX && bytes.len() as u64 != size {
        return Err(format!("{} bytes, not {size}", bytes.len()));
    }
    verified.insert(key);
    Ok(())
}

/// What was acknowledged since the last check is there; what was deleted is not.
async fn check_ledger(
    client: &Client,
    ledger: &Ledger,
    from: (usize, usize),
    verified: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    for (repo, digest) in &ledger.blobs[from.0..] {
        check_blob(client, verified, repo, digest, u64::MAX)
            .await
            .map_err(|e| format!("acknowledged blob {repo}@{digest}: {e}"))?;
    }
    for (repo, tag, digest) in &ledger.images[from.1..] {
        let key = (repo.clone(), digest.clone());
        if ledger.delete_sent.contains(&key) {
            continue;
        }
        let got = client
            .get_manifest(repo, tag)
            .await
            .map_err(|e| e.to_string())?;
        match got {
            Some((_, d)) if &d == digest => {}
            other => {
                return Err(format!(
                    "acknowledged {repo}:{tag} ({digest}) reads {other:?}"
                ))
            }
        }
    }
    for (repo, digest) in &ledger.deleted {
        if client
            .get_manifest(repo, digest)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err(format!("deleted manifest {repo}@{digest} is back"));
        }
    }
    Ok(())
}

/// A new blob and image pushed and pulled back, byte for byte.
async fn fresh_push(client: &Client, rng: &mut Rng, round: usize) -> Result<(), String> {
    let repo = format!("fresh/r{}", round % 2);
    let len = rng.range(1, 512 * 1024) as usize;
    let layer = rng.bytes(len);
    let config = format!(r#"{{"fresh":{round}}}"#).into_bytes();
    let layer_digest = client
        .push_chunked(&repo, &layer, 100_000, false)
        .await
        .map_err(|e| e.to_string())?;
    let config_digest = client
        .push_monolithic(&repo, &config)
        .await
        .map_err(|e| e.to_string())?;
    let manifest = image_manifest(
        (&config_digest, config.len()),
        &[(layer_digest.clone(), layer.len())],
    );
    let tag = format!("fresh-{round}");
    client
        .put_manifest(&repo, &tag, &manifest)
        .await
        .map_err(|e| e.to_string())?;
    let pulled = client
        .get_manifest(&repo, &tag)
        .await
        .map_err(|e| e.to_string())?;
    if pulled.map(|(b, _)| b) != Some(manifest.into_bytes()) {
        return Err("fresh manifest does not read back".into());
    }
    let blob = client
        .get_blob(&repo, &layer_digest)
        .await
        .map_err(|e| e.to_string())?;
    if blob != Some(layer) {
        return Err("fresh layer does not read back".into());
    }
    Ok(())
}

/// An upload started before the kill: its first part acknowledged, the rest
/// possibly cut off. Resumed after the restart from the stored `Range`.
struct Resumable {
    location: String,
    data: Vec<u8>,
    acked: usize,
}

async fn start_resumable(base: &str, rng: &mut Rng) -> Option<Resumable> {
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    let len = rng.range(256 * 1024, 3 * 1024 * 1024) as usize;
    let data = rng.bytes(len);
    let res = http
        .post(format!("{base}/v2/crash/resume/blobs/uploads/"))
        .send()
        .await
        .ok()?;
    let location = res.headers().get("location")?.to_str().ok()?.to_owned();
    let first = len / 3;
    let res = http
        .patch(format!("{base}{location}"))
        .header("content-range", format!("0-{}", first - 1))
        .body(data[..first].to_vec())
        .send()
        .await
        .ok()?;
    (res.status() == 202).then_some(Resumable {
        location,
        data,
        acked: first,
    })
}

async fn finish_resumable(base: &str, upload: &Resumable) -> Result<(), String> {
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    let url = format!("{base}{}", upload.location);
    let res = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if res.status() != 204 {
        return Err(format!("upload status after restart: {}", res.status()));
    }
    let range = res
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let stored = match range
        .strip_prefix("0-")
        .and_then(|e| e.parse::<usize>().ok())
    {
        Some(end) => end + 1,
        None => return Err(format!("upload Range {range:?} after restart")),
    };
    if stored < upload.acked || stored > upload.data.len() {
        return Err(format!(
            "upload holds {stored} bytes; {} were acknowledged of {}",
            upload.acked,
            upload.data.len()
        ));
    }
    let digest = sha256(&upload.data);
    let mut put = http.put(format!("{url}?digest={digest}"));
    if stored < upload.data.len() {
        let end = upload.data.len() - 1;
        put = put
            .header("content-range", format!("{stored}-{end}"))
            .body(upload.data[stored..].to_vec());
    }
    let res = put.send().await.map_err(|e| e.to_string())?;
    if res.status() != 201 {
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        return Err(format!("resuming at {stored}: {status} {body}"));
    }
    let blob = http
        .get(format!("{base}/v2/crash/resume/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let bytes = blob.bytes().await.map_err(|e| e.to_string())?;
    if sha256(&bytes) != digest {
        return Err("the resumed blob does not read back".into());
    }
    Ok(())
}

/// What the ledger says about the images an error message names.
fn history(ledger: &Shared, message: &str) -> String {
    let ledger = ledger.lock().unwrap();
    let mut out = String::new();
    for (repo, tag, digest) in &ledger.images {
        if message.contains(&format!("{repo}:{tag} ")) {
            let key = (repo.clone(), digest.clone());
            out += &format!(
                "\n{repo}:{tag} was pushed as {digest}; DELETE sent: {}, acknowledged: {}",
                ledger.delete_sent.contains(&key),
                ledger.deleted.contains(&key)
            );
        }
    }
    out
}

fn start(root: &Path) -> Binary {
    tokio::task::block_in_place(|| Binary::start(root))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_never_corrupts_the_store() {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Rng::clock_seed);
    let kills = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    eprintln!("CRASH_SEED={seed} CRASH_KILLS={kills}");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let pool = Arc::new(pool(&mut rng));
    let ledger: Shared = Arc::default();
    let mut blob_files = disk::BlobCheck::default();
    let mut verified = HashSet::new();
    let mut checked = (0, 0);
    let mut resumable: Option<Resumable> = None;
    let mut stats: HashMap<&str, usize> = HashMap::new();

    for round in 0..=kills {
        let context = |e: String| format!("CRASH_SEED={seed}, after kill {round}: {e}");
        let mut server = start(&root);
        let client = Client::new(&server.url(""), TIMEOUT);
        if round > 0 {
            let tags = match walk_api(&client, &mut verified).await {
                Ok(tags) => tags,
                Err(e) => panic!("{}", context(format!("{e}{}", history(&ledger, &e)))),
            };
            *stats.entry("max tags walked").or_default() = tags;
            let snapshot = std::mem::take(&mut *ledger.lock().unwrap());
            let result = check_ledger(&client, &snapshot, checked, &mut verified).await;
            checked = (snapshot.blobs.len(), snapshot.images.len());
            *ledger.lock().unwrap() = snapshot;
            result.map_err(context).unwrap();
            if let Some(upload) = resumable.take() {
                finish_resumable(&server.url(""), &upload)
                    .await
                    .map_err(context)
                    .unwrap();
                *stats.entry("uploads resumed").or_default() += 1;
            }
            fresh_push(&client, &mut rng, round)
                .await
                .map_err(context)
                .unwrap();
            let wrong = std::mem::take(&mut ledger.lock().unwrap().wrong);
            assert!(
                wrong.is_empty(),
                "{}",
                context(format!("wrong answers: {wrong:#?}"))
            );
        }
        if round == kills {
            break;
        }

        // Load, then SIGKILL at a random moment.
        resumable = start_resumable(&server.url(""), &mut rng).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        // Images of earlier rounds, dealt out for the clients to delete.
        let mut deletable: Vec<(String, String)> = {
            let ledger = ledger.lock().unwrap();
            ledger
                .images
                .iter()
                .map(|(repo, _, digest)| (repo.clone(), digest.clone()))
                .filter(|key| !ledger.delete_sent.contains(key))
                .collect()
        };
        for id in 0..CLIENTS {
            let take = deletable.len().min(2);
            let mine = deletable.split_off(deletable.len() - take);
            tasks.push(tokio::spawn(client_loop(Worker {
                id,
                round,
                client: client.clone(),
                rng: rng.fork(),
                pool: Arc::clone(&pool),
                ledger: Arc::clone(&ledger),
                stop: Arc::clone(&stop),
                mine,
            })));
        }
        let tail = resumable.as_ref().map(|u| {
            let url = server.url(&u.location);
            let (from, data) = (u.acked, u.data[u.acked..].to_vec());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
                let end = from + data.len() - 1;
                let _ = http
                    .patch(url)
                    .header("content-range", format!("{from}-{end}"))
                    .body(data)
                    .send()
                    .await;
            })
        });
        let delay = if rng.chance(10) {
            rng.range(0, 10)
        } else {
            rng.range(20, 450)
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let pid = server.pid();
        tokio::task::block_in_place(|| server.kill());
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            tokio::time::timeout(TIMEOUT * 2, task)
                .await
                .expect("a client hung")
                .unwrap();
        }
        if let Some(tail) = tail {
            tokio::time::timeout(TIMEOUT * 2, tail)
                .await
                .expect("the tail hung")
                .unwrap();
        }
        let (count, problems) = blob_files.run(&root);
        assert!(
            problems.is_empty(),
            "{}",
            context(format!("killed pid {pid} after {delay} ms: {problems:#?}"))
        );
        *stats.entry("max blob files").or_default() = count;
        *stats.entry("kills").or_default() += 1;
    }

    let ledger = ledger.lock().unwrap();
    assert!(stats["kills"] >= kills, "{stats:?}");
    assert!(
        ledger.images.len() >= kills / 4 && ledger.blobs.len() >= kills,
        "too little load to mean anything: {} images, {} blobs",
        ledger.images.len(),
        ledger.blobs.len()
    );
    let uploads = disk::files(&root)
        .iter()
        .filter(|f| disk::is_upload(f))
        .count();
    eprintln!(
        "{stats:?}; acknowledged {} blobs, {} images, {} deletes; {uploads} upload files left for purging; {:?}",
        ledger.blobs.len(),
        ledger.images.len(),
        ledger.deleted.len(),
        started.elapsed()
    );
}
