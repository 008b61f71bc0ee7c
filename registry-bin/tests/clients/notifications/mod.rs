//! Notifications (`notifications.endpoints` in the config file) as CI/CD
//! receivers written for CNCF Distribution see them: the real binary with
//! htpasswd auth, skopeo and plain requests, and a recording receiver.
//! The expected envelopes are what Distribution 2.8.2 sent for the same
//! requests (see `src/notify/event.rs`).

pub(crate) mod receiver;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::containers::Containers;
use crate::harness::image::OCI_MANIFEST;
use crate::harness::server::workdir;
use crate::harness::{raw, run, sha256_digest, Image, Layout, Registry, Scheme, PASS, USER};
use crate::test_ca::TestCa;
use receiver::Receiver;

const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";
const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// The registry with `notifications:` set to `section` (indented by two).
fn start(section: &str) -> Registry {
    start_trusting(section, None)
}

/// [`start`], with `SSL_CERT_FILE` set to `roots` when given: the system
/// root certificates of the registry process.
fn start_trusting(section: &str, roots: Option<&Path>) -> Registry {
    let text = format!("notifications:\n{section}");
    Registry::start_with(Scheme::Http, move |dir, cmd| {
        let path = dir.join("config.yml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
        if let Some(roots) = roots {
            cmd.env("SSL_CERT_FILE", roots).env_remove("SSL_CERT_DIR");
        }
    })
}

/// One endpoint named `name` posting to `url`, with more keys in `extra`.
fn endpoint(name: &str, url: &str, extra: &str) -> String {
    format!("    - name: {name}\n      url: {url}\n{extra}")
}

/// A port nothing listens on (for now).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A sample of a counter or gauge of `/metrics` for `endpoint`.
fn metric(registry: &Registry, name: &str, endpoint: &str) -> u64 {
    let text = String::from_utf8(raw::get(&registry.endpoint, "/metrics").body).unwrap();
    let series = format!("{name}{{endpoint=\"{endpoint}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// Pushes `data` as a blob of `repo` in one POST.
fn push_blob(registry: &Registry, repo: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let res = raw::request(
        &registry.endpoint,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[("content-type", "application/octet-stream")],
        data.to_vec(),
    );
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    digest
}

/// `HEAD` of a blob with `User-Agent: <agent>` (a pull event that says which request it was).
fn probe(registry: &Registry, repo: &str, digest: &str, agent: &str) {
    let path = format!("/v2/{repo}/blobs/{digest}");
    let res = raw::request(
        &registry.endpoint,
        "HEAD",
        &path,
        &[("user-agent", agent)],
        Vec::new(),
    );
    assert_eq!(res.status, 200, "HEAD {path}");
}

/// `2006-01-02T15:04:05[.frac]Z`, as Go writes RFC 3339 in UTC.
fn assert_rfc3339(ts: &str) {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && ts.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)));
    assert!(ok, "not an RFC 3339 UTC timestamp: {ts}");
}

/// The checks every event passes: a unique id, a timestamp, the user, this process.
fn assert_common(events: &[Value], registry: &Registry) {
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let port = registry.endpoint.host.rsplit(':').next().unwrap();
    let instance = &events[0]["source"]["instanceID"];
    assert_eq!(instance.as_str().unwrap().len(), 36, "a UUID: {instance}");
    for e in events {
        assert_rfc3339(e["timestamp"].as_str().unwrap());
        assert_eq!(e["actor"], json!({ "name": USER }));
        assert_eq!(
            &e["source"]["instanceID"], instance,
            "one instance per process"
        );
        let source = e["source"]["addr"].as_str().unwrap();
        assert!(
            source.ends_with(&format!(":{port}")),
            "source.addr {source}"
        );
        assert_eq!(e["request"]["host"], registry.endpoint.host.as_str());
        let addr = e["request"]["addr"].as_str().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "request.addr {addr}");
        assert_eq!(e["request"]["id"].as_str().unwrap().len(), 36);
    }
}

