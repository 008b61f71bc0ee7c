//! The set-up commands through the real `registry` binary, stdin piped:
//! `registry htpasswd` lines checked by bcrypt, by the registry's own parser
//! and by Apache's `htpasswd -v`; `registry pull-secret` YAML decoded back to
//! the Docker config and, when `kubernetes-validate` is installed, checked
//! against the Kubernetes schemas; bad input refused with the reason.
//!
//! Apache's `htpasswd` and `kubernetes-validate` are required when `CI` is
//! set (`.ci/run` installs both) and skipped with a note otherwise.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

fn registry(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its flags exits without reading stdin.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// `true` if `tool` is on PATH; without it the check is skipped, except in
/// CI, where it is a failure.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed; .ci/run installs it"
        );
        eprintln!("note: {tool} is not installed, skipping that check");
    }
    found
}

fn documents(yaml: &str) -> Vec<serde_yaml_ng::Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn htpasswd_line_is_accepted_by_bcrypt_the_registry_and_apache() {
    let password = "correct horse: battery staple";
    let output = registry(
        &["htpasswd", "alice", "--password-stdin", "--cost", "5"],
        format!("{password}\n").as_bytes(),
    );
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    let line = text.trim_end();
    let hash = line.strip_prefix("alice:").unwrap();
    assert!(hash.starts_with("$2y$05$"), "{hash}");
    assert!(bcrypt::verify(password, hash).unwrap());

    let users = registry_auth::Htpasswd::parse(&text).unwrap();
    assert!(users.verify("alice", password));
    assert!(!users.verify("alice", "correct horse"));

    if have("htpasswd") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, &text).unwrap();
        let check = |pass: &str| {
            Command::new("htpasswd")
                .arg("-vb")
                .arg(&file)
                .args(["alice", pass])
                .output()
                .unwrap()
        };
        let good = check(password);
        assert!(
            good.status.success(),
            "htpasswd -v refused: {}",
            String::from_utf8_lossy(&good.stderr)
        );
        assert!(!check("wrong").status.success());
    }
}

#[test]
fn htpasswd_default_cost_is_10() {
    let text = stdout(&registry(&["htpasswd", "ci", "--password-stdin"], b"pw\n"));
    assert!(text.starts_with("ci:$2y$10$"), "{text}");
}

#[test]
fn pull_secret_decodes_to_the_docker_config() {
    let output = registry(
        &[
            "pull-secret",
            "--server",
            "registry.example.com",
            "--username",
            "k8s",
            "--password-stdin",
            "--namespace",
            "team-a",
        ],
        b"s3cret\n",
    );
    let yaml = stdout(&output);
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 1, "{yaml}");
    let secret = &docs[0];
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(secret["metadata"]["name"], "regcred");
    assert_eq!(secret["metadata"]["namespace"], "team-a");
    let config = STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(
        config,
        serde_json::json!({"auths": {"registry.example.com": {
            "username": "k8s",
            "password": "s3cret",
            "auth": STANDARD.encode("k8s:s3cret"),
        }}})
    );
    validate_with_kubernetes_schemas(&yaml);
}

#[test]
fn pull_secret_with_service_account() {
    let output = registry(
        &[
            "pull-secret",
            "--server",
            "registry.example.com:5000",
            "--username",
            "k8s",
            "--password-stdin",
            "--name",
            "registry-pull",
            "--service-account",
            "builder",
        ],
        b"pw\n",
    );
    let yaml = stdout(&output);
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 2, "{yaml}");
    let account = &docs[1];
    assert_eq!(account["apiVersion"], "v1");
    assert_eq!(account["kind"], "ServiceAccount");
    assert_eq!(account["metadata"]["name"], "builder");
    assert_eq!(account["metadata"]["namespace"], "default");
    assert_eq!(
        account["imagePullSecrets"],
        documents("- name: registry-pull")[0]
    );
    validate_with_kubernetes_schemas(&yaml);
}

/// Runs `kubernetes-validate --strict` (PyPI) on the YAML, when installed.
fn validate_with_kubernetes_schemas(yaml: &str) {
    if !have("kubernetes-validate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.yaml");
    std::fs::write(&file, yaml).unwrap();
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bad_input_exits_non_zero_with_the_reason() {
    let cases: [(&[&str], &[u8], &str); 12] = [
        (
            &["htpasswd", "", "--password-stdin"],
            b"pw\n",
            "the user name is empty",
        ),
        (
            &["htpasswd", "a:b", "--password-stdin"],
            b"pw\n",
            "cannot contain ':'",
        ),
        (
            &["htpasswd", "a b", "--password-stdin"],
            b"pw\n",
            "whitespace",
        ),
        (
            &["htpasswd", "alice", "--password-stdin"],
            b"\n",
            "the password is empty",
        ),
        (
            &["htpasswd", "alice", "--password-stdin"],
            b"",
            "standard input is empty",
        ),
        (
            &["htpasswd", "alice", "--password-stdin", "--cost", "3"],
            b"pw\n",
            "4..=31",
        ),
        (
            &["htpasswd", "alice", "--password-stdin", "--cost", "32"],
            b"pw\n",
            "4..=31",
        ),
        (
            &[
                "pull-secret",
                "--server",
                "https://registry.example.com",
                "--username",
                "u",
                "--password-stdin",
            ],
            b"pw\n",
            "remove the scheme",
        ),
        (
            &[
                "pull-secret",
                "--server",
                "registry.example.com/v2",
                "--username",
                "u",
                "--password-stdin",
            ],
            b"pw\n",
            "remove the path",
        ),
        (
            &[
                "pull-secret",
                "--server",
                "registry.example.com",
                "--username",
                "u",
                "--password-stdin",
                "--namespace",
                "Team_A",
            ],
            b"pw\n",
            "DNS-1123 label",
        ),
        (
            &[
                "pull-secret",
                "--server",
                "registry.example.com",
                "--username",
                "u",
                "--password-stdin",
                "--name",
                "reg cred",
            ],
            b"pw\n",
            "DNS-1123 subdomain",
        ),
        (
            &[
                "pull-secret",
                "--server",
                "registry.example.com",
                "--username",
                "u",
                "--password-stdin",
            ],
            b"\n",
            "the password is empty",
        ),
    ];
    for (args, stdin, reason) in cases {
        let output = registry(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// Without `--password-stdin` and without a terminal (a new session, as in
/// CI or a pipeline), the command says how to pass the password instead of
/// hanging.
#[test]
fn prompt_without_a_terminal_says_to_use_password_stdin() {
    if !have("setsid") {
        return;
    }
    let output = Command::new("setsid")
        .args([
            "--wait",
            env!("CARGO_BIN_EXE_registry"),
            "htpasswd",
            "alice",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    assert!(output.stdout.is_empty());
}
