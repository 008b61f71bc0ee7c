//! Several clients on one repository at once: skopeo pushing new tags while
//! containerd, podman and oci-client pull an existing one; and three
//! clients pushing the same image (same blobs, same tag) at the same time.

use std::thread;

use crate::harness::containerd::Containerd;
use crate::harness::containers::Containers;
use crate::harness::server::{workdir, write_file};
use crate::harness::{
    over_http_and_https, raw, run, Endpoint, Image, Layout, Registry, Scheme, PASS, USER,
};
use crate::oci_client;

over_http_and_https!(
    one_pushes_while_others_pull_the_same_repository,
    three_clients_push_the_same_image_at_once,
);

fn skopeo_push(ep: &Endpoint, layout: &Layout, repo: &str, tag: &str, step: &str) {
    let c = Containers::new(ep);
    let mut cmd = c.skopeo();
    cmd.args([
        "copy",
        "--preserve-digests",
        "--dest-creds",
        &format!("{USER}:{PASS}"),
    ])
    .args(c.tls("dest-"))
    .arg(layout.oci_ref("v1"))
    .arg(ep.docker_ref(repo, tag));
    run(step, &mut cmd);
}

/// Runs an async oci-client flow on a runtime of its own (one per thread).
fn block_on<F: std::future::Future<Output = ()>>(flow: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(flow);
}

fn one_pushes_while_others_pull_the_same_repository(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let first = Image::build(200, "amd64", [300_000, 1_000_000, 50_000]);
    let first_layout = Layout::of_image(&work.path().join("first"), "v1", &first);
    skopeo_push(ep, &first_layout, "busy/app", "v1", "skopeo push v1");
    let next: Vec<(Image, Layout)> = (0..3u64)
        .map(|i| {
            let image = Image::build(210 + i, "amd64", [2_000_000, 100_000, 10_000]);
            let layout = Layout::of_image(&work.path().join(format!("next{i}")), "v1", &image);
            (image, layout)
        })
        .collect();
    let node = Containerd::start(ep);

    thread::scope(|s| {
        s.spawn(|| {
            for (i, (_, layout)) in next.iter().enumerate() {
                let tag = format!("v{}", i + 2);
                skopeo_push(
                    ep,
                    layout,
                    "busy/app",
                    &tag,
                    &format!("skopeo push {tag} while others pull"),
                );
            }
        });
        s.spawn(|| {
            for reference in ["v1", first.manifest.digest.as_str()] {
                let r = ep.image_ref("busy/app", reference);
                run(
                    &format!("ctr pull {reference} during a push"),
                    node.remote("pull").arg(&r),
                );
                node.assert_complete(&r, "ctr images check during a push");
            }
        });
        s.spawn(|| {
            let c = Containers::new(ep);
            let r = ep.docker_ref("busy/app", "v1");
            let mut cmd = c.podman();
            cmd.args(["pull", "-q", "--creds", &format!("{USER}:{PASS}")])
                .args(c.tls(""))
                .arg(&r);
            let id = run("podman pull during a push", &mut cmd);
            assert_eq!(
                format!("sha256:{}", id.trim()),
                first.config.digest,
                "podman pull during a push"
            );
        });
        s.spawn(|| {
            block_on(async {
                let client = oci_client::client(ep, false, "amd64");
                for round in 0..3 {
                    let target = ep.image_ref("busy/app", "v1").parse().unwrap();
                    let step = format!("oci-client pull round {round} during a push");
                    oci_client::assert_pull(&client, &target, &first, &step).await;
                }
            })
        });
    });

    raw::assert_image(
        ep,
        "busy/app",
        "v1",
        &first,
        "v1 after the concurrent flows",
    );
    for (i, (image, _)) in next.iter().enumerate() {
        raw::assert_image(
            ep,
            "busy/app",
            &format!("v{}", i + 2),
            image,
            "pushed while others pulled",
        );
    }
    assert_eq!(raw::tags(ep, "busy/app"), ["v1", "v2", "v3", "v4"]);
}

fn three_clients_push_the_same_image_at_once(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let image = Image::build(220, "amd64", [1_500_000, 700_000, 20_000]);
    let layout = Layout::of_image(&work.path().join("src"), "v1", &image);
    let archive = write_file(work.path(), "image.tar", &layout.tar());
    let node = Containerd::start(ep);
    let name = format!("{}/same/app", ep.host);
    run(
        "ctr images import",
        node.ctr()
            .args(["images", "import", "--base-name", &name])
            .arg(&archive),
    );

    thread::scope(|s| {
        s.spawn(|| {
            skopeo_push(
                ep,
                &layout,
                "same/app",
                "v1",
                "skopeo push of the shared image",
            )
        });
        s.spawn(|| node.push("ctr push of the shared image", &format!("{name}:v1")));
        s.spawn(|| {
            block_on(async {
                let client = oci_client::client(ep, false, "amd64");
                let target = ep.image_ref("same/app", "v1").parse().unwrap();
                oci_client::push(&client, &target, &image).await;
            })
        });
    });

    // skopeo and ctr push the manifest as built; oci-client re-serializes
    // it, so the tag ends on one of two manifests, each complete.
    let served = raw::assert_consistent(ep, "same/app", "v1", "after three concurrent pushes");
    assert_eq!(served["config"]["digest"], image.config.digest.as_str());
    raw::assert_blobs(
        ep,
        "same/app",
        &image.blobs(),
        "after three concurrent pushes",
    );
    raw::assert_manifest(
        ep,
        "same/app",
        &image.manifest.digest,
        &image.manifest,
        "skopeo/ctr manifest",
    );
}