fn blob_target(registry: &Registry, repo: &str, digest: &str, size: usize) -> Value {
    json!({
        "mediaType": BLOB_MEDIA_TYPE,
        "size": size,
        "digest": digest,
        "length": size,
        "repository": repo,
        "url": format!("{}/v2/{repo}/blobs/{digest}", registry.endpoint.base_url()),
    })
}

fn manifest_target(registry: &Registry, repo: &str, image: &Image, tag: &str) -> Value {
    let m = &image.manifest;
    let references: Vec<Value> = image
        .blobs()
        .iter()
        .map(|b| json!({"mediaType": b.media_type, "size": b.data.len(), "digest": b.digest}))
        .collect();
    json!({
        "mediaType": OCI_MANIFEST,
        "size": m.data.len(),
        "digest": m.digest,
        "length": m.data.len(),
        "repository": repo,
        "url": format!("{}/v2/{repo}/manifests/{}", registry.endpoint.base_url(), m.digest),
        "tag": tag,
        "references": references,
    })
}

/// The blob events among `events` (whose order follows the client's
/// parallel uploads), by digest.
fn blob_targets(events: &[Value], action: &str, method: &str) -> Vec<Value> {
    let mut targets: Vec<Value> = events
        .iter()
        .filter(|e| e["target"]["mediaType"] == BLOB_MEDIA_TYPE)
        .map(|e| {
            assert_eq!(e["action"], action, "{e}");
            assert_eq!(e["request"]["method"], method, "{e}");
            e["target"].clone()
        })
        .collect();
    targets.sort_by_key(|t| t["digest"].as_str().unwrap().to_owned());
    targets
}

