//! `registry config check`, start-up checks, and Location headers behind a proxy.

use std::process::Output;

use crate::harness::*;

/// `registry config check CONFIG`.
pub(crate) fn check(config: &std::path::Path) -> Output {
    registry()
        .args(["config", "check"])
        .arg(config)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_valid_config_checks_ok() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let out = check(&config);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    assert!(stdout.contains("htpasswd"), "{stdout}");
}

/// The config.yml of the standard registry's image, as a Deployment mounts it: it
/// starts, with one warning per key this registry does not implement, and a key that
/// would be unsafe to ignore stops the start naming it.
#[tokio::test]
async fn a_standard_registry_config_starts_with_warnings() {
    let dir = workdir();
    let storage = dir.path().join("data");
    let text = format!(
        "version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n  secret: asecretforlocaldevelopment\n  headers:\n    X-Content-Type-Options: [nosniff]\nhealth:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n",
        storage.display()
    );
    let path = dir.path().join("config.yml");
    std::fs::write(&path, &text).unwrap();
    let out = check(&path);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for key in [
        "log.fields",
        "storage.cache",
        "health",
        "http.secret",
        "http.headers",
    ] {
        let line = format!("warning: ignoring {key} (a key of the standard registry)");
        assert_eq!(stdout.matches(&line).count(), 1, "{key}: {stdout}");
    }
    let mut cmd = registry();
    cmd.arg("serve").arg(&path);
    let server = Binary::spawn(dir, cmd);
    let res = reqwest::get(server.url("http", "/v2/")).await.unwrap();
    assert_eq!(res.status(), 200, "auth is off in that config");

    let dir = workdir();
    let path = dir.path().join("config.yml");
    let mutual_tls = text.replace(
        "  addr: 127.0.0.1:0\n",
        "  addr: 127.0.0.1:0\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n    clientcas: [/ca.pem]\n",
    );
    std::fs::write(&path, mutual_tls).unwrap();
    let out = check(&path);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("http.tls.clientcas"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_errors_name_the_key_line_or_path() {
    let dir = workdir();
    let base = config(dir.path(), "");
    let text = std::fs::read_to_string(&base).unwrap();
    let cases = [
        (
            text.replace("  addr:", "  adress:"),
            vec!["unknown field `adress`", "line 14"],
        ),
        (
            text.replace("level: info", "level: [info]"),
            vec!["log.level", "line 3"],
        ),
        (
            text.replace("level: info", "level: chatty"),
            vec!["log.level", "chatty"],
        ),
        (
            text.replace("127.0.0.1:0", "somewhere"),
            vec!["http.addr", "somewhere"],
        ),
        (
            format!("{text}  tls:\n    certificate: /nope/tls.crt\n    key: /nope/tls.key\n"),
            vec!["/nope/tls.crt", "TLS certificate"],
        ),
        (
            text.replace(
                &dir.path().join("htpasswd").display().to_string(),
                "/nope/htpasswd",
            ),
            vec!["/nope/htpasswd"],
        ),
        (
            format!("{text}  host: registry.example.com\n"),
            vec!["http.host", "https://"],
        ),
    ];
    for (i, (body, needles)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.yml"));
        std::fs::write(&path, body).unwrap();
        let out = check(&path);
        assert!(!out.status.success(), "case {i} should fail");
        let err = stderr(&out);
        for needle in needles {
            assert!(err.contains(needle), "case {i}: {needle:?} not in {err}");
        }
    }
    // A bad htpasswd line names the line and user.
    std::fs::write(dir.path().join("htpasswd"), "bob:$apr1$abc$def\n").unwrap();
    let err = stderr(&check(&base));
    assert!(
        err.contains("line 1") && err.contains("bob") && err.contains("bcrypt"),
        "{err}"
    );
    // A certificate that is not PEM names the file.
    std::fs::write(dir.path().join("c.pem"), "garbage").unwrap();
    std::fs::write(dir.path().join("k.pem"), "garbage").unwrap();
    let tls = dir.path().join("tls.yml");
    write_htpasswd(&dir.path().join("htpasswd"), &[(USER, PASS)]);
    std::fs::write(
        &tls,
        format!(
            "{text}  tls:\n    certificate: {}\n    key: {}\n",
            dir.path().join("c.pem").display(),
            dir.path().join("k.pem").display()
        ),
    )
    .unwrap();
    let err = stderr(&check(&tls));
    assert!(err.contains("c.pem"), "{err}");
}

/// The pull-through cache's keys: bad prefixes, unknown keys and unreadable password
/// files stop `config check` naming the key (and line or path); a valid set is reported.
#[test]
fn proxy_config_errors_name_the_key() {
    let dir = workdir();
    let text = std::fs::read_to_string(config(dir.path(), "")).unwrap();
    let up = |rest: &str| format!("{text}proxy:\n  upstreams:\n{rest}");
    let cases = [
        (
            up("    - prefix: docker.io\n      url: https://a\n    - prefix: docker.io/library\n      url: https://b\n"),
            vec!["proxy.upstreams[1].prefix", "overlaps"],
        ),
        (
            up("    - prefix: Docker.IO\n      url: https://a\n"),
            vec!["proxy.upstreams[0].prefix", "Docker.IO"],
        ),
        (
            up("    - prefix: a\n      url: https://a\n      ttll: 5m\n"),
            vec!["unknown field `ttll`"],
        ),
        (
            up("    - prefix: a\n      url: a.example\n"),
            vec!["proxy.upstreams[0].url", "https://"],
        ),
        (
            up("    - prefix: a\n      url: https://a\n      username: u\n      passwordfile: /nope/pw\n"),
            vec!["proxy.upstreams[0]", "/nope/pw"],
        ),
    ];
    for (i, (body, needles)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("proxy-{i}.yml"));
        std::fs::write(&path, body).unwrap();
        let out = check(&path);
        assert!(!out.status.success(), "case {i} should fail");
        let err = stderr(&out);
        for needle in needles {
            assert!(err.contains(needle), "case {i}: {needle:?} not in {err}");
        }
    }
    // Valid, with an upstream that does not answer: checked without being asked.
    let path = dir.path().join("proxy-ok.yml");
    std::fs::write(
        &path,
        format!("{text}proxy:\n  remoteurl: http://127.0.0.1:9\n  upstreams:\n    - prefix: docker.io\n      url: https://registry-1.docker.io\n"),
    )
    .unwrap();
    let out = check(&path);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("proxy upstream docker.io (https://registry-1.docker.io) caches repositories under docker.io/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("every repository not stored here"),
        "{stdout}"
    );
}

#[test]
fn environment_overrides_reach_the_binary() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let out = registry()
        .args(["config", "check"])
        .arg(&config)
        .env("REGISTRY_HTTP_ADDR", "nonsense")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("http.addr"), "{}", stderr(&out));
}

#[test]
fn storage_problems_stop_the_start_with_the_path() {
    let dir = workdir();
    let file = dir.path().join("data");
    std::fs::write(&file, "a file where the storage root should be").unwrap();
    let config = config(dir.path(), "");
    let out = registry()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a directory"),
        "{err}"
    );
}

#[test]
fn public_address_without_auth_is_refused() {
    let out = registry()
        .args(["serve", "--addr", "0.0.0.0:0", "--storage"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--htpasswd"), "{}", stderr(&out));
}

#[tokio::test]
async fn locations_for_clients_behind_a_proxy() {
    let dir = workdir();
    let proxied = config(dir.path(), "  relativeurls: false\n");
    let server = Binary::start(dir, &proxied, &[]);
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("http", "/v2/p/blobs/uploads/"))
        .basic_auth(USER, Some(PASS))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "registry.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://registry.example.com/v2/p/blobs/uploads/"),
        "{location}"
    );

    let dir = workdir();
    let fixed = config(dir.path(), "  host: https://reg.example.org\n");
    let server = Binary::start(dir, &fixed, &[]);
    let res = client
        .post(server.url("http", "/v2/p/blobs/uploads/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://reg.example.org/v2/p/blobs/uploads/"),
        "{location}"
    );
}
