//! The web page in a real browser (headless chromium through chromedriver,
//! `webdriver.rs`): what a user sees against what skopeo pushed, deleting
//! with and without rights, hostile text from storage, pagination, the
//! prefix, and the page turned off. Screenshots of each page are saved under
//! `target/ui-screenshots/`.

use std::process::Command;
use std::time::Instant;

use crate::harness::containers::Containers;
use crate::harness::image::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use crate::harness::server::workdir;
use crate::harness::{
    raw, run, Blob, Endpoint, Image, Index, Layout, Registry, Scheme, PASS, USER,
};
use crate::skopeo::{copy, login};
use crate::webdriver::Browser;

const READER: (&str, &str) = ("reader", "read-only pass");

/// `ci` may do everything; `reader` may pull `apps/*` and `hostile/*` only.
const RULES: &str = "auth:\n  access:\n    - repository: \"*\"\n      users: [ci]\n      actions: [pull, push, delete]\n    - repository: \"apps/*\"\n      users: [reader]\n      actions: [pull]\n    - repository: \"hostile/*\"\n      users: [reader]\n      actions: [pull]\n";

/// Text that would run, or break out of an attribute, if not escaped.
const HOSTILE: &str = "<script>window.__pwned=1</script>\"'><img src=x>&amp;";
const HOSTILE_TYPE: &str = "application/vnd.evil+json<script>window.__pwned=2</script>\"";

fn start() -> Registry {
    start_with(&[READER], RULES, &[])
}

/// The registry over HTTP with more users (added to the harness's htpasswd
/// file), a config file when `config` is not empty, and `env`.
fn start_with(more_users: &[(&str, &str)], config: &str, env: &[(&str, &str)]) -> Registry {
    Registry::start_with(Scheme::Http, |dir, cmd| {
        for (user, pass) in more_users {
            run(
                "htpasswd -Bb",
                Command::new("htpasswd")
                    .arg("-Bb")
                    .arg(dir.join("htpasswd"))
                    .args([user, pass]),
            );
        }
        if !config.is_empty() {
            let file = dir.join("config.yml");
            std::fs::write(&file, config).unwrap();
            cmd.arg("--config").arg(file);
        }
        cmd.envs(env.iter().copied());
    })
}

fn page(ep: &Endpoint, path: &str) -> String {
    format!("{}/{path}", ep.base_url())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bytes_of(image: &Image) -> u64 {
    image.blobs().iter().map(|b| b.data.len() as u64).sum()
}

/// A request with `user`'s credentials, outside the browser.
fn http(
    method: reqwest::Method,
    ep: &Endpoint,
    path: &str,
    user: (&str, &str),
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, page(ep, path.trim_start_matches('/')))
        .basic_auth(user.0, Some(user.1))
}

/// Pushes a blob (monolithic) as `ci`.
async fn push_blob(ep: &Endpoint, repo: &str, blob: &Blob) {
    let path = format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest);
    let res = http(reqwest::Method::POST, ep, &path, (USER, PASS))
        .body(blob.data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "push blob {}", blob.digest);
}

/// Pushes a manifest as `ci` under `reference`.
async fn push_manifest(ep: &Endpoint, repo: &str, reference: &str, manifest: &Blob) {
    let res = http(
        reqwest::Method::PUT,
        ep,
        &format!("/v2/{repo}/manifests/{reference}"),
        (USER, PASS),
    )
    .header("content-type", &manifest.media_type)
    .body(manifest.data.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        201,
        "push manifest {repo}:{reference}: {}",
        res.text().await.unwrap()
    );
}