#[test]
fn skopeo_push_pull_and_a_delete_notify_as_distribution_does() {
    let rx = Receiver::start();
    let all = endpoint(
        "all",
        &rx.url("/all"),
        "      headers:\n        Authorization: [Bearer t0k]\n        X-Multi: [a, b]\n      timeout: 2s\n      threshold: 3\n      backoff: 100ms\n",
    );
    let filtered = endpoint(
        "no-pulls",
        &rx.url("/no-pulls"),
        "      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n",
    );
    let off = endpoint("off", &rx.url("/off"), "      disabled: true\n");
    let registry = start(&format!(
        "  events:\n    includereferences: true\n  endpoints:\n{all}{filtered}{off}"
    ));
    let ep = &registry.endpoint;
    let repo = "nt/app";
    let image = Image::small(11);
    let work = workdir();
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let c = Containers::new(ep);
    let creds = format!("{USER}:{PASS}");
    run(
        "skopeo push",
        c.skopeo()
            .args(["copy", "--preserve-digests", "--dest-creds", &creds])
            .args(c.tls("dest-"))
            .args([src.oci_ref("v1"), ep.docker_ref(repo, "v1")]),
    );
    let blobs: Vec<Value> = {
        let mut v: Vec<Value> = image
            .blobs()
            .iter()
            .map(|b| blob_target(&registry, repo, &b.digest, b.data.len()))
            .collect();
        v.sort_by_key(|t| t["digest"].as_str().unwrap().to_owned());
        v
    };

    // Push: each blob on upload completion, then the manifest with its tag.
    let pushed = rx.wait_accepted("/all", 5, Duration::from_secs(10));
    assert_eq!(blob_targets(&pushed[..4], "push", "PUT"), blobs);
    let manifest = &pushed[4];
    assert_eq!(manifest["action"], "push");
    assert_eq!(manifest["request"]["method"], "PUT");
    assert_eq!(
        manifest["target"],
        manifest_target(&registry, repo, &image, "v1")
    );
    let agent = manifest["request"]["useragent"].as_str().unwrap();
    assert!(agent.starts_with("skopeo/"), "useragent {agent}");

    // Pull by tag: the manifest (with the tag), then every blob.
    let out = work.path().join("out");
    run(
        "skopeo pull",
        c.skopeo()
            .args(["copy", "--src-creds", &creds])
            .args(c.tls("src-"))
            .arg(ep.docker_ref(repo, "v1"))
            .arg(format!("oci:{}:v1", out.display())),
    );
    let events = rx.wait_accepted("/all", 10, Duration::from_secs(10));
    let pulled = &events[5..];
    assert_eq!(pulled[0]["action"], "pull");
    assert_eq!(pulled[0]["request"]["method"], "GET");
    assert_eq!(
        pulled[0]["target"],
        manifest_target(&registry, repo, &image, "v1")
    );
    assert_eq!(blob_targets(&pulled[1..], "pull", "GET"), blobs);

    // A cross-repository mount, then a blob delete.
    let layer = &image.layers[0];
    let other = "nt/other";
    let path = format!(
        "/v2/{other}/blobs/uploads/?mount={}&from={repo}",
        layer.digest
    );
    assert_eq!(raw::request(ep, "POST", &path, &[], Vec::new()).status, 201);
    let path = format!("/v2/{other}/blobs/{}", layer.digest);
    assert_eq!(
        raw::request(ep, "DELETE", &path, &[], Vec::new()).status,
        202
    );
    let events = rx.wait_accepted("/all", 12, Duration::from_secs(10));
    let (mount, unlinked) = (&events[10], &events[11]);
    assert_eq!(mount["action"], "mount");
    assert_eq!(mount["request"]["method"], "POST");
    let mut target = blob_target(&registry, other, &layer.digest, layer.data.len());
    target["fromRepository"] = json!(repo);
    assert_eq!(mount["target"], target);
    assert_eq!(unlinked["action"], "delete");
    assert_eq!(
        unlinked["target"],
        json!({"digest": layer.digest, "repository": other})
    );

    // Delete by digest: the manifest, then the tag that went with it.
    let digest = &image.manifest.digest;
    let res = raw::request(
        ep,
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[],
        Vec::new(),
    );
    assert_eq!(res.status, 202);
    let events = rx.wait_accepted("/all", 14, Duration::from_secs(10));
    let deleted = &events[12..];
    for e in deleted {
        assert_eq!(e["action"], "delete");
        assert_eq!(e["request"]["method"], "DELETE");
        assert_eq!(
            e["request"]["useragent"], "",
            "no User-Agent: empty, not absent"
        );
    }
    assert_eq!(
        deleted[0]["target"],
        json!({"digest": digest, "repository": repo})
    );
    assert_eq!(
        deleted[1]["target"],
        json!({"repository": repo, "tag": "v1"})
    );
    assert_eq!(deleted[0]["request"]["id"], deleted[1]["request"]["id"]);
    assert_common(&events, &registry);

    // One event per POST, with the configured headers, each value on its own line.
    let posts: Vec<_> = rx
        .received()
        .into_iter()
        .filter(|r| r.path == "/all")
        .collect();
    assert_eq!(posts.len(), 14);
    for post in &posts {
        assert_eq!(post.events().len(), 1);
        assert_eq!(post.headers["content-type"], EVENTS_MEDIA_TYPE);
        assert_eq!(post.headers["authorization"], "Bearer t0k");
        let multi: Vec<_> = post.headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
    }

    // Ignored media types and actions: the manifest push and the deletes
    // (which carry no media type) only.
    let kept = rx.wait_accepted("/no-pulls", 4, Duration::from_secs(10));
    let actions: Vec<&Value> = kept.iter().map(|e| &e["action"]).collect();
    assert_eq!(actions, ["push", "delete", "delete", "delete"]);
    assert_eq!(kept[0]["target"]["mediaType"], OCI_MANIFEST);
    assert!(
        rx.received().iter().all(|r| r.path != "/off"),
        "a disabled endpoint gets nothing"
    );
    assert_eq!(
        metric(&registry, "registry_notifications_sent_total", "all"),
        14
    );
    assert_eq!(
        metric(&registry, "registry_notifications_sent_total", "no-pulls"),
        4
    );
}

