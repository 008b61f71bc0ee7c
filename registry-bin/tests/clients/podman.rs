//! podman (rootful, vfs storage, no daemon): login, push by tag (podman
//! compresses the layers itself), pull by tag and by digest into a fresh
//! storage, a two-platform manifest list, push to a second repository
//! (cross-repository mounts from podman's blob-info cache),
//! `podman search --list-tags` and a Docker schema 2 push (`--format
//! v2s2`). podman cannot delete remote images.
//!
//! Pulled bytes are compared with the source through `podman save
//! --uncompressed`, which re-creates the exact layer tars and config.

use std::path::Path;

use crate::harness::containers::Containers;
use crate::harness::server::workdir;
use crate::harness::{
    over_http_and_https, raw, run, run_fails, Image, Index, Layout, Registry, Scheme, PASS,
};

over_http_and_https!(
    login_push_by_tag_pull_by_tag_and_digest,
    manifest_list_with_two_platforms,
    push_to_a_second_repository_mounts_and_search_lists_tags,
    push_and_pull_as_docker_schema_2,
);

fn login(c: &Containers) {
    run("podman login", &mut c.login(c.podman(), PASS));
}

/// `podman pull <src>`; returns the image ID.
fn pull(c: &Containers, step: &str, src: &str, extra: &[&str]) -> String {
    let out = run(
        step,
        c.podman()
            .args(["pull", "-q"])
            .args(c.tls(""))
            .args(extra)
            .arg(src),
    );
    out.trim().lines().last().unwrap_or_default().to_owned()
}

/// `podman push [extra] <image> docker://...`; returns the pushed manifest digest.
fn push(c: &Containers, step: &str, image: &str, dest: &str, dir: &Path, extra: &[&str]) -> String {
    let digest_file = dir.join(format!("digest-{}", dest.replace(['/', ':'], "_")));
    run(
        step,
        c.podman()
            .arg("push")
            .args(extra)
            .args(c.tls(""))
            .arg("--digestfile")
            .arg(&digest_file)
            .args([image, dest]),
    );
    std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned()
}

/// Saves `image` uncompressed and checks its config and layers are `expected`'s bytes.
fn assert_pulled(c: &Containers, step: &str, image: &str, expected: &Image, dir: &Path) {
    let out = dir.join(format!("saved-{}", image.replace(['/', ':', '@'], "_")));
    run(
        step,
        c.podman()
            .args(["save", "--format", "oci-dir", "--uncompressed", "-o"])
            .arg(&out)
            .arg(image),
    );
    Layout { dir: out }.assert_has(&expected.blobs(), step);
}

fn login_push_by_tag_pull_by_tag_and_digest(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let pusher = Containers::new(ep);
    let stderr = run_fails(
        "podman login with a wrong password",
        &mut pusher.login(pusher.podman(), "nope"),
    );
    assert!(stderr.contains("invalid username/password"), "{stderr}");
    login(&pusher);
    pusher.assert_login_needs_the_ca(pusher.podman(), "podman");

    let image = Image::small(30);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let id = pull(&pusher, "podman pull oci: layout", &src.oci_ref("v1"), &[]);
    let digest = push(
        &pusher,
        "podman push by tag",
        &id,
        &ep.docker_ref("pd/app", "v1"),
        work.path(),
        &[],
    );
    let manifest = raw::assert_consistent(ep, "pd/app", "v1", "after podman push");
    assert_eq!(
        raw::manifest(ep, "pd/app", "v1", "podman push").header("docker-content-digest"),
        digest
    );
    // podman keeps the config as it was and compresses each layer.
    assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
    raw::assert_blobs(ep, "pd/app", &[&image.config], "after podman push");

    let puller = Containers::new(ep);
    login(&puller);
    for (name, reference) in [("tag", "v1"), ("digest", digest.as_str())] {
        let r = ep.image_ref("pd/app", reference);
        let step = format!("podman pull by {name}");
        let pulled = pull(&puller, &step, &format!("docker://{r}"), &[]);
        assert_eq!(
            format!("sha256:{pulled}"),
            image.config.digest,
            "{step}: image ID"
        );
        assert_pulled(&puller, &step, &pulled, &image, work.path());
    }
}

