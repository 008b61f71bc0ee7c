//! End to end with a real client: the `registry` binary with an htpasswd
//! file made by `htpasswd -Bbn`, driven by skopeo (Debian package).
//!
//! The image is built here as an `oci:` layout (three layers, a config, a
//! manifest), copied into the registry with basic auth, copied back out to
//! a new layout, and every blob compared by digest.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sha2::{Digest as _, Sha256};

const USER: &str = "ci";
const PASS: &str = "pa55word";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{tool} is not installed: run `bash scripts/test`, which installs it (Debian: apt-get install skopeo apache2-utils)");
}

/// The registry binary on a free loopback port; killed on drop.
struct Server {
    child: Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(htpasswd: &Path) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
            .args(["serve", "--addr", "127.0.0.1:0", "--storage"])
            .arg(data.path())
            .arg("--htpasswd")
            .arg(htpasswd)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("registry exited before listening")
                .unwrap();
            if let Some(rest) = line.split("addr=").nth(1) {
                if line.contains("listening") {
                    break rest.split_whitespace().next().unwrap().to_owned();
                }
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            _data: data,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo").args(args).output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "skopeo failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes an OCI layout with one image tagged `v1`; returns (manifest
/// bytes, every blob digest).
fn build_layout(dir: &Path) -> (Vec<u8>, Vec<String>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let layers: Vec<(String, usize)> = (0..3u8)
        .map(|i| {
            let data: Vec<u8> = (0..(50_000 + i as usize * 70_001))
                .map(|j| (j as u8).wrapping_mul(i + 3))
                .collect();
            put(&data)
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let layer_json: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{s}}}"#))
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{}]}}"#,
        layer_json.join(",")
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        ),
    )
    .unwrap();
    let mut all: Vec<String> = layers.into_iter().map(|(d, _)| d).collect();
    all.push(config_digest);
    (manifest.into_bytes(), all)
}

#[test]
fn skopeo_copies_in_and_out_with_basic_auth() {
    need("skopeo");
    need("htpasswd");
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    let line = Command::new("htpasswd")
        .args(["-Bbn", USER, PASS])
        .output()
        .unwrap();
    assert!(line.status.success());
    std::fs::write(&htpasswd, &line.stdout).unwrap();
    let server = Server::start(&htpasswd);
    let src = work.path().join("src");
    let (manifest, blobs) = build_layout(&src);
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let manifest = manifest.clone();
    let creds = format!("{USER}:{PASS}");
    let remote = |repo: &str, reference: &str| {
        let sep = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        format!("docker://{}/{repo}{sep}{reference}", server.addr)
    };

    // Push.
    ok(skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", src.display()),
        &remote("e2e/app", "v1"),
    ]));
    // The manifest is stored byte for byte.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote("e2e/app", "v1"),
    ]);
    assert_eq!(ok(raw), String::from_utf8(manifest).unwrap());
    // Pull by tag and by digest into new layouts; compare every blob.
    for reference in ["v1", manifest_digest.as_str()] {
        let out = work
            .path()
            .join(format!("out-{}", reference.replace(':', "-")));
        ok(skopeo(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &remote("e2e/app", reference),
            &format!("oci:{}:pulled", out.display()),
        ]));
        for digest in blobs.iter().chain([&manifest_digest]) {
            let hex = digest.trim_start_matches("sha256:");
            let path = out.join("blobs/sha256").join(hex);
            let pulled = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                sha256_hex(&pulled),
                hex,
                "blob {digest} pulled by {reference}"
            );
        }
    }
    // Copy between repositories of the registry, then list tags.
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &remote("e2e/app", "v1"),
        &remote("e2e/copy", "v2"),
    ]));
    let tags = ok(skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/e2e/copy", server.addr),
    ]));
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v2"]));
    // Delete by digest.
    ok(skopeo(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote("e2e/copy", &manifest_digest),
    ]));
    let gone = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote("e2e/copy", "v2"),
    ]);
    assert!(!gone.status.success());
    // A wrong password gets nowhere.
    let denied = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:wrong"),
        &remote("e2e/app", "v1"),
    ]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("unauthorized") || stderr.contains("401"),
        "{stderr}"
    );
}
