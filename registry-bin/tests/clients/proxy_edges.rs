//! The pull-through cache's edges, each against a real Distribution 2.8 upstream and the
//! real binary: a `Range` GET of an uncached blob, tag freshness kept in storage (shared
//! by replicas, kept over a restart), read-only mode, and the pull notification of a
//! stream-through miss.

use std::path::Path;
use std::time::Duration;

use crate::harness::distribution::{Distribution, UpstreamAuth};
use crate::harness::server::workdir;
use crate::harness::{raw, Image, Registry, Scheme};
use crate::notifications::receiver::Receiver;
use crate::proxy::{push_upstream, upstream_lines, PREFIX};

/// Our registry on `storage` (a fresh one when `None`) with `more` config sections and
/// one upstream on [`PREFIX`] at `url`.
fn cache(storage: Option<&Path>, more: &str, url: &str, ttl: &str) -> Registry {
    let text = format!("{more}proxy:\n{}", upstream_lines(url, ttl));
    Registry::start_on(Scheme::Http, storage, move |dir, cmd| {
        let path = dir.join("config.yml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    })
}

/// Every file under `root` with its size and modification time.
fn storage_state(root: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let name = entry.path().display().to_string();
                out.push((name, meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_range_of_an_uncached_blob_is_answered_206_with_that_range() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::build(35, "amd64", [2 << 20, 1_000, 1_000]);
    push_upstream(&upstream, "lib/ranged", "v1", &image);
    let registry = cache(None, "", &upstream.url(), "10m");
    let layer = &image.layers[0];
    let path = format!("/v2/{PREFIX}/lib/ranged/blobs/{}", layer.digest);
    let res = raw::request(
        &registry.endpoint,
        "GET",
        &path,
        &[("range", "bytes=1000-1048575")],
        Vec::new(),
    );
    assert_eq!(res.status, 206, "{}", String::from_utf8_lossy(&res.body));
    let size = layer.data.len();
    assert_eq!(
        res.header("content-range"),
        format!("bytes 1000-1048575/{size}")
    );
    assert!(
        res.body == layer.data[1000..1_048_576],
        "ranged bytes differ"
    );
    // The blob was fetched whole and kept: the next GET is served from storage.
    let gets = upstream.served("GET", &layer.digest);
    assert_eq!(gets, 1);
    let whole = raw::get(&registry.endpoint, &path);
    assert_eq!(whole.status, 200);
    assert!(whole.body == layer.data, "whole blob differs");
    assert_eq!(upstream.served("GET", &layer.digest), gets);
}

#[test]
fn tag_checks_are_kept_in_storage_shared_by_replicas_and_restarts() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::small(36);
    push_upstream(&upstream, "lib/shared", "v1", &image);
    let work = workdir();
    let storage = work.path().join("storage");
    let url = upstream.url();
    let (a, b) = (
        cache(Some(&storage), "", &url, "3s"),
        cache(Some(&storage), "", &url, "3s"),
    );
    let repo = format!("{PREFIX}/lib/shared");
    let asked = || {
        upstream.served("HEAD", "/lib/shared/manifests/v1")
            + upstream.served("GET", "/lib/shared/manifests/v1")
    };
    raw::assert_image(&a.endpoint, &repo, "v1", &image, "first pull, replica a");
    let fetched = asked();
    assert!(fetched >= 1, "the upstream was not asked for the tag");
    raw::assert_image(&b.endpoint, &repo, "v1", &image, "replica b within the ttl");
    drop(a);
    let a = cache(Some(&storage), "", &url, "3s");
    raw::assert_image(&a.endpoint, &repo, "v1", &image, "replica a restarted");
    assert_eq!(asked(), fetched, "the tag was checked again within its ttl");

    // Past the ttl one replica checks (one HEAD, same digest) and the other trusts that.
    std::thread::sleep(Duration::from_millis(3200));
    raw::assert_image(&b.endpoint, &repo, "v1", &image, "replica b past the ttl");
    assert_eq!(upstream.served("HEAD", "/lib/shared/manifests/v1"), 2);
    raw::assert_image(
        &a.endpoint,
        &repo,
        "v1",
        &image,
        "replica a after b checked",
    );
    assert_eq!(asked(), fetched + 1, "each replica checked the tag itself");
}

#[test]
fn read_only_serves_what_is_cached_writes_nothing_and_refuses_misses_with_503() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let (cached, other) = (Image::small(37), Image::small(38));
    push_upstream(&upstream, "lib/cached", "v1", &cached);
    push_upstream(&upstream, "lib/other", "v1", &other);
    let work = workdir();
    let storage = work.path().join("storage");
    let url = upstream.url();
    let writable = cache(Some(&storage), "", &url, "1s");
    let repo = format!("{PREFIX}/lib/cached");
    raw::assert_image(
        &writable.endpoint,
        &repo,
        "v1",
        &cached,
        "cached while writable",
    );
    drop(writable);

    let read_only = "storage:\n  maintenance:\n    readonly:\n      enabled: true\n";
    let registry = cache(Some(&storage), read_only, &url, "1s");
    let ep = &registry.endpoint;
    std::thread::sleep(Duration::from_millis(1200));
    let before = storage_state(&storage);
    let heads = upstream.served("HEAD", "/manifests/");
    // Past its ttl, the tag is served as stored: a check could not be recorded.
    raw::assert_image(ep, &repo, "v1", &cached, "cached, read-only");
    assert_eq!(upstream.served("HEAD", "/manifests/"), heads);
    let misses = [
        format!("/v2/{PREFIX}/lib/other/manifests/v1"),
        format!("/v2/{PREFIX}/lib/other/manifests/{}", other.manifest.digest),
        format!("/v2/{PREFIX}/lib/other/blobs/{}", other.layers[0].digest),
    ];
    for path in &misses {
        let res = raw::get(ep, path);
        let body = String::from_utf8_lossy(&res.body);
        assert_eq!(res.status, 503, "{path}: {body}");
        assert!(body.contains("read-only"), "{path}: {body}");
    }
    assert_eq!(
        storage_state(&storage),
        before,
        "read-only mode wrote to storage"
    );
}

#[test]
fn a_stream_through_miss_is_notified_as_a_pull_like_a_hit() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let image = Image::small(39);
    push_upstream(&upstream, "lib/noted", "v1", &image);
    let rx = Receiver::start();
    let notifications = format!(
        "notifications:\n  endpoints:\n    - name: ci\n      url: {}\n      backoff: 100ms\n",
        rx.url("/hook")
    );
    let registry = cache(None, &notifications, &upstream.url(), "10m");
    let repo = format!("{PREFIX}/lib/noted");
    let layer = &image.layers[1];
    let path = format!("/v2/{repo}/blobs/{}", layer.digest);
    for step in ["miss", "hit"] {
        let res = raw::get(&registry.endpoint, &path);
        assert_eq!(res.status, 200, "{step}");
        assert!(res.body == layer.data, "{step}: bytes differ");
    }
    let events = rx.wait_accepted("/hook", 2, Duration::from_secs(10));
    for (event, step) in events.iter().zip(["miss", "hit"]) {
        assert_eq!(event["action"], "pull", "{step}: {event}");
        assert_eq!(event["request"]["method"], "GET", "{step}: {event}");
        assert_eq!(
            event["target"]["repository"],
            repo.as_str(),
            "{step}: {event}"
        );
        assert_eq!(
            event["target"]["digest"],
            layer.digest.as_str(),
            "{step}: {event}"
        );
        assert_eq!(event["target"]["size"], layer.data.len(), "{step}: {event}");
    }
}