fn manifest_list_with_two_platforms(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    login(&c);
    let index = Index::two_platforms(40);
    let tagged: Vec<(&str, &crate::harness::Blob)> = index
        .images
        .iter()
        .map(|i| (i.arch.as_str(), &i.manifest))
        .collect();
    let blobs: Vec<&crate::harness::Blob> = index.images.iter().flat_map(|i| i.blobs()).collect();
    let src = Layout::write(&work.path().join("src"), &tagged, &blobs);

    run(
        "podman manifest create",
        c.podman().args(["manifest", "create", "multi"]),
    );
    for image in &index.images {
        let step = format!("podman manifest add {}", image.arch);
        run(
            &step,
            c.podman()
                .args(["manifest", "add", "multi"])
                .arg(src.oci_ref(&image.arch)),
        );
    }
    let dest = ep.docker_ref("pd/multi", "v1");
    let digest_file = work.path().join("list-digest");
    run(
        "podman manifest push --all",
        c.podman()
            .args(["manifest", "push", "--all"])
            .args(c.tls(""))
            .arg("--digestfile")
            .arg(&digest_file)
            .args(["multi", &dest]),
    );
    let list_digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let list = raw::manifest(ep, "pd/multi", &list_digest, "after podman manifest push").json();
    let platforms: Vec<&str> = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(
        platforms,
        ["amd64", "arm64"],
        "platforms in the pushed list"
    );
    for entry in list["manifests"].as_array().unwrap() {
        raw::assert_consistent(
            ep,
            "pd/multi",
            entry["digest"].as_str().unwrap(),
            "podman manifest push",
        );
    }

    let puller = Containers::new(ep);
    login(&puller);
    for (name, reference) in [("tag", "v1"), ("digest", list_digest.as_str())] {
        for image in &index.images {
            let step = format!("podman pull list by {name} for linux/{}", image.arch);
            let r = ep.image_ref("pd/multi", reference);
            let platform = format!("linux/{}", image.arch);
            let id = pull(
                &puller,
                &step,
                &format!("docker://{r}"),
                &["--platform", &platform],
            );
            assert_eq!(
                format!("sha256:{id}"),
                image.config.digest,
                "{step}: image ID"
            );
            assert_pulled(&puller, &step, &id, image, work.path());
        }
    }
}

fn push_to_a_second_repository_mounts_and_search_lists_tags(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    login(&c);
    let image = Image::small(50);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let id = pull(&c, "podman pull oci: layout", &src.oci_ref("v1"), &[]);
    push(
        &c,
        "podman push",
        &id,
        &ep.docker_ref("pd/src", "v1"),
        work.path(),
        &[],
    );

    let before = registry.requests().len();
    for tag in ["v2", "v10", "1.0"] {
        let step = format!("podman push to pd/dst:{tag}");
        push(
            &c,
            &step,
            &id,
            &ep.docker_ref("pd/dst", tag),
            work.path(),
            &[],
        );
    }
    registry.assert_layers_mounted(before, "pd/dst", image.layers.len(), "podman push");
    raw::assert_consistent(ep, "pd/dst", "v10", "after podman push to pd/dst");

    let mut search = c.podman();
    search.args(["search", "--list-tags"]);
    match &ep.ca {
        // podman 4.3's search has no --cert-dir; Go takes its roots from
        // SSL_CERT_FILE, so the CA is trusted (and verified) that way.
        Some(ca) => search.arg("--tls-verify=true").env("SSL_CERT_FILE", ca),
        None => search.args(c.tls("")),
    };
    let listed = run(
        "podman search --list-tags",
        search.arg(format!("{}/pd/dst", ep.host)),
    );
    // "NAME  TAG" then one "<host>/pd/dst  <tag>" line per tag (podman 4.3
    // ignores --format with --list-tags).
    let listed: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(listed, ["1.0", "v10", "v2"], "podman search --list-tags");
}

fn push_and_pull_as_docker_schema_2(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    login(&c);
    let image = Image::small(55);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let id = pull(&c, "podman pull oci: layout", &src.oci_ref("v1"), &[]);
    let dest = ep.docker_ref("pd/docker", "v1");
    let format = ["--format", "v2s2"];
    let digest = push(
        &c,
        "podman push --format v2s2",
        &id,
        &dest,
        work.path(),
        &format,
    );
    let served = raw::manifest(ep, "pd/docker", &digest, "after podman push --format v2s2");
    assert_eq!(
        served.header("content-type"),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    raw::assert_consistent(ep, "pd/docker", "v1", "after podman push --format v2s2");

    let puller = Containers::new(ep);
    login(&puller);
    let r = ep.image_ref("pd/docker", &digest);
    let pulled = pull(
        &puller,
        "podman pull docker schema 2 by digest",
        &format!("docker://{r}"),
        &[],
    );
    let layers = run(
        "podman image inspect",
        puller.podman().args([
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            &pulled,
        ]),
    );
    let layers: Vec<String> = serde_json::from_str(layers.trim()).unwrap();
    let expected: Vec<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(layers, expected, "diff IDs of the docker schema 2 image");
}
