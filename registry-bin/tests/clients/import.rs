//! `registry import --from-distribution`: a real CNCF Distribution 2.8.2 (Debian's
//! `docker-registry`) filled with skopeo (nested names, OCI and Docker media types, a
//! two-platform index, an untagged manifest, a tag deleted through the API), a corrupt
//! blob planted in its storage, then stopped and imported: copied into one root,
//! hard-linked into another. This registry then serves each root and skopeo pulls every
//! image back, bytes and digests compared with what Distribution served; containerd
//! (`ctr`) pulls the index and the Docker image from the copy. An import killed
//! with SIGKILL part way finishes when run again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::containerd::Containerd;
use crate::harness::containers::Containers;
use crate::harness::server::workdir;
use crate::harness::{need, raw, run, Endpoint, Image, Index, Layout, Registry, Scheme, PASS};
use crate::spawn;

/// Distribution 2.8.2 serving filesystem storage under `<dir>/dist`, plain HTTP on a
/// free loopback port, deletes enabled; killed on drop.
struct Distribution {
    child: Child,
    endpoint: Endpoint,
    root: PathBuf,
}

impl Distribution {
    fn start(dir: &Path) -> Distribution {
        need("docker-registry", "apt-get install docker-registry");
        let root = dir.join("dist");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("distribution.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                root.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Distribution {
            child,
            endpoint: Endpoint {
                scheme: Scheme::Http,
                host,
                ca: None,
            },
            root,
        }
    }

    /// `skopeo copy` into this registry (no auth, plain HTTP).
    fn push(&self, c: &Containers, extra: &[&str], from: &str, to: &str) {
        let mut cmd = c.skopeo();
        cmd.args(["copy", "--dest-tls-verify=false"]).args(extra);
        run(&format!("skopeo copy {from} to {to}"), cmd.args([from, to]));
    }

    /// Stops the process (its storage stays).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `registry import --from-distribution <from> --storage <to> [extra]`.
fn import(from: &Path, to: &Path, extra: &[&str]) -> Output {
    spawn::command()
        .args(["import", "--from-distribution"])
        .arg(from)
        .arg("--storage")
        .arg(to)
        .args(extra)
        .output()
        .unwrap()
}

/// Standard output, with standard error after it when there is any (so a failed
/// assertion shows why the command failed).
/// Whether some upload under `root` holds bytes: a blob half copied.
fn upload_in_progress(root: &Path) -> bool {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let in_uploads = dir.file_name().is_some_and(|n| n == "_uploads");
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) if in_uploads && m.len() > 0 => return true,
                _ => {}
            }
        }
    }
    false
}

