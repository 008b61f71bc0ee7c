//! The load of the race tests: pushers that behave like real clients (HEAD
//! each blob first and skip the upload when the registry says it has it;
//! sometimes mount a layer from another repository instead), all sharing a
//! pool of layers, and a deleter that deletes tags and manifests so that
//! shared layers keep becoming garbage and being claimed again. Every answer
//! is written in the [`Ledger`].

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{Client, Failure};
use crate::images::{Blob, Image};
use crate::rng::Rng;

/// The repositories pushed to.
pub const REPOS: [&str; 3] = ["stress/a", "stress/b", "stress/c"];
const PUSHERS: usize = 3;
/// Layers every image draws two of; few enough that each is often referenced
/// by no live image of a repository, and so swept and pushed again.
const SHARED_LAYERS: usize = 12;
/// The deleter deletes while more images than this are live.
const LIVE_TARGET: usize = 15;

/// A manifest push answered 201.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub repo: String,
    pub tag: String,
    pub digest: String,
    /// Everything a pull reads: digest to size (the manifest's own bytes too).
    pub objects: BTreeMap<String, u64>,
}

/// What the registry answered.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Manifest pushes answered 201, in order.
    pub pushed: Vec<Pushed>,
    /// `(repo, tag)` whose DELETE was sent: the manifest may be untagged.
    pub tag_deletes: HashSet<(String, String)>,
    /// `(repo, digest)` whose DELETE was sent: the manifest may be gone.
    pub manifest_deletes: HashSet<(String, String)>,
    /// Answers no client should get from a live registry.
    pub wrong: Vec<String>,
    /// Manifest pushes refused with MANIFEST_BLOB_UNKNOWN although, less
    /// than the delay before, the registry had said it held every blob
    /// (HEAD 200, mount 201, upload 201): what claims exist to prevent.
    pub lost_claims: Vec<String>,
    /// The same refusal more than the delay after the claim: allowed.
    pub late_claims: usize,
    /// How often each kind of step happened.
    pub counts: BTreeMap<&'static str, usize>,
}

impl Ledger {
    /// Whether a DELETE was sent for this image's tag or manifest.
    pub fn delete_sent(&self, p: &Pushed) -> bool {
        self.tag_deletes.contains(&(p.repo.clone(), p.tag.clone()))
            || self
                .manifest_deletes
                .contains(&(p.repo.clone(), p.digest.clone()))
    }

    /// The acknowledged images nothing was asked to delete.
    pub fn survivors(&self) -> Vec<&Pushed> {
        self.pushed
            .iter()
            .filter(|p| !self.delete_sent(p))
            .collect()
    }

