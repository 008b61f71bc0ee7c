//! The pull-through cache with real upstreams and real clients: CNCF Distribution 2.8
//! as the upstream (htpasswd, or Bearer tokens from a test issuer), skopeo and podman pulling through the cache by prefix,
//! containerd pulling through it as a registry mirror (`hosts.toml`, `?ns=`), pushes
//! beside it, the upstream killed, lying, and hit by sixteen pulls at once.
//! Every pulled byte is compared with what was pushed upstream, by digest.
//!
//! The cache's own side runs over plain HTTP: TLS to clients is the same code as
//! without the cache, covered by every other module of this suite.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sha2::Digest as _;

use crate::harness::containerd::Containerd;
use crate::harness::containers::Containers;
use crate::harness::distribution::{free_port, with_proxy_config, Distribution, UpstreamAuth};
use crate::harness::server::workdir;
use crate::harness::token_issuer::{Asked, TokenIssuer};
use crate::harness::{
    raw, run, run_fails, Blob, Image, Index, Layout, Registry, Scheme, PASS, USER,
};

pub(crate) const PREFIX: &str = "mirror.test";

pub(crate) fn creds() -> String {
    format!("{USER}:{PASS}")
}

/// The lines under `proxy:` of one upstream on [`PREFIX`] at `url` (credentials
/// [`USER`]/[`PASS`]).
pub(crate) fn upstream_lines(url: &str, ttl: &str) -> String {
    format!(
        "  upstreams:\n    - prefix: {PREFIX}\n      url: {url}\n      username: {USER}\n      password: \"{PASS}\"\n      ttl: {ttl}\n      timeouts: {{connect: 2s, read: 10s}}\n"
    )
}

/// Our registry with one upstream on [`PREFIX`] at `url` (credentials [`USER`]/[`PASS`]).
fn cache_of(url: &str, ttl: &str) -> Registry {
    let proxy = upstream_lines(url, ttl);
    Registry::start_with(Scheme::Http, |dir, cmd| with_proxy_config(dir, cmd, &proxy))
}

/// `skopeo copy --preserve-digests` of `image` from an OCI layout into the upstream.
pub(crate) fn push_upstream(upstream: &Distribution, repo: &str, tag: &str, image: &Image) {
    let work = workdir();
    let src = Layout::of_image(&work.path().join("src"), tag, image);
    let c = Containers::new(&upstream.endpoint);
    run(
        "skopeo push to the upstream",
        c.skopeo()
            .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
            .args(["--dest-creds", &creds()])
            .arg(src.oci_ref(tag))
            .arg(upstream.endpoint.docker_ref(repo, tag)),
    );
}

/// `skopeo copy` of `<PREFIX>/<repo>` `reference` (a tag or a digest) from the cache
/// into a fresh OCI layout in `dir`.
fn pull_through(
    c: &Containers,
    registry: &Registry,
    repo: &str,
    reference: &str,
    dir: &std::path::Path,
) -> Layout {
    run(
        &format!("skopeo pull of {repo} {reference} through the cache"),
        c.skopeo()
            .args(["copy", "--preserve-digests", "--src-tls-verify=false"])
            .args(["--src-creds", &creds()])
            .arg(
                registry
                    .endpoint
                    .docker_ref(&format!("{PREFIX}/{repo}"), reference),
            )
            .arg(format!("oci:{}:pulled", dir.display())),
    );
    Layout {
        dir: dir.to_path_buf(),
    }
}