#[test]
fn invalid_endpoint_settings_stop_the_start_naming_the_key() {
    let dir = workdir();
    let config = dir.path().join("config.yml");
    let cases = [
        ("url: ftp://ci/hook", "notifications.endpoints[0].url"),
        ("url: http://ci/\n      timeout: soon", "timeout"),
        (
            "url: http://ci/\n      ignore:\n        actions: [pul]",
            "notifications.endpoints[0].ignore.actions",
        ),
        (
            "url: http://ci/\n      headers:\n        \"a b\": [x]",
            "notifications.endpoints[0].headers",
        ),
    ];
    for (keys, named) in cases {
        let text = format!("notifications:\n  endpoints:\n    - name: ci\n      {keys}\n");
        std::fs::write(&config, &text).unwrap();
        let out = crate::spawn::command()
            .args(["config", "check"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(stderr.contains(named), "{text}: {stderr}");
    }
}

#[test]
fn a_receiver_that_was_down_gets_every_event_in_order() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let registry = start(&format!(
        "  endpoints:\n{}",
        endpoint(
            "ci",
            &url,
            "      timeout: 1s\n      threshold: 2\n      backoff: 200ms\n"
        )
    ));
    let repo = "nt/down";
    let digest = push_blob(&registry, repo, b"notified while the receiver is down");
    for n in 1..=3 {
        probe(&registry, repo, &digest, &format!("probe-{n}"));
    }
    // Port closed for a while: connections refused, retried.
    std::thread::sleep(Duration::from_millis(700));
    assert!(metric(&registry, "registry_notifications_failures_total", "ci") >= 2);
    assert_eq!(
        metric(&registry, "registry_notifications_queue_length", "ci"),
        4
    );

    // Then up but failing.
    let rx = Receiver::start_on(port);
    rx.answer(500);
    for n in 4..=5 {
        probe(&registry, repo, &digest, &format!("probe-{n}"));
    }
    std::thread::sleep(Duration::from_millis(700));
    let refused = rx.received();
    assert!(
        !refused.is_empty(),
        "the registry retried while the receiver answered 500"
    );
    assert!(refused.iter().all(|r| r.status == 500));

    // Then healthy: everything arrives, in order, once.
    rx.answer(200);
    let events = rx.wait_accepted("/hook", 6, Duration::from_secs(15));
    assert_eq!(events[0]["action"], "push");
    assert_eq!(events[0]["target"]["digest"], digest.as_str());
    let agents: Vec<&Value> = events[1..]
        .iter()
        .map(|e| &e["request"]["useragent"])
        .collect();
    assert_eq!(
        agents,
        ["probe-1", "probe-2", "probe-3", "probe-4", "probe-5"]
    );
    for e in &events[1..] {
        assert_eq!(e["action"], "pull", "HEAD is a pull, as in Distribution");
        assert_eq!(e["request"]["method"], "HEAD");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rx.accepted("/hook").len(),
        6,
        "nothing sent twice once accepted"
    );
    assert_eq!(
        metric(&registry, "registry_notifications_sent_total", "ci"),
        6
    );
    assert_eq!(
        metric(&registry, "registry_notifications_queue_length", "ci"),
        0
    );
    assert_eq!(
        metric(&registry, "registry_notifications_dropped_total", "ci"),
        0
    );
    let failures = metric(&registry, "registry_notifications_failures_total", "ci");
    assert!(
        failures as usize >= 2 + refused.len(),
        "{failures} failures counted"
    );
}

#[test]
fn a_full_queue_drops_and_counts() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let registry = start(&format!(
        "  endpoints:\n{}",
        endpoint(
            "small",
            &url,
            "      threshold: 1\n      backoff: 300ms\n      queuesize: 2\n"
        )
    ));
    let repo = "nt/full";
    let digest = push_blob(&registry, repo, b"more events than the queue holds");
    let agents: Vec<String> = (1..=5).map(|n| format!("probe-{n}")).collect();
    for agent in &agents {
        probe(&registry, repo, &digest, agent);
    }
    // Six events: the one being retried, two waiting, the rest dropped.
    let dropped = metric(&registry, "registry_notifications_dropped_total", "small");
    let queued = metric(&registry, "registry_notifications_queue_length", "small");
    assert!(dropped >= 3, "{dropped} dropped");
    assert_eq!(dropped + queued, 6, "{dropped} dropped, {queued} queued");

    let rx = Receiver::start_on(port);
    let events = rx.wait_accepted("/hook", queued as usize, Duration::from_secs(10));
    // What arrives keeps the order of the requests.
    let sent: Vec<String> = std::iter::once("push".to_owned()).chain(agents).collect();
    let got: Vec<String> = events
        .iter()
        .map(|e| match e["action"].as_str().unwrap() {
            "push" => "push".to_owned(),
            _ => e["request"]["useragent"].as_str().unwrap().to_owned(),
        })
        .collect();
    let mut rest = sent.iter();
    assert!(
        got.iter().all(|g| rest.any(|s| s == g)),
        "{got:?} is not in the order of {sent:?}"
    );
    assert_eq!(
        metric(&registry, "registry_notifications_sent_total", "small"),
        queued
    );
    assert_eq!(
        metric(&registry, "registry_notifications_queue_length", "small"),
        0
    );
    assert_eq!(
        metric(&registry, "registry_notifications_dropped_total", "small"),
        dropped
    );
}

