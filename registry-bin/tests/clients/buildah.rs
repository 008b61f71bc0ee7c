//! buildah (vfs storage, no daemon): an image built `from scratch` with
//! files the test writes, one `buildah copy` + `commit` per layer; login,
//! push by tag, pull by tag and by digest into a fresh storage, a
//! two-platform manifest list, and a push to a second repository
//! (cross-repository mounts). buildah cannot list or delete remote tags.
//!
//! Pulled bytes are compared by mounting the pulled image (vfs: a plain
//! folder) and reading back every file the test wrote.

use std::path::Path;

use crate::harness::containers::Containers;
use crate::harness::server::{workdir, write_file};
use crate::harness::tar::noise;
use crate::harness::{over_http_and_https, raw, run, run_fails, Registry, Scheme, PASS};

over_http_and_https!(
    from_scratch_push_by_tag_pull_by_tag_and_digest,
    manifest_list_with_two_platforms,
    push_to_a_second_repository_mounts,
);

/// What a built image holds: its ID and the files in it.
struct Built {
    id: String,
    files: Vec<(String, Vec<u8>)>,
}

/// Builds a 3-layer image `name` from scratch; `seed` makes it unique.
fn build(c: &Containers, dir: &Path, name: &str, seed: u64, arch: &str) -> Built {
    let mut base = "scratch".to_owned();
    let mut files = Vec::new();
    for layer in 0..3u64 {
        let path = format!("layer{layer}/{name}-{arch}.bin");
        let data = noise(seed * 10 + layer, 5_000 + 30_000 * layer as usize);
        let local = write_file(dir, &format!("{name}-{arch}/{path}"), &data);
        let ctr = run(
            "buildah from",
            c.buildah().args(["from", "--pull=never", &base]),
        );
        let ctr = ctr.trim();
        run(
            "buildah copy",
            c.buildah()
                .args(["copy", ctr])
                .arg(&local)
                .arg(format!("/{path}")),
        );
        run(
            "buildah config",
            c.buildah()
                .args(["config", "--os", "linux", "--arch", arch, ctr]),
        );
        base = format!("localhost/{name}-{arch}:{layer}");
        run(
            "buildah commit",
            c.buildah().args(["commit", "-q", "--rm", ctr, &base]),
        );
        files.push((path, data));
    }
    let id = image_id(c, &base);
    Built { id, files }
}

fn image_id(c: &Containers, image: &str) -> String {
    let out = run(
        "buildah inspect",
        c.buildah().args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageID}}",
            image,
        ]),
    );
    out.trim().to_owned()
}

fn login(c: &Containers) {
    run("buildah login", &mut c.login(c.buildah(), PASS));
}