/// The value of a series in the cache's `/metrics`.
fn metric(registry: &Registry, series: &str) -> u64 {
    let text = raw::get(&registry.endpoint, "/metrics");
    let text = String::from_utf8_lossy(&text.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
}

fn series(name: &str) -> String {
    format!("{name}{{upstream=\"{PREFIX}\"}}")
}

#[test]
fn skopeo_and_podman_pull_by_prefix_pushes_work_beside_and_the_cache_outlives_the_upstream() {
    let mut upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::small(31);
    push_upstream(&upstream, "lib/app", "v1", &image);
    let registry = cache_of(&upstream.url(), "1s");
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    let work = workdir();

    // First pull: fetched upstream, every byte as pushed there.
    let first = pull_through(&c, &registry, "lib/app", "v1", &work.path().join("first"));
    first.assert_has(&image.blobs(), "first pull through the cache");
    raw::assert_image(
        ep,
        &format!("{PREFIX}/lib/app"),
        "v1",
        &image,
        "cached image",
    );
    assert!(metric(&registry, &series("registry_proxy_misses_total")) >= 4);
    let fetched = metric(&registry, &series("registry_proxy_fetched_bytes_total"));
    let pushed: usize =
        image.blobs().iter().map(|b| b.data.len()).sum::<usize>() + image.manifest.data.len();
    assert_eq!(fetched, pushed as u64, "bytes fetched upstream");

    // podman by prefix, by tag then by digest.
    run("podman login", &mut c.login(c.podman(), PASS));
    let by_tag = format!("{}/{PREFIX}/lib/app:v1", ep.host);
    let out = run(
        "podman pull by tag",
        c.podman().args(["pull", "--tls-verify=false", &by_tag]),
    );
    assert!(!out.trim().is_empty(), "podman printed no image id");
    let by_digest = format!("{}/{PREFIX}/lib/app@{}", ep.host, image.manifest.digest);
    run(
        "podman pull by digest",
        c.podman().args(["pull", "--tls-verify=false", &by_digest]),
    );

    // Pushes: refused under the prefix with DENIED naming the upstream, accepted elsewhere.
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let stderr = run_fails(
        "skopeo push into the cache's prefix",
        c.skopeo()
            .args(["copy", "--dest-tls-verify=false", "--dest-creds", &creds()])
            .arg(src.oci_ref("v1"))
            .arg(ep.docker_ref(&format!("{PREFIX}/lib/mine"), "v1")),
    );
    assert!(stderr.contains("denied"), "{stderr}");
    let refused = raw::request(
        ep,
        "POST",
        &format!("/v2/{PREFIX}/lib/mine/blobs/uploads/"),
        &[],
        Vec::new(),
    );
    assert_eq!(refused.status, 403);
    let body = String::from_utf8_lossy(&refused.body);
    assert!(
        body.contains("DENIED") && body.contains(&upstream.url()),
        "{body}"
    );
    run(
        "skopeo push beside the cache",
        c.skopeo()
            .args([
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds(),
            ])
            .arg(src.oci_ref("v1"))
            .arg(ep.docker_ref("team/app", "v1")),
    );
    raw::assert_image(ep, "team/app", "v1", &image, "pushed beside the cache");

    // The upstream goes away: the tag (past its ttl) and the digest still pull.
    upstream.kill();
    std::thread::sleep(Duration::from_millis(1200));
    let stale = pull_through(&c, &registry, "lib/app", "v1", &work.path().join("stale"));
    stale.assert_has(&image.blobs(), "pull by tag with the upstream down");
    let pinned = pull_through(
        &c,
        &registry,
        "lib/app",
        &image.manifest.digest,
        &work.path().join("pinned"),
    );
    pinned.assert_has(&image.blobs(), "pull by digest with the upstream down");
    assert!(metric(&registry, &series("registry_proxy_stale_total")) >= 1);

    // What was never cached fails with an error body naming the upstream.
    let missing = raw::get(ep, &format!("/v2/{PREFIX}/lib/other/manifests/v1"));
    assert_eq!(
        missing.status,
        503,
        "{}",
        String::from_utf8_lossy(&missing.body)
    );
    let body = String::from_utf8_lossy(&missing.body);
    assert!(
        body.contains("UNKNOWN") && body.contains(&upstream.url()),
        "{body}"
    );
}

#[test]
fn a_bearer_token_upstream_is_pulled_through_with_one_token_per_repository() {
    let issuer = TokenIssuer::start();
    let upstream = Distribution::start(UpstreamAuth::Token(&issuer));
    let image = Image::small(34);
    push_upstream(&upstream, "lib/app", "v1", &image);
    let registry = cache_of(&upstream.url(), "10m");
    let before = issuer.asked.lock().unwrap().len();
    let c = Containers::new(&registry.endpoint);
    let work = workdir();
    let pulled = pull_through(&c, &registry, "lib/app", "v1", &work.path().join("pulled"));
    pulled.assert_has(&image.blobs(), "pull through a token upstream");
    raw::assert_image(
        &registry.endpoint,
        &format!("{PREFIX}/lib/app"),
        "v1",
        &image,
        "cached",
    );
    let asked = issuer.asked.lock().unwrap()[before..].to_vec();
    assert_eq!(
        asked,
        [Asked {
            scope: "repository:lib/app:pull".into(),
            authenticated: true,
        }],
        "one token, with the configured credentials, for the manifest and every blob"
    );
}

#[test]
fn containerd_pulls_a_two_platform_index_through_the_cache_as_a_mirror() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let work = workdir();
    let index = Index::two_platforms(35);
    let src = Layout::of_index(&work.path().join("src"), "v1", &index);
    let c = Containers::new(&upstream.endpoint);
    run(
        "skopeo push of an index to the upstream",
        c.skopeo()
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .args(["--dest-creds", &creds()])
            .arg(src.oci_ref("v1"))
            .arg(upstream.endpoint.docker_ref("lib/multi", "v1")),
    );
    let registry = cache_of(&upstream.url(), "10m");
    let node = Containerd::start(&registry.endpoint);
    node.mirror(PREFIX, &registry.endpoint);
    let before = registry.requests().len();
    let reference = format!("{PREFIX}/lib/multi:v1");
    let step = "ctr images pull --all-platforms through the mirror";
    run(
        step,
        node.remote("pull").arg("--all-platforms").arg(&reference),
    );
    node.assert_complete(&reference, step);
    let dir = workdir();
    let exported = node.export(&reference, true, dir.path(), step);
    let top: &Blob = &index.index;
    exported.assert_has(&[top], step);
    exported.assert_has(&index.blobs(), step);
    // containerd asked for `lib/multi?ns=mirror.test`; the cache served it as
    // `mirror.test/lib/multi`.
    let served = registry.requests_since(before);
    assert!(
        served.iter().any(|r| r.route == "manifest_get"
            && r.repository == format!("{PREFIX}/lib/multi")
            && r.status == 200),
        "{served:#?}"
    );
    raw::assert_index(
        &registry.endpoint,
        &format!("{PREFIX}/lib/multi"),
        "v1",
        &index,
        "cached index",
    );
}

