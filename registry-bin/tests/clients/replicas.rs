//! Three `registry` processes on one S3 bucket behind a real load balancer (Debian's
//! haproxy, round robin, a new choice of replica per request, no stickiness): skopeo
//! pushes and pulls through it, an upload's requests land on every replica in turn, a
//! tag pushed through one replica is read by the others at once, a replica killed
//! mid-upload or mid-push loses nothing acknowledged, and a rolling update (replicas
//! added, removed and stopped) under pushes fails none of them.
//!
//! The S3 server is the one `scripts/test` starts (`scripts/s3-server`); each test makes
//! a bucket of its own.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::haproxy::Haproxy;
use crate::harness::containers::Containers;
use crate::harness::server::{workdir, Logged};
use crate::harness::{
    need, raw, run_retrying_once, Blob, Endpoint, Image, Layout, Registry, Scheme,
};
use crate::skopeo;
use registry_storage::s3::client::S3Config;

#[path = "../../../registry-storage/tests/s3_env/mod.rs"]
mod s3_env;

/// The replicas, their load balancer and the endpoint clients use.
struct Cluster {
    /// `None` once killed.
    replicas: Vec<Option<Registry>>,
    balancer: Haproxy,
    /// The storage environment every replica gets.
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    /// `n` replicas on a new bucket, behind haproxy.
    fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// [`Cluster::start`] with more environment for every replica.
    fn start_with(n: usize, extra: &[(&'static str, &str)]) -> Cluster {
        let mut env = s3_storage_env(&new_bucket());
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let replicas: Vec<Option<Registry>> = (0..n).map(|_| Some(replica(&env))).collect();
        let backends: Vec<String> = replicas
            .iter()
            .flatten()
            .map(|r| r.endpoint.host.clone())
            .collect();
        need("haproxy", "haproxy");
        let balancer = Haproxy::start(&backends, true);
        Cluster {
            replicas,
            balancer,
            env,
        }
    }

    /// Clients' way in: the load balancer.
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            scheme: Scheme::Http,
            host: self.balancer.host.clone(),
            ca: None,
        }
    }

    /// Replica `i` directly.
    fn replica(&self, i: usize) -> Endpoint {
        self.replicas[i]
            .as_ref()
            .expect("replica is running")
            .endpoint
            .clone()
    }

    /// SIGKILL of replica `i`.
    fn kill(&mut self, i: usize) {
        drop(self.replicas[i].take());
    }

    /// One step of a rolling update: a new replica joins the balancer once it answers,
    /// then replica `old` leaves it and gets SIGTERM (and must exit cleanly). Returns
    /// the new replica's index.
    fn replace(&mut self, old: usize) -> usize {
        let new = self.replicas.len();
        let registry = replica(&self.env);
        self.balancer
            .add(&format!("r{new}"), &registry.endpoint.host);
        self.replicas.push(Some(registry));
        self.balancer.remove(&format!("r{old}"));
        self.replicas[old]
            .take()
            .expect("replica is running")
            .terminate();
        new
    }
}

/// A registry process with the storage of `env`.
fn replica(env: &[(&'static str, String)]) -> Registry {
    Registry::start_with(Scheme::Http, |_, cmd| {
        cmd.envs(env.iter().cloned());
    })
}

/// A new bucket on the S3 server of the tests.
pub(crate) fn new_bucket() -> String {
    let bucket = s3_env::unique_bucket();
    create_bucket(s3_env::config(&bucket, "registry"));
    bucket
}

/// Creates the bucket of `config` (on a thread and runtime of its own: the callers are
/// blocking tests).
fn create_bucket(config: S3Config) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(s3_env::client_for(config));
    })
    .join()
    .unwrap();
}

/// The environment that puts a registry's storage in `bucket`, under `/registry`.
pub(crate) fn s3_storage_env(bucket: &str) -> Vec<(&'static str, String)> {
    storage_env(&s3_env::config(bucket, "registry"))
}