    /// Panics with every wrong answer and every lost claim.
    pub fn assert_clean(&self) {
        assert!(
            self.lost_claims.is_empty(),
            "BUG: manifest pushes refused for blobs the registry had just claimed:\n{}",
            self.lost_claims.join("\n")
        );
        assert!(
            self.wrong.is_empty(),
            "wrong answers under load:\n{}",
            self.wrong.join("\n")
        );
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// Pushers and a deleter running until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ledger: Shared,
}

impl Load {
    /// Starts the load against `client`'s registry; `delay` is its
    /// `storage.gc.delay` (how long a claim must hold).
    pub fn start(client: &Client, rng: &mut Rng, delay: Duration) -> Load {
        let pool: Arc<Vec<Blob>> = Arc::new(
            (0..SHARED_LAYERS)
                .map(|_| {
                    let len = rng.range(1024, 24 * 1024) as usize;
                    Blob::new(rng.bytes(len))
                })
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Shared::default();
        let mut tasks = Vec::new();
        for id in 0..PUSHERS {
            let pusher = Pusher {
                id,
                client: client.clone(),
                rng: rng.fork(),
                pool: Arc::clone(&pool),
                ledger: Arc::clone(&ledger),
                delay,
            };
            tasks.push(tokio::spawn(pusher.run(Arc::clone(&stop))));
        }
        tasks.push(tokio::spawn(deleter(
            client.clone(),
            rng.fork(),
            Arc::clone(&ledger),
            Arc::clone(&stop),
        )));
        Load {
            stop,
            tasks,
            ledger,
        }
    }

    /// Stops every client, waits for them, and hands back the ledger.
    pub async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("a load client hung")
                .unwrap();
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

/// What the registry said it holds during one push, and when.
struct Claim {
    digest: String,
    how: String,
    at: Instant,
}

struct Pusher {
    id: usize,
    client: Client,
    rng: Rng,
    pool: Arc<Vec<Blob>>,
    ledger: Shared,
    delay: Duration,
}

impl Pusher {
    async fn run(mut self, stop: Arc<AtomicBool>) {
        let mut seq = 0;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let repo = REPOS[self.rng.range(0, REPOS.len() as u64) as usize];
            let config = Blob::new(format!(r#"{{"pusher":{},"seq":{seq}}}"#, self.id).into_bytes());
            let first = self.rng.range(0, SHARED_LAYERS as u64) as usize;
            let second = (first + self.rng.range(1, SHARED_LAYERS as u64) as usize) % SHARED_LAYERS;
            let mut layers = vec![self.pool[first].clone(), self.pool[second].clone()];
            if self.rng.chance(40) {
                let len = self.rng.range(1, 16 * 1024) as usize;
                layers.push(Blob::new(self.rng.bytes(len)));
            }
            let image = Image::new(config, layers);
            let tag = format!("p{}-{seq}", self.id);
            if let Err(e) = self.push(repo, &tag, &image).await {
                self.ledger
                    .lock()
                    .unwrap()
                    .wrong
                    .push(format!("{repo}:{tag}: {e}"));
            }
            tokio::time::sleep(Duration::from_millis(self.rng.range(2, 15))).await;
        }
    }

    /// One push as a client makes it: for each blob, a HEAD (or, for a shared
    /// layer now and then, a mount from another repository), an upload only
    /// when the registry does not have it, then the manifest.
    async fn push(&mut self, repo: &str, tag: &str, image: &Image) -> Result<(), Failure> {
        let mut claims = Vec::new();
        for (i, blob) in image.blobs().enumerate() {
            let shared = i > 0 && self.pool.iter().any(|b| b.digest == blob.digest);
            if shared && self.rng.chance(25) {
                let from = REPOS[self.rng.range(0, REPOS.len() as u64) as usize];
                if from != repo {
                    let at = Instant::now();
                    let mounted = self.client.mount_or_upload(repo, from, &blob.data).await?;
                    let how = if mounted {
                        format!("mounted from {from}")
                    } else {
                        "uploaded after a refused mount".into()
                    };
                    self.note(if mounted { "mount 201" } else { "mount 202" });
                    claims.push(Claim {
                        digest: blob.digest.clone(),
                        how,
                        at,
                    });
                    continue;
                }
            }
            let at = Instant::now();
            let how = match self.client.head_blob(repo, &blob.digest).await? {
                Some(len) if len == blob.len() => "HEAD 200",
                Some(len) => {
                    return Err(Failure::Status {
                        call: format!("HEAD {}", blob.digest),
                        status: 200,
                        body: format!("Content-Length {len}, not {}", blob.len()),
                    })
                }
                None => {
                    self.client.push_monolithic(repo, &blob.data).await?;
                    "uploaded"
                }
            };
            self.note(how);
            claims.push(Claim {
                digest: blob.digest.clone(),
                how: how.into(),
                at,
            });
        }
        match self.client.put_manifest(repo, tag, &image.manifest).await {
            Ok(digest) => {
                let mut ledger = self.ledger.lock().unwrap();
                ledger.count("manifest 201");
                ledger.pushed.push(Pushed {
                    repo: repo.to_owned(),
                    tag: tag.to_owned(),
                    digest,
                    objects: image.objects(),
                });
                Ok(())
            }
            Err(Failure::Status { status, body, .. })
                if status == 400 && body.contains("MANIFEST_BLOB_UNKNOWN") =>
            {
                let oldest = claims
                    .iter()
                    .map(|c| c.at)
                    .min()
                    .unwrap_or_else(Instant::now);
                let waited = oldest.elapsed();
                let mut ledger = self.ledger.lock().unwrap();
                if waited < self.delay {
                    let said: Vec<String> = claims
                        .iter()
                        .map(|c| format!("{} {} ({:?} before)", c.digest, c.how, c.at.elapsed()))
                        .collect();
                    ledger.lost_claims.push(format!(
                        "{repo}:{tag}: MANIFEST_BLOB_UNKNOWN {body} after {}",
                        said.join(", ")
                    ));
                } else {
                    ledger.late_claims += 1;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn note(&self, what: &'static str) {
        self.ledger.lock().unwrap().count(what);
    }
}

/// Deletes images while more than [`LIVE_TARGET`] are live: by tag (the
/// manifest stays, untagged) or by digest, the older ones first.
async fn deleter(client: Client, mut rng: Rng, ledger: Shared, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let victim = {
            let mut ledger = ledger.lock().unwrap();
            let live: Vec<Pushed> = ledger.survivors().into_iter().cloned().collect();
            if live.len() <= LIVE_TARGET {
                None
            } else {
                let pick = live[rng.range(0, (live.len() / 2) as u64) as usize].clone();
                let by_tag = rng.chance(50);
                if by_tag {
                    ledger
                        .tag_deletes
                        .insert((pick.repo.clone(), pick.tag.clone()));
                } else {
                    ledger
                        .manifest_deletes
                        .insert((pick.repo.clone(), pick.digest.clone()));
                }
                Some((pick, by_tag))
            }
        };
        let Some((pick, by_tag)) = victim else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let reference = if by_tag { &pick.tag } else { &pick.digest };
        let result = client.delete_manifest(&pick.repo, reference).await;
        let mut ledger = ledger.lock().unwrap();
        match result {
            Ok(()) => ledger.count(if by_tag {
                "tag delete 202"
            } else {
                "manifest delete 202"
            }),
            Err(e) => ledger
                .wrong
                .push(format!("DELETE {}:{reference}: {e}", pick.repo)),
        }
    }
}