#[test]
fn distributions_proxy_remoteurl_serves_misses_from_upstream_and_takes_pushes_meanwhile() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::small(36);
    push_upstream(&upstream, "lib/app", "v1", &image);
    let proxy = format!(
        "  remoteurl: {}\n  username: {USER}\n  password: \"{PASS}\"\n  ttl: 1s\n",
        upstream.url()
    );
    let registry =
        Registry::start_with(Scheme::Http, |dir, cmd| with_proxy_config(dir, cmd, &proxy));
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    let work = workdir();
    let copy = |step: &str, from: String, to: String| {
        run(
            step,
            c.skopeo()
                .args([
                    "copy",
                    "--preserve-digests",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                ])
                .args(["--src-creds", &creds(), "--dest-creds", &creds()])
                .arg(from)
                .arg(to),
        );
    };
    // A miss by the upstream's own name, no prefix.
    let first = work.path().join("first");
    copy(
        "skopeo pull of a miss",
        ep.docker_ref("lib/app", "v1"),
        format!("oci:{}:v1", first.display()),
    );
    Layout { dir: first }.assert_has(&image.blobs(), "pull of a miss");
    // Pushes go on while cached pulls are served, at the same time.
    let local = Image::small(37);
    let src = Layout::of_image(&work.path().join("src"), "v1", &local);
    std::thread::scope(|scope| {
        let pushes: Vec<_> = (0..2)
            .map(|i| {
                let (src, copy) = (&src, &copy);
                scope.spawn(move || {
                    copy(
                        &format!("skopeo push {i}"),
                        src.oci_ref("v1"),
                        ep.docker_ref(&format!("team/app{i}"), "v1"),
                    )
                })
            })
            .collect();
        let pulls: Vec<_> = (0..3)
            .map(|i| {
                let (work, copy, image) = (work.path(), &copy, &image);
                scope.spawn(move || {
                    let dir = work.join(format!("cached{i}"));
                    copy(
                        &format!("skopeo cached pull {i}"),
                        ep.docker_ref("lib/app", "v1"),
                        format!("oci:{}:v1", dir.display()),
                    );
                    Layout { dir }.assert_has(&image.blobs(), "cached pull beside pushes");
                })
            })
            .collect();
        for handle in pushes.into_iter().chain(pulls) {
            handle.join().unwrap();
        }
    });
    for i in 0..2 {
        raw::assert_image(
            ep,
            &format!("team/app{i}"),
            "v1",
            &local,
            "pushed beside the cache",
        );
    }
    // What is stored here wins: a local tag of the upstream's name is served as pushed.
    copy(
        "skopeo push over a cached name",
        src.oci_ref("v1"),
        ep.docker_ref("lib/app", "mine"),
    );
    raw::assert_image(
        ep,
        "lib/app",
        "mine",
        &local,
        "local tag in the cached repository",
    );
    for method in ["GET", "HEAD"] {
        assert_eq!(upstream.served(method, "/manifests/mine"), 0, "{method}");
    }
    // A push over a cached tag makes it local: past the ttl it is not replaced by the
    // upstream's version.
    copy(
        "skopeo push over a cached tag",
        src.oci_ref("v1"),
        ep.docker_ref("lib/app", "v1"),
    );
    std::thread::sleep(Duration::from_millis(1200));
    raw::assert_image(
        ep,
        "lib/app",
        "v1",
        &local,
        "pushed over a cached tag, past the ttl",
    );
    let label = upstream.endpoint.host.clone();
    let hits = metric(
        &registry,
        &format!("registry_proxy_hits_total{{upstream=\"{label}\"}}"),
    );
    assert!(hits >= 3, "hits: {hits}");
}

