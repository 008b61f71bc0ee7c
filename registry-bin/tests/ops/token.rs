//! `auth.token`: the real binary trusting a test token server (its root
//! bundle in the config file), answered over HTTP with and without tokens.
//! Every 401 is checked for its exact `WWW-Authenticate` header and the
//! `UNAUTHORIZED` code in the body.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::*;
use crate::token_server::{
    user_may_do_everything, Issuer, KeyKind, KeyMode, TokenServer, ISSUER, SERVICE,
};

/// The config of a registry trusting `server`; `extra_auth` goes into `auth:`.
fn token_config(
    dir: &std::path::Path,
    server: &TokenServer,
    extra_auth: &str,
) -> std::path::PathBuf {
    let text = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n    autoredirect: false\n{extra_auth}http:\n  addr: 127.0.0.1:0\n",
        dir.join("data").display(),
        server.realm,
        server.bundle.display(),
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(kind: KeyKind, mode: KeyMode) -> (TokenServer, Binary) {
    let dir = tempfile::tempdir().unwrap();
    let server = TokenServer::start(dir.path(), kind, mode, Arc::new(user_may_do_everything));
    let config = token_config(dir.path(), &server, "");
    let registry = Binary::start(dir, &config, &[]);
    (server, registry)
}

/// The challenge Distribution sends for `scope` (none: `None`) and `error`.
fn challenge(server: &TokenServer, scope: Option<&str>, error: Option<&str>) -> String {
    let mut c = format!(r#"Bearer realm="{}",service="{SERVICE}""#, server.realm);
    if let Some(scope) = scope {
        c.push_str(&format!(r#",scope="{scope}""#));
    }
    if let Some(error) = error {
        c.push_str(&format!(r#",error="{error}""#));
    }
    c
}

async fn send(
    registry: &Binary,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, registry.url("http", path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// Asserts a 401 with exactly `want` as challenge and UNAUTHORIZED in the body.
async fn assert_401(res: reqwest::Response, want: &str, step: &str) {
    assert_eq!(res.status(), 401, "{step}");
    let header = res
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{step}: no challenge"))
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(header, want, "{step}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{step}: {body}");
}

fn pull_on(repo: &str) -> Value {
    json!([{"type": "repository", "name": repo, "actions": ["pull"]}])
}

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test]
async fn without_a_token_each_route_is_challenged_with_its_scope() {
    let (server, registry) = start(KeyKind::Es256, KeyMode::X5c);
    use reqwest::Method as M;
    let cases = [
        (M::GET, "/v2/".to_owned(), None),
        (M::GET, "/v2/_catalog".into(), Some("registry:catalog:*")),
        (
            M::GET,
            "/v2/t/app/manifests/v1".into(),
            Some("repository:t/app:pull"),
        ),
        (
            M::HEAD,
            format!("/v2/t/app/blobs/{DIGEST}"),
            Some("repository:t/app:pull"),
        ),
        (
            M::PUT,
            "/v2/t/app/manifests/v1".into(),
            Some("repository:t/app:pull,push"),
        ),
        (
            M::POST,
            "/v2/t/app/blobs/uploads/".into(),
            Some("repository:t/app:pull,push"),
        ),
        (
            M::POST,
            format!("/v2/t/app/blobs/uploads/?mount={DIGEST}&from=t/base"),
            Some("repository:t/app:pull,push repository:t/base:pull"),
        ),
        (
            M::DELETE,
            format!("/v2/t/app/manifests/{DIGEST}"),
            Some("repository:t/app:delete"),
        ),
    ];
    for (method, path, scope) in cases {
        let step = format!("{method} {path}");
        let res = send(&registry, method.clone(), &path, None).await;
        if method == M::HEAD {
            // No body on HEAD: the header is what counts.
            assert_eq!(res.status(), 401, "{step}");
            assert_eq!(
                res.headers()["www-authenticate"],
                challenge(&server, scope, None).as_str()
            );
            continue;
        }
        assert_401(res, &challenge(&server, scope, None), &step).await;
    }
    // Basic credentials are not the registry's business in token mode.
    let res = reqwest::Client::new()
        .get(registry.url("http", "/v2/t/app/tags/list"))
        .basic_auth(crate::token_server::USER, Some(crate::token_server::PASS))
        .send()
        .await
        .unwrap();
    assert_401(
        res,
        &challenge(&server, Some("repository:t/app:pull"), None),
        "basic",
    )
    .await;
}

/// A token with pull on `t/app` opens reads there and nothing else; a push
/// or another repository gets 401 `insufficient_scope`. In both key modes.
async fn grants_are_enforced(kind: KeyKind, mode: KeyMode) {
    let (server, registry) = start(kind, mode);
    let token = server.mint("alice", pull_on("t/app"), |_| {});
    let ok = send(&registry, reqwest::Method::GET, "/v2/", Some(&token)).await;
    assert_eq!(ok.status(), 200, "GET /v2/ with any valid token");
    let res = send(
        &registry,
        reqwest::Method::GET,
        "/v2/t/app/tags/list",
        Some(&token),
    )
    .await;
    assert_eq!(
        res.status(),
        404,
        "pull is granted: the repository is just empty"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
    let res = send(
        &registry,
        reqwest::Method::POST,
        "/v2/t/app/blobs/uploads/",
        Some(&token),
    )
    .await;
    assert_401(
        res,
        &challenge(
            &server,
            Some("repository:t/app:pull,push"),
            Some("insufficient_scope"),
        ),
        "push with a pull token",
    )
    .await;
    let res = send(
        &registry,
        reqwest::Method::GET,
        "/v2/t/other/tags/list",
        Some(&token),
    )
    .await;
    assert_401(
        res,
        &challenge(
            &server,
            Some("repository:t/other:pull"),
            Some("insufficient_scope"),
        ),
        "another repository",
    )
    .await;
    let res = send(
        &registry,
        reqwest::Method::GET,
        "/v2/_catalog",
        Some(&token),
    )
    .await;
    assert_401(
        res,
        &challenge(
            &server,
            Some("registry:catalog:*"),
            Some("insufficient_scope"),
        ),
        "catalog without the grant",
    )
    .await;

    // pull+push lets an upload start; the catalog grant lists everything.
    let pusher = server.mint(
        "ci",
        json!([
            {"type": "repository", "name": "t/app", "actions": ["pull", "push"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ]),
        |_| {},
    );
    let res = send(
        &registry,
        reqwest::Method::POST,
        "/v2/t/app/blobs/uploads/",
        Some(&pusher),
    )
    .await;
    assert_eq!(res.status(), 202, "upload start with pull,push");
    let res = send(
        &registry,
        reqwest::Method::GET,
        "/v2/_catalog",
        Some(&pusher),
    )
    .await;
    assert_eq!(res.status(), 200);

    // Metrics on the main port need the registry-wide grant too.
    let res = send(&registry, reqwest::Method::GET, "/metrics", Some(&token)).await;
    let want = challenge(
        &server,
        Some("registry:catalog:*"),
        Some("insufficient_scope"),
    );
    assert_401(res, &want, "metrics without the catalog grant").await;
    let res = send(&registry, reqwest::Method::GET, "/metrics", None).await;
    let want = challenge(&server, Some("registry:catalog:*"), None);
    assert_401(res, &want, "metrics without a token").await;
    let res = send(&registry, reqwest::Method::GET, "/metrics", Some(&pusher)).await;
    assert_eq!(res.status(), 200, "metrics with the catalog grant");
}

#[tokio::test]
async fn grants_are_enforced_x5c_es256() {
    grants_are_enforced(KeyKind::Es256, KeyMode::X5c).await;
}

#[tokio::test]
async fn grants_are_enforced_kid_rs256() {
    grants_are_enforced(KeyKind::Rs256, KeyMode::Kid).await;
}

#[tokio::test]
async fn refused_tokens_get_invalid_token() {
    let (server, registry) = start(KeyKind::Es256, KeyMode::Kid);
    let access = pull_on("t/app");
    let stranger = Issuer::new(KeyKind::Es256);
    let good = server.mint("alice", access.clone(), |_| {});
    let (unsigned, _) = good.rsplit_once('.').unwrap();
    let cases = [
        (
            "expired",
            server.mint("alice", access.clone(), |c| {
                c["exp"] = json!(crate::token_server::now() - 120);
            }),
        ),
        (
            "not yet valid",
            server.mint("alice", access.clone(), |c| {
                c["nbf"] = json!(crate::token_server::now() + 600);
            }),
        ),
        (
            "wrong audience",
            server.mint("alice", access.clone(), |c| {
                c["aud"] = json!("other-registry")
            }),
        ),
        (
            "wrong issuer",
            server.mint("alice", access.clone(), |c| c["iss"] = json!("someone")),
        ),
        (
            "signed by another key",
            stranger.sign(
                KeyMode::Kid,
                &server.issuer.header(KeyMode::Kid),
                &crate::token_server::claims(
                    ISSUER,
                    SERVICE,
                    "alice",
                    crate::token_server::now(),
                    access.clone(),
                ),
            ),
        ),
        (
            "x5c chain to an untrusted root",
            stranger.token(
                KeyMode::X5c,
                &crate::token_server::claims(
                    ISSUER,
                    SERVICE,
                    "alice",
                    crate::token_server::now(),
                    access.clone(),
                ),
            ),
        ),
        ("signature cut", format!("{unsigned}.AAAA")),
        ("malformed", "not-a-jwt".to_owned()),
    ];
    for (step, token) in cases {
        let res = send(
            &registry,
            reqwest::Method::GET,
            "/v2/t/app/tags/list",
            Some(&token),
        )
        .await;
        assert_401(
            res,
            &challenge(
                &server,
                Some("repository:t/app:pull"),
                Some("invalid_token"),
            ),
            step,
        )
        .await;
    }
    let res = send(
        &registry,
        reqwest::Method::GET,
        "/v2/t/app/tags/list",
        Some(&good),
    )
    .await;
    assert_eq!(res.status(), 404, "the good token still works");
}

#[test]
fn config_check_validates_the_bundle_and_start_refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = TokenServer::start(
        dir.path(),
        KeyKind::Es256,
        KeyMode::X5c,
        Arc::new(user_may_do_everything),
    );
    let config = token_config(dir.path(), &server, "");
    let check = |config: &std::path::Path| {
        registry()
            .args(["config", "check"])
            .arg(config)
            .output()
            .unwrap()
    };
    let out = check(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("token root bundle") && stdout.contains("(1 certificate)"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let cases = [
        (
            text.replace(
                &server.bundle.display().to_string(),
                &empty.display().to_string(),
            ),
            vec!["auth.token.rootcertbundle", "holds no certificate"],
        ),
        (
            text.replace(&server.bundle.display().to_string(), "/nonexistent/ca.pem"),
            vec!["token root bundle", "/nonexistent/ca.pem"],
        ),
        (
            text.replace("autoredirect: false", "autoredirect: true"),
            vec!["auth.token.autoredirect", "not supported"],
        ),
        (
            text.replace("auth:\n", "auth:\n  htpasswd:\n    path: /h\n"),
            vec!["auth.htpasswd", "auth.token"],
        ),
    ];
    for (i, (text, needles)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.yml"));
        std::fs::write(&path, text).unwrap();
        for out in [
            check(&path),
            registry()
                .args(["serve", "--config"])
                .arg(&path)
                .output()
                .unwrap(),
        ] {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "case {i} was accepted");
            for needle in &needles {
                assert!(
                    stderr.contains(needle),
                    "case {i}: {needle:?} not in {stderr}"
                );
            }
        }
    }
}

/// CNCF Distribution 2.8.2 (`docker-registry`) with the same `auth.token`
/// settings, on a free port; killed on drop.
struct Distribution {
    child: std::process::Child,
    addr: String,
}

impl Distribution {
    fn start(dir: &std::path::Path, server: &TokenServer) -> Distribution {
        let bin = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: apt-get install docker-registry (CNCF Distribution 2.8.2)"
        );
        // A free port: bound, read, released (Distribution takes no port 0).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("distribution.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                dir.join("distribution-data").display(),
                server.realm,
                server.bundle.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let distribution = Distribution { child, addr };
        for _ in 0..200 {
            if std::net::TcpStream::connect(&distribution.addr).is_ok() {
                return distribution;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}", distribution.addr);
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A challenge with its scopes, and each scope's actions, sorted:
/// Distribution 2.8.2 lists both in Go map order (`pull,push` or
/// `push,pull`), which clients do not care about.
fn normalized(challenge: &str) -> String {
    let Some(start) = challenge.find("scope=\"") else {
        return challenge.to_owned();
    };
    let start = start + "scope=\"".len();
    let len = challenge[start..].find('"').unwrap();
    let mut scopes: Vec<String> = challenge[start..start + len]
        .split(' ')
        .map(|scope| {
            let (resource, actions) = scope.rsplit_once(':').unwrap();
            let mut actions: Vec<&str> = actions.split(',').collect();
            actions.sort_unstable();
            format!("{resource}:{}", actions.join(","))
        })
        .collect();
    scopes.sort_unstable();
    format!(
        "{}{}{}",
        &challenge[..start],
        scopes.join(" "),
        &challenge[start + len..]
    )
}

/// Status, normalized challenge and first error code.
async fn answer(addr: &str, method: reqwest::Method, path: &str, token: Option<&str>) -> String {
    let mut req = reqwest::Client::new().request(method, format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| normalized(v.to_str().unwrap()))
        .unwrap_or_default();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    format!("{status} {challenge} {}", body["errors"][0]["code"])
}

/// The same requests, with and without tokens (x5c and kid, good, under-
/// scoped and refused), get the same status, challenge and error code from
/// this registry and from Distribution 2.8.2: the kid cross-checks our
/// libtrust key IDs against libtrust's own.
#[tokio::test]
async fn answers_as_distribution_2_8_2_does() {
    for mode in [KeyMode::X5c, KeyMode::Kid] {
        let dir = tempfile::tempdir().unwrap();
        let server = TokenServer::start(
            dir.path(),
            KeyKind::Es256,
            mode,
            Arc::new(user_may_do_everything),
        );
        let distribution = Distribution::start(dir.path(), &server);
        let config = token_config(dir.path(), &server, "");
        let ours = Binary::start(tempfile::tempdir().unwrap(), &config, &[]);
        let pull = server.mint("alice", pull_on("t/app"), |_| {});
        let expired = server.mint("alice", pull_on("t/app"), |c| {
            c["exp"] = json!(crate::token_server::now() - 120);
        });
        let wrong_aud = server.mint("alice", pull_on("t/app"), |c| c["aud"] = json!("x"));
        use reqwest::Method as M;
        let cases: Vec<(M, String, Option<&str>)> = vec![
            (M::GET, "/v2/".into(), None),
            (M::GET, "/v2/".into(), Some(&pull)),
            (M::GET, "/v2/_catalog".into(), None),
            (M::GET, "/v2/_catalog".into(), Some(&pull)),
            (M::GET, "/v2/t/app/tags/list".into(), None),
            (M::GET, "/v2/t/app/tags/list".into(), Some(&pull)),
            (M::GET, "/v2/t/app/tags/list".into(), Some(&expired)),
            (M::GET, "/v2/t/app/tags/list".into(), Some(&wrong_aud)),
            (M::GET, "/v2/t/app/tags/list".into(), Some("garbage")),
            (M::GET, "/v2/t/other/manifests/v1".into(), Some(&pull)),
            (M::POST, "/v2/t/app/blobs/uploads/".into(), None),
            (M::POST, "/v2/t/app/blobs/uploads/".into(), Some(&pull)),
            (
                M::POST,
                format!("/v2/t/app/blobs/uploads/?mount={DIGEST}&from=t/base"),
                None,
            ),
            (
                M::DELETE,
                format!("/v2/t/app/manifests/{DIGEST}"),
                Some(&pull),
            ),
        ];
        for (method, path, token) in cases {
            let theirs = answer(&distribution.addr, method.clone(), &path, token).await;
            let mine = answer(&ours.addr, method.clone(), &path, token).await;
            let theirs = theirs.replace(&distribution.addr, "HOST");
            let mine = mine.replace(&ours.addr, "HOST");
            assert_eq!(
                mine,
                theirs,
                "{mode:?} {method} {path} token={}",
                token.is_some()
            );
        }
    }
}