#[test]
fn https_endpoints_are_verified_against_the_system_roots() {
    let work = workdir();
    let file = |name: &str| work.path().join(name);
    let trusted = TestCa::new("notifications trusted CA");
    trusted.issue(&file("trusted.crt"), &file("trusted.key"));
    std::fs::write(file("roots.pem"), &trusted.pem).unwrap();
    let other = TestCa::new("notifications unknown CA");
    other.issue(&file("other.crt"), &file("other.key"));
    let good = Receiver::start_tls(&file("trusted.crt"), &file("trusted.key"));
    let bad = Receiver::start_tls(&file("other.crt"), &file("other.key"));
    let retry = "      threshold: 1\n      backoff: 100ms\n";
    let registry = start_trusting(
        &format!(
            "  endpoints:\n{}{}",
            endpoint("good", &good.url("/hook"), retry),
            endpoint("bad", &bad.url("/hook"), retry)
        ),
        Some(&file("roots.pem")),
    );
    let digest = push_blob(&registry, "nt/tls", b"over https");
    let events = good.wait_accepted("/hook", 1, Duration::from_secs(10));
    assert_eq!(events[0]["target"]["digest"], digest.as_str());
    // The other CA is not among the roots: the handshake fails, nothing is posted.
    std::thread::sleep(Duration::from_millis(500));
    assert!(bad.received().is_empty());
    assert!(metric(&registry, "registry_notifications_failures_total", "bad") >= 1);
    assert_eq!(
        metric(&registry, "registry_notifications_queue_length", "bad"),
        1
    );
}

#[test]
fn requests_never_wait_for_a_stalled_endpoint() {
    // Connections are accepted by the kernel and never answered.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", stalled.local_addr().unwrap());
    let registry = start(&format!(
        "  endpoints:\n{}",
        endpoint("stalled", &url, "      timeout: 60s\n      queuesize: 5\n")
    ));
    let repo = "nt/stalled";
    let digest = push_blob(&registry, repo, b"pulled while the endpoint hangs");
    let started = std::time::Instant::now();
    for n in 0..30 {
        probe(&registry, repo, &digest, &format!("probe-{n}"));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "30 pulls took {took:?}");
    assert_eq!(
        metric(&registry, "registry_notifications_sent_total", "stalled"),
        0
    );
    // One being sent (for a minute) and five waiting; the rest dropped.
    let queued = metric(&registry, "registry_notifications_queue_length", "stalled");
    let dropped = metric(&registry, "registry_notifications_dropped_total", "stalled");
    assert!((5..=6).contains(&queued), "{queued} queued");
    assert_eq!(queued + dropped, 31, "{queued} queued, {dropped} dropped");
}
