//! skopeo: login, push and pull of an image and of a two-platform index
//! between `oci:` layouts and the registry (digests preserved, so every
//! pulled byte is compared with the source), copy between repositories
//! (a cross-repository mount), tag listing and delete.

use std::process::Command;

use crate::harness::containers::Containers;
use crate::harness::server::workdir;
use crate::harness::{
    over_http_and_https, raw, run, run_fails, Image, Index, Layout, Registry, Scheme, PASS, USER,
};

over_http_and_https!(
    login_push_by_tag_pull_by_tag_and_digest,
    push_and_pull_a_two_platform_index,
    copy_between_repositories_mounts_and_lists_tags,
    delete_by_digest_and_wrong_credentials,
);

fn creds() -> String {
    format!("{USER}:{PASS}")
}

/// `skopeo copy --preserve-digests` with the registry side authenticated
/// through the auth file `skopeo login` wrote.
pub(crate) fn copy(c: &Containers, step: &str, extra: &[&str], from: &str, to: &str) {
    run(step, &mut copy_command(c, extra, from, to));
}

/// The command [`copy`] runs.
pub(crate) fn copy_command(c: &Containers, extra: &[&str], from: &str, to: &str) -> Command {
    let mut cmd = c.skopeo();
    cmd.args(["copy", "--preserve-digests"]).args(extra);
    for prefix in ["src-", "dest-"] {
        cmd.args(c.tls(prefix));
    }
    cmd.arg("--authfile").arg(c.auth_file());
    cmd.args([from, to]);
    cmd
}

pub(crate) fn login(c: &Containers) {
    run("skopeo login", &mut c.login(c.skopeo(), PASS));
}

fn login_push_by_tag_pull_by_tag_and_digest(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    let stderr = run_fails(
        "skopeo login with a wrong password",
        &mut c.login(c.skopeo(), "wrong"),
    );
    assert!(stderr.contains("invalid username/password"), "{stderr}");
    login(&c);
    c.assert_login_needs_the_ca(c.skopeo(), "skopeo");

    let work = workdir();
    let image = Image::small(1);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    copy(
        &c,
        "skopeo push by tag",
        &[],
        &src.oci_ref("v1"),
        &ep.docker_ref("sk/app", "v1"),
    );
    raw::assert_image(ep, "sk/app", "v1", &image, "after skopeo push");

    let inspected = run(
        "skopeo inspect --raw",
        c.skopeo()
            .args(["inspect", "--raw"])
            .args(c.tls(""))
            .arg("--authfile")
            .arg(c.auth_file())
            .arg(ep.docker_ref("sk/app", "v1")),
    );
    assert_eq!(
        inspected.as_bytes(),
        image.manifest.data,
        "skopeo inspect --raw"
    );

    for (name, reference) in [("tag", "v1"), ("digest", image.manifest.digest.as_str())] {
        let out = Layout {
            dir: work.path().join(format!("by-{name}")),
        };
        let step = format!("skopeo pull by {name}");
        copy(
            &c,
            &step,
            &[],
            &ep.docker_ref("sk/app", reference),
            &out.oci_ref("pulled"),
        );
        out.assert_has(&[&image.manifest], &step);
        out.assert_has(&image.blobs(), &step);
    }
}

fn push_and_pull_a_two_platform_index(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    login(&c);
    let work = workdir();
    let index = Index::two_platforms(20);
    let src = Layout::of_index(&work.path().join("src"), "multi", &index);
    copy(
        &c,
        "skopeo push index --all",
        &["--all"],
        &src.oci_ref("multi"),
        &ep.docker_ref("sk/multi", "multi"),
    );
    raw::assert_index(ep, "sk/multi", "multi", &index, "after skopeo push --all");

    for (name, reference) in [("tag", "multi"), ("digest", index.index.digest.as_str())] {
        let out = Layout {
            dir: work.path().join(format!("by-{name}")),
        };
        let step = format!("skopeo pull index by {name} --all");
        copy(
            &c,
            &step,
            &["--all"],
            &ep.docker_ref("sk/multi", reference),
            &out.oci_ref("pulled"),
        );
        out.assert_has(&[&index.index], &step);
        out.assert_has(&index.blobs(), &step);
    }
}

fn copy_between_repositories_mounts_and_lists_tags(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    login(&c);
    let work = workdir();
    let image = Image::small(3);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    copy(
        &c,
        "skopeo push",
        &[],
        &src.oci_ref("v1"),
        &ep.docker_ref("sk/src", "v1"),
    );

    let before = registry.requests().len();
    // Tags out of lexical order on purpose: the list must come back sorted.
    for tag in ["v2", "v10", "latest", "a-1"] {
        let step = format!("skopeo copy sk/src:v1 to sk/dst:{tag}");
        copy(
            &c,
            &step,
            &[],
            &ep.docker_ref("sk/src", "v1"),
            &ep.docker_ref("sk/dst", tag),
        );
    }
    registry.assert_layers_mounted(before, "sk/dst", image.layers.len(), "skopeo copy");
    raw::assert_image(ep, "sk/dst", "v10", &image, "after skopeo copy");

    let listed = run(
        "skopeo list-tags",
        c.skopeo()
            .arg("list-tags")
            .args(c.tls(""))
            .arg("--authfile")
            .arg(c.auth_file())
            .arg(format!("docker://{}/sk/dst", ep.host)),
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed["Tags"],
        serde_json::json!(["a-1", "latest", "v10", "v2"]),
        "skopeo list-tags"
    );
}

fn delete_by_digest_and_wrong_credentials(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    login(&c);
    let work = workdir();
    let image = Image::small(4);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    copy(
        &c,
        "skopeo push",
        &[],
        &src.oci_ref("v1"),
        &ep.docker_ref("sk/del", "v1"),
    );

    let inspect = |creds: &str| {
        let mut cmd = c.skopeo();
        cmd.args(["inspect", "--raw"])
            .args(c.tls(""))
            .args(["--creds", creds]);
        cmd.arg(ep.docker_ref("sk/del", "v1"));
        cmd
    };
    let stderr = run_fails(
        "skopeo inspect with a wrong password",
        &mut inspect(&format!("{USER}:wrong")),
    );
    assert!(
        stderr.contains("401") || stderr.contains("nauthorized"),
        "{stderr}"
    );

    run(
        "skopeo delete by digest",
        c.skopeo()
            .arg("delete")
            .args(c.tls(""))
            .args(["--creds", &creds()])
            .arg(ep.docker_ref("sk/del", &image.manifest.digest)),
    );
    let stderr = run_fails("skopeo inspect after delete", &mut inspect(&creds()));
    assert!(
        stderr.contains("manifest unknown") || stderr.contains("not found"),
        "{stderr}"
    );
    let res = raw::get(
        ep,
        &format!("/v2/sk/del/manifests/{}", image.manifest.digest),
    );
    assert_eq!(res.status, 404, "deleted manifest still served");
    assert!(raw::tags(ep, "sk/del").is_empty(), "tags left after delete");
}