fn stdout(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.stderr.is_empty() {
        text.push_str("\n--- stderr\n");
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    text
}

/// What Distribution served for each reference before it stopped: (repo, reference,
/// content type, bytes).
type Served = Vec<(String, String, String, Vec<u8>)>;

fn served(endpoint: &Endpoint, refs: &[(&str, &str)]) -> Served {
    refs.iter()
        .map(|(repo, reference)| {
            let res = raw::manifest(endpoint, repo, reference, "from Distribution");
            let media = res.header("content-type").to_owned();
            (repo.to_string(), reference.to_string(), media, res.body)
        })
        .collect()
}

/// This registry serves the same bytes and type for each reference, and skopeo pulls
/// each one (every blob of every platform, digests verified by skopeo) into `dir:`.
fn assert_pulls(registry: &Registry, before: &Served, work: &Path, step: &str) {
    let ep = &registry.endpoint;
    let c = Containers::new(ep);
    run("skopeo login", &mut c.login(c.skopeo(), PASS));
    for (i, (repo, reference, media, bytes)) in before.iter().enumerate() {
        let res = raw::manifest(ep, repo, reference, step);
        assert!(
            res.body == *bytes,
            "{step}: {repo}:{reference} bytes differ"
        );
        assert_eq!(
            res.header("content-type"),
            media,
            "{step}: {repo}:{reference}"
        );
        let out = work.join(format!("pull-{step}-{i}"));
        let mut cmd = c.skopeo();
        cmd.args(["copy", "--all", "--src-tls-verify=false"])
            .arg(ep.docker_ref(repo, reference))
            .arg(format!("dir:{}", out.display()));
        run(&format!("{step}: skopeo pull {repo}:{reference}"), &mut cmd);
        assert!(
            std::fs::read(out.join("manifest.json")).unwrap() == *bytes,
            "{step}: pulled manifest of {repo}:{reference}"
        );
    }
}

#[test]
fn a_distribution_storage_is_imported_copied_and_linked_with_damage_left_out() {
    let work = workdir();
    let mut dist = Distribution::start(work.path());
    let c = Containers::new(&dist.endpoint);
    let ep = dist.endpoint.clone();
    let oci = ["--preserve-digests"];

    let web = Image::small(1);
    let layout = Layout::of_image(&work.path().join("web"), "v1", &web);
    dist.push(
        &c,
        &oci,
        &layout.oci_ref("v1"),
        &ep.docker_ref("team/app/web", "v1"),
    );
    let docker = Image::small(2);
    let layout = Layout::of_image(&work.path().join("docker"), "v1", &docker);
    let v2s2 = ["--format", "v2s2"];
    dist.push(
        &c,
        &v2s2,
        &layout.oci_ref("v1"),
        &ep.docker_ref("team/app/web", "docker"),
    );
    let untagged = Image::small(6);
    let layout = Layout::of_image(&work.path().join("untagged"), "v1", &untagged);
    let by_digest = ep.docker_ref("team/app/web", &untagged.manifest.digest);
    dist.push(&c, &oci, &layout.oci_ref("v1"), &by_digest);
    let index = Index::two_platforms(3);
    let layout = Layout::of_index(&work.path().join("index"), "all", &index);
    let all = ["--all", "--preserve-digests"];
    dist.push(
        &c,
        &all,
        &layout.oci_ref("all"),
        &ep.docker_ref("multi/arch", "all"),
    );
    let solo = Image::small(4);
    let layout = Layout::of_image(&work.path().join("solo"), "v1", &solo);
    dist.push(
        &c,
        &v2s2,
        &layout.oci_ref("v1"),
        &ep.docker_ref("solo", "latest"),
    );
    let gone = Image::small(7);
    let layout = Layout::of_image(&work.path().join("gone"), "v1", &gone);
    dist.push(
        &c,
        &oci,
        &layout.oci_ref("v1"),
        &ep.docker_ref("solo", "gone"),
    );
    run(
        "skopeo delete solo:gone",
        c.skopeo()
            .args(["delete", "--tls-verify=false"])
            .arg(ep.docker_ref("solo", "gone")),
    );
    let rot = Image::small(5);
    let layout = Layout::of_image(&work.path().join("rot"), "v1", &rot);
    dist.push(
        &c,
        &oci,
        &layout.oci_ref("v1"),
        &ep.docker_ref("rot/img", "v1"),
    );

    let docker_digest = raw::manifest(&ep, "team/app/web", "docker", "Distribution")
        .header("docker-content-digest")
        .to_owned();
    let before = served(
        &ep,
        &[
            ("team/app/web", "v1"),
            ("team/app/web", &docker_digest),
            ("team/app/web", "docker"),
            ("team/app/web", &untagged.manifest.digest),
            ("multi/arch", "all"),
            ("solo", "latest"),
        ],
    );
    assert!(
        before[2].2.contains("docker.distribution.manifest.v2"),
        "{:?}",
        before[2].2
    );
    dist.stop();
    // A blob that rotted on disk: same length, other bytes.
    let bad = &rot.layers[2];
    let hex = bad.digest.trim_start_matches("sha256:");
    let file = dist.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut rotten = std::fs::read(&file).unwrap();
    rotten[100] ^= 0xff;
    std::fs::write(&file, &rotten).unwrap();

    let copied = work.path().join("copied");
    let out = import(&dist.root, &copied, &[]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "skips make the exit status 1:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "skipped blob {}: corrupt: its data hashes to",
            bad.digest
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skipped manifest {} in rot/img: needs blobs not imported: {}",
            rot.manifest.digest, bad.digest
        )),
        "{text}"
    );
    assert!(
        text.contains("skipped tag v1 in rot/img: points at"),
        "{text}"
    );
    assert!(text.contains("repositories: 4\n"), "{text}");
    // web v1, docker, untagged; the index and its two images; solo latest.
    assert!(
        text.contains("manifests:    7 imported, 0 already present\n"),
        "{text}"
    );
    assert!(
        text.contains("tags:         4 imported, 0 already present\n"),
        "{text}"
    );
    assert!(text.contains("skipped:      3 "), "{text}");

    let again = import(&dist.root, &copied, &[]);
    let text = stdout(&again);
    assert!(
        text.starts_with("nothing to import: everything in"),
        "{text}"
    );
    assert!(
        text.contains("manifests:    0 imported, 7 already present\n"),
        "{text}"
    );

    let linked = work.path().join("linked");
    let out = import(&dist.root, &linked, &["--link"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let layer = &web.layers[0].digest;
    let hex = layer.trim_start_matches("sha256:");
    let ours = linked.join(format!("v1/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let theirs = dist.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    assert_eq!(
        std::fs::metadata(ours).unwrap().ino(),
        std::fs::metadata(theirs).unwrap().ino()
    );

    for (root, step) in [(&copied, "copied"), (&linked, "linked")] {
        let registry = Registry::start_on(Scheme::Http, Some(root), |_, _| ());
        let ours = &registry.endpoint;
        raw::assert_image(ours, "team/app/web", "v1", &web, step);
        raw::assert_image(
            ours,
            "team/app/web",
            &untagged.manifest.digest,
            &untagged,
            step,
        );
        raw::assert_index(ours, "multi/arch", "all", &index, step);
        assert_pulls(&registry, &before, work.path(), step);
        assert_eq!(
            raw::tags(ours, "solo"),
            ["latest"],
            "{step}: the deleted tag stays deleted"
        );
        let res = raw::get(
            ours,
            &format!("/v2/solo/manifests/{}", gone.manifest.digest),
        );
        assert_eq!(
            res.status, 404,
            "{step}: the deleted manifest is not imported"
        );
        let res = raw::get(ours, "/v2/rot/img/manifests/v1");
        assert_eq!(
            res.status, 404,
            "{step}: the manifest needing the corrupt blob"
        );
        let res = raw::get(ours, &format!("/v2/rot/img/blobs/{}", bad.digest));
        assert_eq!(res.status, 404, "{step}: the corrupt blob");
        raw::assert_blobs(ours, "rot/img", &[&rot.layers[0], &rot.config], step);
        if step == "copied" {
            // containerd too, as a Kubernetes node would pull after the move.
            let node = Containerd::start(ours);
            for (repo, reference) in [("multi/arch", "all"), ("team/app/web", "docker")] {
                let r = ours.image_ref(repo, reference);
                let step = format!("ctr images pull --all-platforms {r}");
                run(&step, node.remote("pull").arg("--all-platforms").arg(&r));
                node.assert_complete(&r, &step);
            }
        }
    }
}

#[test]
fn an_import_killed_part_way_finishes_when_run_again() {
    let work = workdir();
    let mut dist = Distribution::start(work.path());
    let c = Containers::new(&dist.endpoint);
    let ep = dist.endpoint.clone();
    let big = Image::build(8, "amd64", [64 << 20, 64 << 20, 64 << 20]);
    let layout = Layout::of_image(&work.path().join("big"), "v1", &big);
    dist.push(
        &c,
        &["--preserve-digests"],
        &layout.oci_ref("v1"),
        &ep.docker_ref("big/one", "v1"),
    );
    dist.stop();

    let target = work.path().join("target");
    let mut child = spawn::command()
        .args(["import", "--from-distribution"])
        .arg(&dist.root)
        .arg("--storage")
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while a layer is half copied: an upload holding some bytes (an upload
    // is gone once committed, so that layer cannot be in yet). Waiting for the first
    // committed blob instead raced the whole import on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !upload_in_progress(&target) {
        assert!(
            Instant::now() < deadline,
            "the import copied no bytes in 60 s"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended before the kill: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let in_target = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        target
            .join(format!("v1/blobs/sha256/{}/{hex}/data", &hex[..2]))
            .exists()
    };
    let layers_in = big.layers.iter().filter(|l| in_target(&l.digest)).count();
    // The config is small: it may or may not be in when the kill lands.
    let blobs_in = layers_in + usize::from(in_target(&big.config.digest));
    assert!(layers_in < 3, "the kill came after the import finished");

    let out = import(&dist.root, &target, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "blobs:        {} imported, {} already present\n",
            4 - blobs_in,
            blobs_in
        )),
        "{text}"
    );
    assert!(
        text.contains("manifests:    1 imported, 0 already present\n"),
        "{text}"
    );
    assert!(text.contains("skipped:      none\n"), "{text}");

    let registry = Registry::start_on(Scheme::Http, Some(&target), |_, _| ());
    raw::assert_image(
        &registry.endpoint,
        "big/one",
        "v1",
        &big,
        "after the resumed import",
    );
}
