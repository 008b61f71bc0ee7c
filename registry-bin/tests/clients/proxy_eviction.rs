//! `evict` on a pull-through cache's upstream, with the real binary and time made short
//! (evict 2 s, `storage.gc.delay` 1 s): `registry gc` deletes the cached image nobody
//! pulled for that long, tag, manifest and blob files, keeps the one pulled meanwhile,
//! and never touches a repository pushed to the same instance, however old.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::containers::Containers;
use crate::harness::distribution::{Distribution, UpstreamAuth};
use crate::harness::{raw, run, Image, Layout, Registry, Scheme, PASS, USER};
use crate::proxy::{creds, push_upstream, PREFIX};
use crate::spawn;

/// Whether the blob data file of `digest` (`sha256:<hex>`) is in the storage at `root`.
fn blob_on_disk(root: &Path, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    root.join(format!("v1/blobs/sha256/{}/{hex}/data", &hex[..2]))
        .is_file()
}

#[test]
fn gc_evicts_cached_images_not_pulled_within_the_window_and_nothing_pushed() {
    let upstream = Distribution::start(UpstreamAuth::Htpasswd);
    let (kept, evicted, local) = (Image::small(71), Image::small(72), Image::small(73));
    push_upstream(&upstream, "lib/kept", "v1", &kept);
    push_upstream(&upstream, "lib/idle", "v1", &evicted);
    let work = crate::harness::server::workdir();
    let storage = work.path().join("storage");
    let config = work.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  filesystem:\n    rootdirectory: {}\n  gc:\n    delay: 1s\nproxy:\n  upstreams:\n    - prefix: {PREFIX}\n      url: {}\n      username: {USER}\n      password: \"{PASS}\"\n      ttl: 1h\n      evict: 2s\n",
            storage.display(),
            upstream.url()
        ),
    )
    .unwrap();
    let registry = Registry::start_on(Scheme::Http, Some(&storage), |_, cmd| {
        cmd.arg("--config").arg(&config);
    });
    let ep = &registry.endpoint;

    // A repository pushed here, never pulled: older than every window by the pass.
    let c = Containers::new(ep);
    let src = Layout::of_image(&work.path().join("src"), "v1", &local);
    run(
        "skopeo push beside the cache",
        c.skopeo()
            .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
            .args(["--dest-creds", &creds()])
            .arg(src.oci_ref("v1"))
            .arg(ep.docker_ref("team/local", "v1")),
    );
    let cached = |repo: &str| format!("{PREFIX}/{repo}");
    raw::assert_image(ep, &cached("lib/kept"), "v1", &kept, "first pull of kept");
    raw::assert_image(
        ep,
        &cached("lib/idle"),
        "v1",
        &evicted,
        "first pull of idle",
    );

    // `kept` is pulled (by tag) every 200 ms for 3.5 s; `idle` is not pulled again.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        raw::manifest(ep, &cached("lib/kept"), "v1", "pull of kept");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The dry run lists the eviction and deletes nothing.
    let gc = |extra: &[&str]| {
        let out = spawn::command()
            .args(["gc", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "registry gc {extra:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let idle_tag = format!("{PREFIX}/lib/idle:v1");
    let checked = spawn::command()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&checked.stdout);
    for expected in [
        "evicts what was not pulled for 2 s",
        "retention today (dry run):",
        &format!("tag {idle_tag}"),
    ] {
        assert!(
            checked.contains(expected),
            "config check: no {expected:?} in\n{checked}"
        );
    }
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.contains(&idle_tag),
        "dry run does not list {idle_tag}:\n{dry}"
    );
    assert!(
        !dry.contains("lib/kept") && !dry.contains("team/local"),
        "{dry}"
    );
    assert!(evicted
        .blobs()
        .iter()
        .all(|b| blob_on_disk(&storage, &b.digest)));

    let report = gc(&["--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["deleted_tags"],
        serde_json::json!([idle_tag]),
        "{report}"
    );
    assert_eq!(
        report["deleted_manifests"],
        serde_json::json!([format!("{PREFIX}/lib/idle@{}", evicted.manifest.digest)]),
        "{report}"
    );
    for blob in evicted.blobs() {
        assert!(
            !blob_on_disk(&storage, &blob.digest),
            "evicted {} still on disk",
            blob.digest
        );
    }
    for blob in kept.blobs().into_iter().chain(local.blobs()) {
        assert!(
            blob_on_disk(&storage, &blob.digest),
            "{} was deleted",
            blob.digest
        );
    }

    // What stayed serves whole; the evicted image is fetched again from the upstream
    // once the server's metadata cache (5 s) no longer holds what the pass deleted from
    // another process.
    std::thread::sleep(Duration::from_millis(5500));
    raw::assert_image(ep, &cached("lib/kept"), "v1", &kept, "kept after the pass");
    raw::assert_image(
        ep,
        "team/local",
        "v1",
        &local,
        "pushed image after the pass",
    );
    let before = upstream.served("GET", "/lib/idle/manifests/");
    raw::assert_image(
        ep,
        &cached("lib/idle"),
        "v1",
        &evicted,
        "evicted, pulled again",
    );
    assert_eq!(upstream.served("GET", "/lib/idle/manifests/"), before + 1);
}