/// `buildah push`; returns the pushed manifest digest.
fn push(c: &Containers, step: &str, image: &str, dest: &str, dir: &Path) -> String {
    let digest_file = dir.join(format!("digest-{}", dest.replace(['/', ':'], "_")));
    run(
        step,
        c.buildah()
            .arg("push")
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

/// Mounts `image` in a working container and compares every file.
fn assert_files(c: &Containers, step: &str, image: &str, built: &Built) {
    let ctr = run(step, c.buildah().args(["from", "--pull=never", image]));
    let mount = run(step, c.buildah().args(["mount", ctr.trim()]));
    let root = Path::new(mount.trim());
    for (path, data) in &built.files {
        let got = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{step}: /{path}: {e}"));
        assert!(&got == data, "{step}: /{path} differs from what was built");
    }
    run(step, c.buildah().args(["rm", ctr.trim()]));
}

fn from_scratch_push_by_tag_pull_by_tag_and_digest(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    let stderr = run_fails(
        "buildah login with a wrong password",
        &mut c.login(c.buildah(), "nope"),
    );
    assert!(stderr.contains("invalid username/password"), "{stderr}");
    login(&c);
    c.assert_login_needs_the_ca(c.buildah(), "buildah");
    let built = build(&c, work.path(), "app", 60, "amd64");
    let digest = push(
        &c,
        "buildah push by tag",
        "localhost/app-amd64:2",
        &ep.docker_ref("bd/app", "v1"),
        work.path(),
    );
    let manifest = raw::assert_consistent(ep, "bd/app", "v1", "after buildah push");
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        3,
        "layers pushed by buildah"
    );
    assert_eq!(
        raw::manifest(ep, "bd/app", &digest, "buildah push").body,
        raw::manifest(ep, "bd/app", "v1", "").body
    );

    let puller = Containers::new(ep);
    login(&puller);
    for (name, reference) in [("tag", "v1"), ("digest", digest.as_str())] {
        let step = format!("buildah pull by {name}");
        let r = ep.image_ref("bd/app", reference);
        let id = run(
            &step,
            puller
                .buildah()
                .args(["pull", "-q"])
                .args(puller.tls(""))
                .arg(&r),
        );
        assert_eq!(id.trim(), built.id, "{step}: image ID (config digest)");
        assert_files(&puller, &step, id.trim(), &built);
    }
}

fn manifest_list_with_two_platforms(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    login(&c);
    let amd = build(&c, work.path(), "multi", 70, "amd64");
    let arm = build(&c, work.path(), "multi", 71, "arm64");
    run(
        "buildah manifest create",
        c.buildah().args(["manifest", "create", "localhost/list"]),
    );
    for arch in ["amd64", "arm64"] {
        let step = format!("buildah manifest add {arch}");
        let image = format!("containers-storage:localhost/multi-{arch}:2");
        run(
            &step,
            c.buildah()
                .args(["manifest", "add", "localhost/list", &image]),
        );
    }
    let digest_file = work.path().join("list-digest");
    run(
        "buildah manifest push --all",
        c.buildah()
            .args(["manifest", "push", "--all"])
            .args(c.tls(""))
            .arg("--digestfile")
            .arg(&digest_file)
            .args(["localhost/list", &ep.docker_ref("bd/multi", "v1")]),
    );
    let list_digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let list = raw::manifest(ep, "bd/multi", "v1", "after buildah manifest push");
    assert_eq!(list.header("docker-content-digest"), list_digest);
    let entries = list.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "entries in the pushed list");
    for entry in &entries {
        raw::assert_consistent(
            ep,
            "bd/multi",
            entry["digest"].as_str().unwrap(),
            "buildah manifest push",
        );
    }

    let puller = Containers::new(ep);
    login(&puller);
    for (name, reference) in [("tag", "v1"), ("digest", list_digest.as_str())] {
        for (arch, built) in [("amd64", &amd), ("arm64", &arm)] {
            let step = format!("buildah pull list by {name} for linux/{arch}");
            let r = ep.image_ref("bd/multi", reference);
            let id = run(
                &step,
                puller
                    .buildah()
                    .args(["pull", "-q", "--arch", arch])
                    .args(puller.tls(""))
                    .arg(&r),
            );
            assert_eq!(id.trim(), built.id, "{step}: image ID (config digest)");
            assert_files(&puller, &step, id.trim(), built);
        }
    }
}

fn push_to_a_second_repository_mounts(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let work = workdir();
    let c = Containers::new(ep);
    login(&c);
    build(&c, work.path(), "copy", 80, "amd64");
    push(
        &c,
        "buildah push",
        "localhost/copy-amd64:2",
        &ep.docker_ref("bd/src", "v1"),
        work.path(),
    );
    let before = registry.requests().len();
    push(
        &c,
        "buildah push to bd/dst",
        "localhost/copy-amd64:2",
        &ep.docker_ref("bd/dst", "v1"),
        work.path(),
    );
    registry.assert_layers_mounted(before, "bd/dst", 3, "buildah push");
    raw::assert_consistent(ep, "bd/dst", "v1", "after buildah push to bd/dst");
}