/// skopeo pushes a two-platform index to `apps/multi:v1` and an image to
/// `apps/single:v1` and `:v2`; `secret/x` is pushed for `ci` only.
fn push_with_skopeo(ep: &Endpoint) -> (Index, Image) {
    let c = Containers::new(ep);
    login(&c);
    let work = workdir();
    let index = Index::two_platforms(70);
    let src = Layout::of_index(&work.path().join("multi"), "v1", &index);
    copy(
        &c,
        "skopeo push index",
        &["--all"],
        &src.oci_ref("v1"),
        &ep.docker_ref("apps/multi", "v1"),
    );
    let image = Image::small(80);
    let src = Layout::of_image(&work.path().join("single"), "v1", &image);
    for (repo, tag) in [
        ("apps/single", "v1"),
        ("apps/single", "v2"),
        ("secret/x", "v1"),
    ] {
        copy(
            &c,
            "skopeo push image",
            &[],
            &src.oci_ref("v1"),
            &ep.docker_ref(repo, tag),
        );
    }
    (index, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_what_skopeo_pushed_and_delete_with_rights_only() {
    let registry = start();
    let ep = &registry.endpoint;
    let before = unix_now();
    let (index, image) = push_with_skopeo(ep);
    let after = unix_now();
    let browser = Browser::start().await;

    // Without credentials: the browser's login prompt (401 + Basic challenge).
    let anonymous = reqwest::get(page(ep, "")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic "));

    browser.log_in(USER, PASS).await;
    browser.goto(&page(ep, "")).await;
    let repos = browser.texts("tbody a").await;
    assert_eq!(repos, ["apps/multi", "apps/single", "secret/x"]);
    browser.screenshot("repositories").await;

    // The filter box, by keyboard.
    let q = browser.find("input#q").await;
    browser.submit_typing(&q, "multi").await;
    assert_eq!(browser.texts("tbody a").await, ["apps/multi"]);
    assert!(browser.url().await.contains("q=multi"));

    // The repository: the index's digest, summed size and both platforms.
    browser.click(&browser.find("tbody a").await).await;
    assert!(
        browser.url().await.ends_with("/r/apps/multi"),
        "{}",
        browser.url().await
    );
    let row = "tr[data-tag='v1']";
    assert_eq!(
        browser
            .attrs(&format!("{row} [data-digest]"), "data-digest")
            .await,
        [index.index.digest.as_str()]
    );
    let total: u64 = index.images.iter().map(bytes_of).sum();
    assert_eq!(
        browser
            .attrs(&format!("{row} [data-bytes]"), "data-bytes")
            .await,
        [total.to_string()]
    );
    assert_eq!(
        browser
            .attrs(&format!("{row} [data-platform]"), "data-platform")
            .await,
        ["linux/amd64", "linux/arm64"]
    );
    let pushed: Vec<u64> = browser
        .attrs(&format!("{row} time"), "data-unix")
        .await
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        pushed.len() == 1 && (before..=after).contains(&pushed[0]),
        "push time {pushed:?} not within the push ({before}..={after})"
    );
    let pulls = browser.texts(&format!("{row} .pull code")).await;
    assert_eq!(
        pulls,
        [
            format!("docker pull {}/apps/multi:v1", ep.host),
            format!("podman pull {}/apps/multi:v1", ep.host)
        ]
    );
    assert_eq!(browser.find_all("a.danger").await.len(), 1, "ci may delete");
    // Short, for the README (docs/ui-repository.png is this file).
    browser.resize(1200, 420).await;
    browser.screenshot("repository").await;
    // On a phone the page does not scroll sideways (wide tables scroll in their box).
    browser.resize(390, 844).await;
    let fits = browser
        .eval("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(fits, true, "the page is wider than a phone");
    browser.screenshot("repository-phone").await;
    browser.resize(1100, 900).await;

    // A platform's image: layers with digests and sizes, the config.
    browser
        .click(
            &browser
                .find(&format!("{row} a[data-platform='linux/arm64']"))
                .await,
        )
        .await;
    let arm = &index.images[1];
    assert!(browser
        .url()
        .await
        .ends_with(&format!("/r/apps/multi/-/manifest/{}", arm.manifest.digest)));
    let layer_rows = browser.attrs("#layers tbody tr", "data-digest").await;
    let want: Vec<String> = arm
        .layers
        .iter()
        .chain([&arm.config])
        .map(|b| b.digest.clone())
        .collect();
    assert_eq!(layer_rows, want);
    let sizes = browser.attrs("#layers [data-bytes]", "data-bytes").await;
    let want: Vec<String> = arm
        .layers
        .iter()
        .chain([&arm.config])
        .map(|b| b.data.len().to_string())
        .collect();
    assert_eq!(sizes, want);
    assert_eq!(
        browser.texts("#config .env li").await,
        [format!("SEED={}", 71)]
    );
    assert_eq!(
        browser
            .attrs("#total-size [data-bytes]", "data-bytes")
            .await,
        [bytes_of(arm).to_string()]
    );
    browser.screenshot("image").await;

    // The overview: sizes from the manifests.
    browser.goto(&page(ep, "overview")).await;
    let multi = "#usage tr[data-repository='apps/multi'] [data-bytes]";
    assert_eq!(
        browser.attrs(multi, "data-bytes").await,
        [total.to_string()]
    );
    let single = "#usage tr[data-repository='apps/single'] [data-bytes]";
    assert_eq!(
        browser.attrs(single, "data-bytes").await,
        [bytes_of(&image).to_string()]
    );
    browser.screenshot("overview").await;

    // Delete a tag with rights: confirmation, then gone.
    browser.goto(&page(ep, "r/apps/single")).await;
    browser
        .click(&browser.find("tr[data-tag='v1'] a.danger").await)
        .await;
    assert!(browser
        .text(&browser.find("main p").await)
        .await
        .contains("Delete the tag v1 from apps/single?"));
    browser.screenshot("confirm-delete").await;
    browser
        .click(&browser.find("form button[type=submit]").await)
        .await;
    assert!(
        browser.url().await.contains("/r/apps/single?deleted=v1"),
        "{}",
        browser.url().await
    );
    assert_eq!(
        browser.text(&browser.find(".notice").await).await,
        "Deleted v1."
    );
    assert_eq!(browser.attrs("tbody tr", "data-tag").await, ["v2"]);
    assert_eq!(raw::tags(ep, "apps/single"), ["v2"]);

    // A POST without the form's token is refused, even with rights.
    let forged = http(
        reqwest::Method::POST,
        ep,
        "r/apps/single/-/delete",
        (USER, PASS),
    )
    .form(&[("reference", "v2"), ("csrf", "0000")])
    .send()
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("another site"));
    assert_eq!(raw::tags(ep, "apps/single"), ["v2"]);
    drop(browser);

    // The pull-only user: only what they may pull, no delete button, and
    // a delete posted anyway is refused for want of rights.
    let browser = Browser::start().await;
    browser.log_in(READER.0, READER.1).await;
    browser.goto(&page(ep, "")).await;
    assert_eq!(
        browser.texts("tbody a").await,
        ["apps/multi", "apps/single"]
    );
    browser.goto(&page(ep, "r/apps/single")).await;
    assert_eq!(browser.attrs("tbody tr", "data-tag").await, ["v2"]);
    assert!(
        browser.find_all("a.danger").await.is_empty(),
        "no delete button for reader"
    );
    browser.screenshot("repository-read-only").await;
    browser.goto(&page(ep, "r/secret/x")).await;
    assert_eq!(browser.text(&browser.find("h1").await).await, "Not Found");
    let refused = http(reqwest::Method::POST, ep, "r/apps/single/-/delete", READER)
        .form(&[("reference", "v2"), ("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("You may not delete"));
    let confirm = http(
        reqwest::Method::GET,
        ep,
        "r/apps/single/-/delete?reference=v2",
        READER,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(confirm.status(), 403);
    assert_eq!(raw::tags(ep, "apps/single"), ["v2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_labels_annotations_and_artifact_types_render_as_text() {
    let registry = start();
    let ep = &registry.endpoint;
    let repo = "hostile/x";
    let layer = Blob::new(OCI_LAYER, b"not really a tar".to_vec());
    let labels = serde_json::json!({ "evil": HOSTILE });
    let config = Blob::new(
        OCI_CONFIG,
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": { "Labels": labels, "Env": [format!("X={HOSTILE}")] },
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
            "history": [{ "created_by": HOSTILE }],
        }))
        .unwrap(),
    );
    let manifest = Blob::new(
        OCI_MANIFEST,
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": config.digest, "size": config.data.len() },
            "layers": [{ "mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.data.len() }],
            "annotations": { "note": HOSTILE },
        }))
        .unwrap(),
    );
    let empty = Blob::new("application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let signature = Blob::new(
        OCI_MANIFEST,
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": HOSTILE_TYPE,
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest, "size": 2 },
            "layers": [{ "mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.data.len() }],
            "subject": { "mediaType": OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len() },
            "annotations": { "sig": HOSTILE },
        }))
        .unwrap(),
    );
    for blob in [&layer, &config, &empty] {
        push_blob(ep, repo, blob).await;
    }
    push_manifest(ep, repo, "v1", &manifest).await;
    push_manifest(ep, repo, &signature.digest, &signature).await;

    let browser = Browser::start().await;
    browser.log_in(READER.0, READER.1).await;
    browser.goto(&page(ep, "r/hostile/x")).await;
    let types = browser.texts("tr[data-tag='v1'] .referrers code").await;
    assert_eq!(types, [HOSTILE_TYPE]);
    browser
        .goto(&page(
            ep,
            &format!("r/hostile/x/-/manifest/{}", manifest.digest),
        ))
        .await;
    let kv = browser.texts("dl.kv dd").await;
    assert!(
        kv.iter().filter(|t| *t == HOSTILE).count() >= 3,
        "label, annotation and referrer annotation as text: {kv:?}"
    );
    assert_eq!(
        browser.texts("#config .env li").await,
        [format!("X={HOSTILE}")]
    );
    assert_eq!(browser.texts("#history tbody td code").await, [HOSTILE]);
    assert_eq!(
        browser.texts("#referrers .artifact-type").await,
        [HOSTILE_TYPE]
    );
    assert!(
        browser.find_all("script").await.is_empty(),
        "no script element in the DOM"
    );
    assert!(
        browser.find_all("img").await.is_empty(),
        "no injected element"
    );
    assert_eq!(
        browser.eval("return window.__pwned === undefined").await,
        true,
        "no script ran"
    );
    browser.screenshot("hostile").await;
    let res = http(reqwest::Method::GET, ep, "r/hostile/x", READER)
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tags_are_paged() {
    let registry = start();
    let ep = &registry.endpoint;
    let image = Image::small(90);
    for blob in image.blobs() {
        push_blob(ep, "apps/many", blob).await;
    }
    let mut tags: Vec<String> = (0..120).map(|i| format!("t{i:03}")).collect();
    for tag in &tags {
        push_manifest(ep, "apps/many", tag, &image.manifest).await;
    }
    tags.sort();
    let browser = Browser::start().await;
    browser.log_in(USER, PASS).await;
    browser.goto(&page(ep, "r/apps/many")).await;
    let mut seen = Vec::new();
    for expected in [50, 50, 20] {
        let started = Instant::now();
        let rows = browser.attrs("tbody tr", "data-tag").await;
        assert_eq!(rows.len(), expected, "page {}: {rows:?}", seen.len() / 50);
        seen.extend(rows);
        let next = browser.find_all("a[rel=next]").await;
        if seen.len() < tags.len() {
            browser.click(&next[0]).await;
        } else {
            assert!(next.is_empty(), "no next page after the last");
        }
        eprintln!("tags page answered and read in {:?}", started.elapsed());
    }
    assert_eq!(seen, tags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_under_a_prefix_and_turns_off() {
    let registry = start_with(&[], "http:\n  ui:\n    prefix: /ui\n", &[]);
    let ep = &registry.endpoint;
    let image = Image::small(95);
    for blob in image.blobs() {
        push_blob(ep, "apps/p", blob).await;
    }
    push_manifest(ep, "apps/p", "v1", &image.manifest).await;
    let browser = Browser::start().await;
    browser.log_in(USER, PASS).await;
    browser.goto(&page(ep, "ui")).await;
    assert!(
        browser.url().await.ends_with("/ui/"),
        "redirected to the prefix with its slash"
    );
    browser.click(&browser.find("tbody a").await).await;
    assert!(
        browser.url().await.ends_with("/ui/r/apps/p"),
        "{}",
        browser.url().await
    );
    browser
        .click(&browser.find("nav a[href=overview]").await)
        .await;
    assert!(
        browser.url().await.ends_with("/ui/overview"),
        "{}",
        browser.url().await
    );
    let root = http(reqwest::Method::GET, ep, "", (USER, PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 404, "nothing at / when the page is at /ui");
    drop(browser);
    drop(registry);

    let off = start_with(&[], "", &[("REGISTRY_HTTP_UI_ENABLED", "false")]);
    let res = http(reqwest::Method::GET, &off.endpoint, "", (USER, PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    let api = http(reqwest::Method::GET, &off.endpoint, "v2/", (USER, PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_follow_the_registry_switches() {
    for (env, refusal) in [
        ("REGISTRY_STORAGE_DELETE_ENABLED", "turned off"),
        ("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "read-only"),
    ] {
        let flag = if env.contains("DELETE") {
            "false"
        } else {
            "true"
        };
        let registry = start_with(&[], "", &[(env, flag)]);
        let ep = &registry.endpoint;
        let confirm = http(
            reqwest::Method::GET,
            ep,
            "r/apps/x/-/delete?reference=v1",
            (USER, PASS),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(confirm.status(), 403, "{env}");
        assert!(confirm.text().await.unwrap().contains(refusal), "{env}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_see_what_anyone_may_pull_and_are_asked_to_sign_in_for_more() {
    let rules = "auth:\n  access:\n    - repository: \"*\"\n      users: [ci]\n      actions: [pull, push, delete]\n    - repository: \"apps/*\"\n      anonymous: true\n      actions: [pull]\n";
    let registry = start_with(&[], rules, &[]);
    let ep = &registry.endpoint;
    let image = Image::small(97);
    for repo in ["apps/open", "secret/x"] {
        for blob in image.blobs() {
            push_blob(ep, repo, blob).await;
        }
        push_manifest(ep, repo, "v1", &image.manifest).await;
    }
    let anonymous = |path: &str| reqwest::get(page(ep, path));
    let list = anonymous("").await.unwrap();
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(
        html.contains("r/apps/open") && !html.contains("secret"),
        "{html}"
    );
    assert!(html.contains(r#"href="login""#), "a sign-in link: {html}");
    assert_eq!(anonymous("r/apps/open").await.unwrap().status(), 200);
    for path in ["r/secret/x", "login", "r/apps/open/-/delete?reference=v1"] {
        let res = anonymous(path).await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert!(res.headers().contains_key("www-authenticate"), "{path}");
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .get(page(ep, "login"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "./");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_servers_gc_passes_and_their_usage() {
    let registry = start_with(&[], "", &[("REGISTRY_STORAGE_GC_INTERVAL", "1s")]);
    let ep = &registry.endpoint;
    let image = Image::small(99);
    for blob in image.blobs() {
        push_blob(ep, "apps/gc", blob).await;
    }
    push_manifest(ep, "apps/gc", "v1", &image.manifest).await;
    let browser = Browser::start().await;
    browser.log_in(USER, PASS).await;
    let started = Instant::now();
    loop {
        browser.goto(&page(ep, "overview")).await;
        if !browser.find_all("#gc-passes tbody tr").await.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no pass shown after 30 s:\n{}",
            browser.source().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let row = "#usage tr[data-repository='apps/gc']";
    let logical: Vec<u64> = browser
        .attrs(
            &format!("{row} td[data-label=Size] [data-bytes]"),
            "data-bytes",
        )
        .await
        .iter()
        .map(|b| b.parse().unwrap())
        .collect();
    assert_eq!(logical.len(), 1, "{}", browser.source().await);
    assert!(logical[0] >= bytes_of(&image), "{logical:?}");
    assert_eq!(browser.find_all(&format!("{row} td.unique")).await.len(), 1);
    assert!(browser
        .text(&browser.find(".muted").await)
        .await
        .contains("last garbage-collection pass"));
    browser.screenshot("overview-gc").await;
}