#[test]
fn sixteen_pulls_of_an_uncached_64_mib_blob_fetch_it_once() {
    sixteen_pulls_fetch_once(|url| cache_of(url, "10m"));
}

/// The same with the cache's storage on S3, where a blob being fetched cannot be read
/// back before it is complete: the pulls that join late get it from the bucket.
#[test]
fn sixteen_pulls_of_an_uncached_64_mib_blob_on_s3_storage_fetch_it_once() {
    sixteen_pulls_fetch_once(|url| {
        let proxy = format!(
            "  upstreams:\n    - prefix: {PREFIX}\n      url: {url}\n      username: {USER}\n      password: \"{PASS}\"\n"
        );
        let env = crate::replicas::s3_storage_env(&crate::replicas::new_bucket());
        Registry::start_with(Scheme::Http, |dir, cmd| {
            with_proxy_config(dir, cmd, &proxy);
            cmd.envs(env);
        })
    });
}

fn sixteen_pulls_fetch_once(cache_of: impl FnOnce(&str) -> Registry) {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::build(32, "amd64", [64 << 20, 1_000, 1_000]);
    push_upstream(&upstream, "lib/big", "v1", &image);
    let registry = cache_of(&upstream.url());
    let big = &image.layers[0];
    let path = format!("/v2/{PREFIX}/lib/big/blobs/{}", big.digest);
    let url = format!("{}{path}", registry.endpoint.base_url());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let digests = runtime.block_on(async {
        let client = reqwest::Client::new();
        // Some pulls join late, some stall longer than the fetch waits for a reader: they
        // fall behind what it keeps in memory and read the rest from storage.
        let pulls = (0..16).map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                if i % 4 == 2 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let mut stall = i % 4 == 1;
                let mut res = client
                    .get(&url)
                    .basic_auth(USER, Some(PASS))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let mut hash = sha2::Sha256::new();
                let mut len = 0usize;
                while let Some(chunk) = res.chunk().await.unwrap() {
                    len += chunk.len();
                    hash.update(&chunk);
                    if stall && len > 2 << 20 {
                        stall = false;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
                (len, format!("sha256:{}", hex::encode(hash.finalize())))
            })
        });
        let pulls: Vec<_> = pulls.collect();
        let mut out = Vec::new();
        for pull in pulls {
            out.push(pull.await.unwrap());
        }
        out
    });
    for (len, digest) in digests {
        assert_eq!(
            (len, digest.as_str()),
            (big.data.len(), big.digest.as_str())
        );
    }
    assert_eq!(
        upstream.served("GET", &format!("/blobs/{}", big.digest)),
        1,
        "upstream GETs of the blob"
    );
    // Served from storage afterwards, the upstream not asked again.
    assert_eq!(
        raw::get(&registry.endpoint, &path).body.len(),
        big.data.len()
    );
    assert_eq!(upstream.served("GET", &format!("/blobs/{}", big.digest)), 1);
}

