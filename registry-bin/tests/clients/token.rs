//! `auth.token`: real clients through Docker's token flow against a test
//! token server (`tests/common/token_server.rs`). The registry answers 401
//! with a `Bearer` challenge; the client asks the token server (with the
//! user's password, or anonymously) and retries with the token.
//!
//! The policy: [`USER`] may do everything; anonymous callers may pull
//! `pub/*` and nothing else. skopeo's server signs in `x5c` mode (ES256),
//! podman's in `kid` mode (RS256), containerd's in `x5c` mode (ES384), so
//! both ways of naming a key meet real clients.

use std::sync::Arc;

use crate::harness::containerd::Containerd;
use crate::harness::containers::Containers;
use crate::harness::server::workdir;
use crate::harness::{
    over_http_and_https, raw, run, run_fails, Image, Layout, Registry, Scheme, PASS,
};
use crate::token_server::{KeyKind, KeyMode, TokenServer, USER};

over_http_and_https!(
    skopeo_push_and_pull_with_x5c_tokens,
    podman_push_and_pull_with_kid_tokens,
    containerd_pulls_and_pushes_with_tokens,
);

fn policy(user: &str, kind: &str, name: &str) -> Vec<&'static str> {
    match user {
        USER => vec!["pull", "push", "delete"],
        "" if kind == "repository" && name.starts_with("pub/") => vec!["pull"],
        _ => vec![],
    }
}

fn start(
    scheme: Scheme,
    kind: KeyKind,
    mode: KeyMode,
) -> (tempfile::TempDir, TokenServer, Registry) {
    let dir = workdir();
    let tokens = TokenServer::start(dir.path(), kind, mode, Arc::new(policy));
    let registry = Registry::start_with_tokens(scheme, &tokens);
    (dir, tokens, registry)
}

/// The scopes the token server was asked for so far.
fn asked(tokens: &TokenServer) -> Vec<String> {
    tokens.asked.lock().unwrap().clone()
}

fn skopeo_copy(c: &Containers, from: &str, to: &str, login: bool) -> std::process::Command {
    let mut cmd = c.skopeo();
    cmd.args(["copy", "--preserve-digests"]);
    for prefix in ["src-", "dest-"] {
        cmd.args(c.tls(prefix));
    }
    if login {
        cmd.arg("--authfile").arg(c.auth_file());
    } else {
        cmd.args(["--src-no-creds", "--dest-no-creds"]);
    }
    cmd.args([from, to]);
    cmd
}

fn skopeo_push_and_pull_with_x5c_tokens(scheme: Scheme) {
    let (work, tokens, registry) = start(scheme, KeyKind::Es256, KeyMode::X5c);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    let stderr = run_fails(
        "skopeo login with a wrong password",
        &mut c.login(c.skopeo(), "wrong"),
    );
    assert!(stderr.contains("invalid username/password"), "{stderr}");
    run("skopeo login", &mut c.login(c.skopeo(), PASS));

    let image = Image::small(71);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    for repo in ["tk/app", "pub/base"] {
        let step = format!("skopeo push to {repo} with a token");
        run(
            &step,
            &mut skopeo_copy(&c, &src.oci_ref("v1"), &ep.docker_ref(repo, "v1"), true),
        );
        raw::assert_image(ep, repo, "v1", &image, &step);
    }
    assert!(
        asked(&tokens)
            .iter()
            .any(|s| s == "repository:tk/app:pull,push"),
        "skopeo asked for pull,push on tk/app: {:?}",
        asked(&tokens)
    );

    let out = Layout {
        dir: work.path().join("pulled"),
    };
    let step = "skopeo pull with a token";
    run(
        step,
        &mut skopeo_copy(&c, &ep.docker_ref("tk/app", "v1"), &out.oci_ref("v1"), true),
    );
    out.assert_has(&[&image.manifest], step);
    out.assert_has(&image.blobs(), step);

    // Anonymous: pull where the policy lets anyone pull, nothing else.
    let anon = Layout {
        dir: work.path().join("anon"),
    };
    let step = "anonymous skopeo pull of pub/base";
    run(
        step,
        &mut skopeo_copy(
            &c,
            &ep.docker_ref("pub/base", "v1"),
            &anon.oci_ref("v1"),
            false,
        ),
    );
    anon.assert_has(&image.blobs(), step);
    let step = "anonymous skopeo pull of tk/app";
    let stderr = run_fails(
        step,
        &mut skopeo_copy(
            &c,
            &ep.docker_ref("tk/app", "v1"),
            &anon.oci_ref("x"),
            false,
        ),
    );
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{step}: {stderr}"
    );
    let step = "anonymous skopeo push to pub/base";
    let stderr = run_fails(
        step,
        &mut skopeo_copy(
            &c,
            &src.oci_ref("v1"),
            &ep.docker_ref("pub/base", "v2"),
            false,
        ),
    );
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{step}: {stderr}"
    );
    assert_eq!(
        raw::tags(ep, "pub/base"),
        ["v1"],
        "nothing was pushed anonymously"
    );
}