/// The environment that puts a registry's storage where `config` says.
fn storage_env(config: &S3Config) -> Vec<(&'static str, String)> {
    let bucket = &config.bucket;
    let (access, secret, _) = config.credentials.clone().unwrap();
    vec![
        ("REGISTRY_STORAGE_S3_REGION", config.region.clone()),
        (
            "REGISTRY_STORAGE_S3_REGIONENDPOINT",
            config.endpoint.to_string(),
        ),
        ("REGISTRY_STORAGE_S3_BUCKET", bucket.to_owned()),
        ("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/registry".into()),
        ("REGISTRY_STORAGE_S3_ACCESSKEY", access),
        ("REGISTRY_STORAGE_S3_SECRETKEY", secret),
        // The smallest parts S3 takes, so that small test blobs use several.
        (
            "REGISTRY_STORAGE_S3_CHUNKSIZE",
            (5 * 1024 * 1024).to_string(),
        ),
    ]
}

/// An image whose first layer takes two S3 parts, the others a few KiB.
fn image(seed: u64) -> Image {
    Image::build(seed, "amd64", [7 * 1024 * 1024, 20_000, 300_000])
}

/// Pushes image `seed` into `repo` and pulls it back, comparing every blob. A push that
/// fails saying one of `retry_on` is run again once: what a CI job does when the
/// replica serving its request was killed under it (skopeo does not retry a failed
/// upload by itself).
fn push_and_pull(
    c: &Containers,
    ep: &Endpoint,
    work: &Path,
    repo: &str,
    seed: u64,
    retry_on: &[&str],
) -> Image {
    let image = image(seed);
    let src = Layout::of_image(&work.join(format!("src-{seed}")), "v1", &image);
    let push = |_| {
        skopeo::copy_command(
            c,
            &["--retry-times", "3"],
            &src.oci_ref("v1"),
            &ep.docker_ref(repo, "v1"),
        )
    };
    let step = "skopeo push through the balancer";
    run_retrying_once(step, retry_on, push);
    let out = Layout {
        dir: work.join(format!("out-{seed}")),
    };
    skopeo::copy(
        c,
        "skopeo pull through the balancer",
        &["--retry-times", "3"],
        &ep.docker_ref(repo, "v1"),
        &out.oci_ref("v1"),
    );
    out.assert_has(&image.blobs(), "pulled back through the balancer");
    image
}

/// With `storage.redirect` on, skopeo pulls every blob straight from the bucket: each
/// replica answers the blob GETs 307, and the bytes skopeo gets are still the pushed ones.
#[test]
fn skopeo_pulls_blobs_from_the_bucket_with_storage_redirect() {
    let cluster = Cluster::start_with(3, &[("REGISTRY_STORAGE_REDIRECT_DISABLE", "false")]);
    let ep = cluster.endpoint();
    let work = workdir();
    let c = Containers::new(&ep);
    skopeo::login(&c);
    let image = push_and_pull(&c, &ep, work.path(), "s3/redirect", 3, &[]);
    let blob_gets: Vec<Logged> = cluster
        .replicas
        .iter()
        .flatten()
        .flat_map(Registry::requests)
        .filter(|r| r.method == "GET" && r.route == "blob_get")
        .collect();
    assert!(blob_gets.len() >= image.blobs().len(), "{blob_gets:?}");
    assert!(blob_gets.iter().all(|r| r.status == 307), "{blob_gets:?}");
}

#[test]
fn skopeo_pushes_and_pulls_through_three_replicas() {
    let cluster = Cluster::start(3);
    let ep = cluster.endpoint();
    let c = Containers::new(&ep);
    skopeo::login(&c);
    let work = workdir();
    let image = push_and_pull(&c, &ep, work.path(), "s3/app", 1, &[]);
    for i in 0..3 {
        raw::assert_image(&cluster.replica(i), "s3/app", "v1", &image, "each replica");
        let served = cluster.replicas[i].as_ref().unwrap().requests();
        assert!(
            served.iter().any(|r| r.route.starts_with("upload")),
            "replica {i} took part in the push: {served:?}"
        );
    }
}

/// The upload URL's path from a `Location` header (absolute or relative).
fn path_of(location: &str) -> String {
    match location.find("/v2/") {
        Some(at) => location[at..].to_owned(),
        None => panic!("unexpected Location {location:?}"),
    }
}