#[test]
fn a_corrupt_blob_is_never_delivered_whole_nor_kept_and_the_next_pull_fetches_again() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::build(33, "amd64", [3 << 20, 1_000, 1_000]);
    push_upstream(&upstream, "lib/bad", "v1", &image);
    let liar = Tamper::start(upstream.url());
    let registry = cache_of(&liar.url, "10m");
    let layer = &image.layers[0];
    let url = format!(
        "{}/v2/{PREFIX}/lib/bad/blobs/{}",
        registry.endpoint.base_url(),
        layer.digest
    );
    liar.corrupt.store(true, Ordering::SeqCst);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pull = |url: String| {
        runtime.block_on(async move {
            let res = reqwest::Client::new()
                .get(&url)
                .basic_auth(USER, Some(PASS))
                .send()
                .await;
            let mut res = match res {
                Ok(res) => res,
                Err(e) => return Err(format!("request: {e}")),
            };
            let mut body = Vec::new();
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => return Ok((res.status().as_u16(), body)),
                    Err(e) => {
                        return Err(format!("body broke off after {} bytes: {e}", body.len()))
                    }
                }
            }
        })
    };
    match pull(url.clone()) {
        Err(why) => assert!(
            why.contains("broke off") || why.contains("request"),
            "{why}"
        ),
        Ok((status, body)) => {
            assert_ne!(status, 200, "a corrupt blob was delivered whole");
            assert!(body.len() < layer.data.len());
        }
    }
    assert_eq!(liar.blob_gets.load(Ordering::SeqCst), 1);
    // Nothing kept: the next pull asks the upstream again, now honest.
    liar.corrupt.store(false, Ordering::SeqCst);
    let (status, body) = pull(url).expect("second pull");
    assert_eq!(status, 200);
    assert!(body == layer.data, "second pull: bytes differ");
    assert_eq!(liar.blob_gets.load(Ordering::SeqCst), 2);
    assert!(metric(&registry, &series("registry_proxy_upstream_errors_total")) >= 1);
}

#[test]
fn a_manifest_not_matching_its_digest_is_a_502_and_never_kept() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::small(34);
    push_upstream(&upstream, "lib/lying", "v1", &image);
    let liar = Tamper::start(upstream.url());
    let registry = cache_of(&liar.url, "10m");
    let ep = &registry.endpoint;
    let repo = format!("{PREFIX}/lib/lying");
    liar.corrupt_manifests.store(true, Ordering::SeqCst);
    for reference in [image.manifest.digest.as_str(), "v1"] {
        let res = raw::get(ep, &format!("/v2/{repo}/manifests/{reference}"));
        let body = String::from_utf8_lossy(&res.body);
        assert_eq!(res.status, 502, "{reference}: {body}");
        assert!(
            body.contains("UNKNOWN") && body.contains("hashes to") && body.contains(&liar.url),
            "{reference}: {body}"
        );
    }
    let asked = liar.manifest_gets.load(Ordering::SeqCst);
    assert_eq!(asked, 2, "manifest GETs while lying");
    // Nothing was kept: the honest upstream is asked again, by digest and by tag.
    liar.corrupt_manifests.store(false, Ordering::SeqCst);
    raw::assert_image(
        ep,
        &repo,
        &image.manifest.digest,
        &image,
        "by digest, honest",
    );
    raw::assert_image(ep, &repo, "v1", &image, "by tag, honest");
    assert_eq!(liar.manifest_gets.load(Ordering::SeqCst), asked + 2);
}

