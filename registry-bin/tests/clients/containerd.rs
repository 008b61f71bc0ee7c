//! containerd as a Kubernetes node uses it (see `harness::containerd`),
//! driven by `ctr`: pulls of what skopeo pushed, pushes, an index.
//!
//! containerd never calls `GET /v2/` first: every request goes out without
//! credentials and is retried after the 401, HEAD included, so these flows
//! also prove every 401 carries a `WWW-Authenticate` challenge. Its pushes
//! send each blob in one PUT after an empty POST.

use std::cell::Cell;

use crate::harness::containerd::Containerd;
use crate::harness::containers::Containers;
use crate::harness::server::{workdir, write_file};
use crate::harness::{
    over_http_and_https, raw, run, Blob, Endpoint, Image, Index, Layout, Registry, Scheme, PASS,
    USER,
};

over_http_and_https!(
    pulls_by_tag_and_digest_what_skopeo_pushed,
    pushes_each_blob_in_one_put,
    pulls_and_pushes_a_two_platform_index,
);

/// Pushes `layout:tag` with skopeo (digests preserved), as another client would.
fn skopeo_push(endpoint: &Endpoint, layout: &Layout, tag: &str, repo: &str, all: bool) {
    let c = Containers::new(endpoint);
    let mut cmd = c.skopeo();
    cmd.args([
        "copy",
        "--preserve-digests",
        "--dest-creds",
        &format!("{USER}:{PASS}"),
    ]);
    if all {
        cmd.arg("--all");
    }
    cmd.args(c.tls("dest-"))
        .arg(layout.oci_ref(tag))
        .arg(endpoint.docker_ref(repo, tag));
    run("skopeo push for containerd", &mut cmd);
}

fn pulls_by_tag_and_digest_what_skopeo_pushed(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let image = Image::small(90);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    skopeo_push(ep, &src, "v1", "ctr/app", false);
    let node = Containerd::start(ep);
    let by_tag = ep.image_ref("ctr/app", "v1");
    node.assert_pull_needs_the_ca(ep, &by_tag);

    let before = registry.requests().len();
    run("ctr images pull by tag", node.remote("pull").arg(&by_tag));
    let first = registry.requests_since(before);
    // No ping: the first request is the manifest HEAD, refused with a
    // challenge and retried with credentials.
    assert_eq!(
        format!("{:?} / {:?}", first[0], first[1]),
        "HEAD manifest_head ctr/app 401 / HEAD manifest_head ctr/app 200",
        "containerd's first requests: {first:#?}"
    );
    node.assert_complete(&by_tag, "ctr images check after pull by tag");
    let dir = workdir();
    node.export(&by_tag, false, dir.path(), "ctr images export (tag)")
        .assert_has(
            &[
                &image.manifest,
                &image.config,
                &image.layers[0],
                &image.layers[1],
                &image.layers[2],
            ],
            "containerd pull by tag",
        );

    let by_digest = ep.image_ref("ctr/app", &image.manifest.digest);
    run(
        "ctr images pull by digest",
        node.remote("pull").arg(&by_digest),
    );
    node.assert_complete(&by_digest, "ctr images check after pull by digest");
    let dir = workdir();
    let exported = node.export(&by_digest, false, dir.path(), "ctr images export (digest)");
    exported.assert_has(&[&image.manifest], "containerd pull by digest");
    exported.assert_has(&image.blobs(), "containerd pull by digest");
}

fn pushes_each_blob_in_one_put(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let image = Image::small(91);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let archive = write_file(work.path(), "image.tar", &src.tar());
    let node = Containerd::start(ep);
    let name = format!("{}/ctr/pushed", ep.host);
    run(
        "ctr images import",
        node.ctr()
            .args(["images", "import", "--base-name", &name])
            .arg(&archive),
    );
    // A retry after containerd's flake pushes to a fresh repository, so that it
    // too must PUT every blob and the counts below hold for it alone.
    let (before, repo) = (Cell::new(0), Cell::new("ctr/pushed"));
    node.push_attempts("ctr images push", &format!("{name}:v1"), |attempt| {
        repo.set(if attempt == 1 {
            "ctr/pushed"
        } else {
            "ctr/pushed-retry"
        });
        before.set(registry.requests().len());
        format!("{}/{}:v1", ep.host, repo.get())
    });
    let pushed = registry.requests_since(before.get());
    let puts = pushed
        .iter()
        .filter(|r| r.route == "upload_put" && r.status == 201)
        .count();
    assert_eq!(
        puts,
        image.blobs().len(),
        "ctr push: one PUT per blob: {pushed:#?}"
    );
    assert!(
        !pushed.iter().any(|r| r.route == "upload_patch"),
        "ctr push sent a PATCH: {pushed:#?}"
    );
    raw::assert_image(ep, repo.get(), "v1", &image, "after ctr push");
}

fn pulls_and_pushes_a_two_platform_index(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let index = Index::two_platforms(92);
    let src = Layout::of_index(&work.path().join("src"), "multi", &index);
    skopeo_push(ep, &src, "multi", "ctr/multi", true);
    let node = Containerd::start(ep);
    for (name, reference) in [("tag", "multi"), ("digest", index.index.digest.as_str())] {
        let r = ep.image_ref("ctr/multi", reference);
        let step = format!("ctr images pull --all-platforms by {name}");
        run(&step, node.remote("pull").arg("--all-platforms").arg(&r));
        node.assert_complete(&r, &step);
        let dir = workdir();
        let exported = node.export(&r, true, dir.path(), &step);
        let top: &Blob = &index.index;
        exported.assert_has(&[top], &step);
        exported.assert_has(&index.blobs(), &step);
    }
    // Push the whole index to a second repository: containerd mounts the
    // blobs from the repository it pulled them from.
    let copy = format!("{}/ctr/copy:multi", ep.host);
    run(
        "ctr images tag",
        node.ctr()
            .args(["images", "tag"])
            .arg(ep.image_ref("ctr/multi", "multi"))
            .arg(&copy),
    );
    let before = registry.requests().len();
    node.push("ctr images push of an index", &copy);
    let pushed = registry.requests_since(before);
    let mounts = pushed
        .iter()
        .filter(|r| r.route == "upload_start" && r.status == 201)
        .count();
    let uploads = pushed.iter().filter(|r| r.route == "upload_put").count();
    assert_eq!(
        (mounts, uploads),
        (8, 0),
        "ctr push: every config and layer mounted: {pushed:#?}"
    );
    raw::assert_index(
        ep,
        "ctr/copy",
        "multi",
        &index,
        "after ctr push of an index",
    );
}