#[test]
fn an_upload_goes_on_wherever_its_chunks_land() {
    let mut cluster = Cluster::start(3);
    let data: Vec<u8> = (0..13 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let blob = Blob::new("application/octet-stream", data.clone());
    let start = raw::request(
        &cluster.replica(0),
        "POST",
        "/v2/s3/chunks/blobs/uploads/",
        &[],
        Vec::new(),
    );
    assert_eq!(start.status, 202);
    let mut location = path_of(start.header("location"));
    // Chunks on replicas 1, 2 and 0 in turn, one of 6 MiB (a part), one small, ...
    let cuts = [0, 6 * 1024 * 1024, 6 * 1024 * 1024 + 1000, 12 * 1024 * 1024];
    for (n, window) in cuts.windows(2).enumerate() {
        let chunk = data[window[0]..window[1]].to_vec();
        let range = format!("{}-{}", window[0], window[1] - 1);
        let res = raw::request(
            &cluster.replica((n + 1) % 3),
            "PATCH",
            &location,
            &[
                ("content-range", &range),
                ("content-type", "application/octet-stream"),
            ],
            chunk,
        );
        assert_eq!(
            res.status,
            202,
            "chunk {n}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(res.header("range"), format!("0-{}", window[1] - 1));
        location = path_of(res.header("location"));
    }
    // The replica that took the last chunk dies; another one reports the offset and
    // takes the rest, a third completes it.
    cluster.kill(0);
    let status = raw::request(&cluster.replica(1), "GET", &location, &[], Vec::new());
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), format!("0-{}", cuts[3] - 1));
    let res = raw::request(
        &cluster.replica(1),
        "PATCH",
        &location,
        &[("content-type", "application/octet-stream")],
        data[cuts[3]..].to_vec(),
    );
    assert_eq!(res.status, 202);
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = raw::request(
        &cluster.replica(2),
        "PUT",
        &format!("{location}{separator}digest={}", blob.digest),
        &[],
        Vec::new(),
    );
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    for i in [1, 2] {
        let got = raw::get(
            &cluster.replica(i),
            &format!("/v2/s3/chunks/blobs/{}", blob.digest),
        );
        assert_eq!(got.status, 200);
        assert!(got.body == data, "replica {i} serves the blob whole");
    }
    let through = raw::get(
        &cluster.endpoint(),
        &format!("/v2/s3/chunks/blobs/{}", blob.digest),
    );
    assert!(through.body == data);
}

/// Pushes `image`'s blobs and manifest with plain requests through `ep`, tagged `tag`.
fn push_raw(ep: &Endpoint, repo: &str, tag: &str, image: &Image) {
    for blob in image.blobs() {
        let res = raw::request(
            ep,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest),
            &[("content-type", "application/octet-stream")],
            blob.data.clone(),
        );
        assert_eq!(res.status, 201, "blob {}", blob.digest);
    }
    let res = raw::request(
        ep,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("content-type", &image.manifest.media_type)],
        image.manifest.data.clone(),
    );
    assert_eq!(res.status, 201);
}

#[test]
fn a_tag_pushed_through_one_replica_is_read_by_all_at_once() {
    let cluster = Cluster::start(3);
    for round in 0..6u64 {
        let image = Image::small(100 + round);
        push_raw(
            &cluster.replica((round % 3) as usize),
            "s3/moving",
            "latest",
            &image,
        );
        for i in 0..3 {
            let got = raw::manifest(
                &cluster.replica(i),
                "s3/moving",
                "latest",
                "read after write",
            );
            assert_eq!(
                got.header("docker-content-digest"),
                image.manifest.digest,
                "round {round}: replica {i} serves the tag just pushed"
            );
        }
    }
}

/// Three skopeo pushes (and pulls back) at once, of images into `<repo>0..2` made from
/// seeds `first_seed..`; each thread returns its image.
fn start_pushes(
    ep: &Endpoint,
    work: &Path,
    repo: &str,
    first_seed: u64,
    retry_on: &'static [&'static str],
) -> Vec<(u64, std::thread::JoinHandle<Image>)> {
    (0..3u64)
        .map(|n| {
            let (ep, dir, repo) = (ep.clone(), work.to_path_buf(), format!("{repo}{n}"));
            let handle = std::thread::spawn(move || {
                let c = Containers::new(&ep);
                skopeo::login(&c);
                push_and_pull(&c, &ep, &dir, &repo, first_seed + n, retry_on)
            });
            (n, handle)
        })
        .collect()
}