#[test]
fn an_unreachable_upstream_at_start_is_a_warning_and_uncached_pulls_get_503() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let registry = cache_of(&url, "10m");
    let res = raw::get(
        &registry.endpoint,
        &format!("/v2/{PREFIX}/lib/x/manifests/v1"),
    );
    assert_eq!(res.status, 503);
    let body = String::from_utf8_lossy(&res.body);
    assert!(body.contains(&url) && body.contains(PREFIX), "{body}");
    let res = raw::get(
        &registry.endpoint,
        &format!("/v2/{PREFIX}/lib/x/blobs/sha256:{}", "a".repeat(64)),
    );
    assert_eq!(res.status, 503, "{}", String::from_utf8_lossy(&res.body));
}

/// A forwarding proxy in front of an upstream that counts blob GETs answered 200 and, when told,
/// flips one byte in the middle of each blob it passes on (Content-Length unchanged).
struct Tamper {
    url: String,
    blob_gets: Arc<AtomicUsize>,
    /// Flips a byte in the middle of every blob GET's body.
    corrupt: Arc<AtomicBool>,
    manifest_gets: Arc<AtomicUsize>,
    /// Flips a byte in the middle of every manifest GET's body (headers as sent).
    corrupt_manifests: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Tamper {
    fn start(upstream: String) -> Tamper {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (blob_gets, corrupt) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (manifest_gets, corrupt_manifests) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (gets, bad) = (Arc::clone(&blob_gets), Arc::clone(&corrupt));
        let (m_gets, m_bad) = (Arc::clone(&manifest_gets), Arc::clone(&corrupt_manifests));
        runtime.spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, gets, bad) = (
                    client.clone(),
                    upstream.clone(),
                    Arc::clone(&gets),
                    Arc::clone(&bad),
                );
                let (m_gets, m_bad) = (Arc::clone(&m_gets), Arc::clone(&m_bad));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (client, upstream, gets, bad) = (
                                client.clone(),
                                upstream.clone(),
                                Arc::clone(&gets),
                                Arc::clone(&bad),
                            );
                            let (m_gets, m_bad) = (Arc::clone(&m_gets), Arc::clone(&m_bad));
                            async move {
                                let path = req
                                    .uri()
                                    .path_and_query()
                                    .map_or("/", |p| p.as_str())
                                    .to_owned();
                                let mut forward = client
                                    .request(req.method().clone(), format!("{upstream}{path}"));
                                for (name, value) in req.headers() {
                                    if name != "host" {
                                        forward = forward.header(name, value);
                                    }
                                }
                                let res = forward.send().await.unwrap();
                                let status = res.status();
                                let mut reply = hyper::Response::builder().status(status);
                                for (name, value) in res.headers() {
                                    if name != "transfer-encoding" {
                                        reply = reply.header(name, value);
                                    }
                                }
                                let mut body = res.bytes().await.unwrap().to_vec();
                                if req.method() == hyper::Method::GET
                                    && path.contains("/blobs/")
                                    && status == 200
                                {
                                    gets.fetch_add(1, Ordering::SeqCst);
                                    if bad.load(Ordering::SeqCst) && !body.is_empty() {
                                        let middle = body.len() / 2;
                                        body[middle] ^= 0xff;
                                    }
                                }
                                if req.method() == hyper::Method::GET
                                    && path.contains("/manifests/")
                                    && status == 200
                                {
                                    m_gets.fetch_add(1, Ordering::SeqCst);
                                    if m_bad.load(Ordering::SeqCst) && !body.is_empty() {
                                        let middle = body.len() / 2;
                                        body[middle] ^= 0x01;
                                    }
                                }
                                Ok::<_, std::convert::Infallible>(
                                    reply.body(Full::new(Bytes::from(body)).boxed()).unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Tamper {
            url,
            blob_gets,
            corrupt,
            manifest_gets,
            corrupt_manifests,
            _runtime: runtime,
        }
    }
}