fn podman_push_and_pull_with_kid_tokens(scheme: Scheme) {
    let (work, tokens, registry) = start(scheme, KeyKind::Rs256, KeyMode::Kid);
    let ep = &registry.endpoint;
    let pusher = Containers::new(ep);
    run("podman login", &mut pusher.login(pusher.podman(), PASS));

    let image = Image::small(72);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    let id = run(
        "podman pull oci: layout",
        pusher.podman().args(["pull", "-q"]).arg(src.oci_ref("v1")),
    );
    let id = id.trim().lines().last().unwrap_or_default().to_owned();
    run(
        "podman push with a token",
        pusher
            .podman()
            .arg("push")
            .args(pusher.tls(""))
            .arg(&id)
            .arg(ep.docker_ref("tk/pod", "v1")),
    );
    let manifest = raw::assert_consistent(ep, "tk/pod", "v1", "after podman push");
    assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
    assert!(
        asked(&tokens)
            .iter()
            .any(|s| s == "repository:tk/pod:pull,push"),
        "podman asked for pull,push on tk/pod: {:?}",
        asked(&tokens)
    );

    let puller = Containers::new(ep);
    run(
        "podman login (puller)",
        &mut puller.login(puller.podman(), PASS),
    );
    let pulled = run(
        "podman pull with a token",
        puller
            .podman()
            .args(["pull", "-q"])
            .args(puller.tls(""))
            .arg(ep.docker_ref("tk/pod", "v1")),
    );
    assert_eq!(
        format!(
            "sha256:{}",
            pulled.trim().lines().last().unwrap_or_default()
        ),
        image.config.digest,
        "podman pull: image ID"
    );
    // Without a login the token server grants nothing on tk/: refused.
    let anonymous = Containers::new(ep);
    let stderr = run_fails(
        "anonymous podman pull of tk/pod",
        anonymous
            .podman()
            .args(["pull", "-q"])
            .args(anonymous.tls(""))
            .arg(ep.docker_ref("tk/pod", "v1")),
    );
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{stderr}"
    );
}

fn containerd_pulls_and_pushes_with_tokens(scheme: Scheme) {
    let (work, tokens, registry) = start(scheme, KeyKind::Es384, KeyMode::X5c);
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    run("skopeo login", &mut c.login(c.skopeo(), PASS));
    let image = Image::small(73);
    let src = Layout::of_image(&work.path().join("src"), "v1", &image);
    run(
        "skopeo push for containerd",
        &mut skopeo_copy(&c, &src.oci_ref("v1"), &ep.docker_ref("tk/ctr", "v1"), true),
    );

    let node = Containerd::start(ep);
    let by_tag = ep.image_ref("tk/ctr", "v1");
    run(
        "ctr images pull with a token",
        node.remote("pull").arg(&by_tag),
    );
    node.assert_complete(&by_tag, "ctr images check after pull");
    let dir = workdir();
    let exported = node.export(&by_tag, false, dir.path(), "ctr images export");
    exported.assert_has(&[&image.manifest], "containerd pull with a token");
    exported.assert_has(&image.blobs(), "containerd pull with a token");

    // containerd mounts the layers from tk/ctr: its token asks for both.
    node.push_attempts("ctr images push with a token", &by_tag, |_| {
        ep.image_ref("tk/ctr-copy", "v1")
    });
    raw::assert_image(ep, "tk/ctr-copy", "v1", &image, "after ctr push");
    assert!(
        asked(&tokens)
            .iter()
            .any(|s| s.contains("repository:tk/ctr-copy:pull,push")),
        "containerd asked for pull,push on tk/ctr-copy: {:?}",
        asked(&tokens)
    );
}