#[test]
fn a_replica_killed_during_pushes_loses_nothing_acknowledged() {
    let mut cluster = Cluster::start(3);
    let work = workdir();
    let pushes = start_pushes(
        &cluster.endpoint(),
        work.path(),
        "s3/killed",
        10,
        // The balancer answers 502 to a request the killed replica was answering,
        // or closes the connection of one it was still reading.
        &[
            // skopeo words it "502 Bad Gateway" or "502 (Bad Gateway)", by request.
            "Bad Gateway",
            "use of closed network connection",
            "connection reset by peer",
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
    cluster.kill(1);
    for (n, push) in pushes {
        let image = push
            .join()
            .expect("push and pull despite the killed replica");
        for i in [0, 2] {
            raw::assert_image(
                &cluster.replica(i),
                &format!("s3/killed{n}"),
                "v1",
                &image,
                "after the kill",
            );
        }
    }
}

/// A private S3 server (its gateway is restarted under load, which the other tests
/// must not see); stopped and removed on drop.
struct PrivateS3 {
    dir: tempfile::TempDir,
}

impl PrivateS3 {
    /// `scripts/s3-server ACTION` on this server's folder.
    fn script(&self, action: &str) -> std::process::Output {
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server"))
            .arg(action)
            .arg(self.dir.path().join("s3"))
            .output()
            .unwrap()
    }

    /// Runs `action`, which must succeed.
    fn run(&self, action: &str) {
        let out = self.script(action);
        assert!(
            out.status.success(),
            "s3-server {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> PrivateS3 {
        let s3 = PrivateS3 { dir: workdir() };
        s3.run("start");
        s3
    }

    fn config(&self, bucket: &str) -> S3Config {
        s3_env::config_from_file(&self.dir.path().join("s3/env"), bucket, "registry")
    }

    fn restart_gateway(&self) {
        self.run("restart-gateway");
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

#[test]
fn pushes_survive_the_object_store_restarting() {
    let s3 = PrivateS3::start();
    let config = s3.config(&s3_env::unique_bucket());
    create_bucket(config.clone());
    let env = storage_env(&config);
    let registry = Registry::start_with(Scheme::Http, |_, cmd| {
        cmd.envs(env.iter().cloned());
    });
    let work = workdir();
    let pushes = start_pushes(&registry.endpoint, work.path(), "s3/restart", 20, &[]);
    std::thread::sleep(Duration::from_millis(500));
    s3.restart_gateway();
    for (n, push) in pushes {
        let image = push.join().expect("push and pull despite the restart");
        raw::assert_image(
            &registry.endpoint,
            &format!("s3/restart{n}"),
            "v1",
            &image,
            "after the restart",
        );
    }
}

/// A rolling update as Kubernetes makes one, three times over (a new replica joins the
/// Service, then an old one leaves it and is stopped with SIGTERM), while two skopeo
/// clients push and pull image after image through the balancer: not one push or pull
/// may fail, and every image pushed is then read whole from the new replicas alone.
#[test]
fn a_rolling_update_under_pushes_fails_nothing() {
    let mut cluster = Cluster::start(3);
    let work = workdir();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pushers: Vec<_> = (0..2u64)
        .map(|n| {
            let (ep, dir, done) = (cluster.endpoint(), work.path().to_path_buf(), done.clone());
            std::thread::spawn(move || {
                let c = Containers::new(&ep);
                skopeo::login(&c);
                let mut pushed = Vec::new();
                for seed in (100 * (n + 1)).. {
                    let repo = format!("s3/rolling{seed}");
                    pushed.push((repo.clone(), push_and_pull(&c, &ep, &dir, &repo, seed, &[])));
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                }
                pushed
            })
        })
        .collect();
    let new: Vec<usize> = (0..3)
        .map(|old| {
            std::thread::sleep(Duration::from_millis(500));
            cluster.replace(old)
        })
        .collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for pusher in pushers {
        for (repo, image) in pusher.join().expect("every push and pull succeeds") {
            for &i in &new {
                raw::assert_image(&cluster.replica(i), &repo, "v1", &image, "after the update");
            }
        }
    }
}
