//! Built-in HTTPS: HTTP/2 and HTTP/1.1 by ALPN, HEAD replies without a
//! body over HTTP/2, absolute `Location`s that say `https`, certificate
//! rotation while clients keep pulling, and skopeo over HTTPS with a test CA.

use std::time::{Duration, Instant};

use crate::harness::*;

fn tls_registry() -> (Binary, TestCa) {
    tls_registry_with("")
}

/// A registry with built-in TLS; `extra_http` is spliced into `http:`.
fn tls_registry_with(extra_http: &str) -> (Binary, TestCa) {
    let dir = workdir();
    let ca = TestCa::new("first CA");
    ca.issue(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
    let extra = format!(
        "  tls:\n    certificate: {}\n    key: {}\n{extra_http}",
        dir.path().join("tls.crt").display(),
        dir.path().join("tls.key").display()
    );
    let config = config(dir.path(), &extra);
    (Binary::start(dir, &config, &[]), ca)
}

#[tokio::test]
async fn https_with_http2_and_http1() {
    let (server, ca) = tls_registry();
    let res = ca
        .client(false)
        .get(server.url("https", "/v2/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.text().await.unwrap(), "{}");
    let res = ca
        .client(true)
        .get(server.url("https", "/v2/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(res.status(), 200);
    // Plain HTTP on the TLS port gets nowhere, and an untrusting client fails.
    let plain = reqwest::get(server.url("http", "/v2/")).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
    let other = TestCa::new("someone else");
    assert!(other
        .client(false)
        .get(server.url("https", "/v2/"))
        .send()
        .await
        .is_err());
}

/// A HEAD answer has no body over HTTP/2 either, errors included. hyper
/// drops a HEAD reply's body over HTTP/1.1 but sends it as DATA over
/// HTTP/2, where Go's HTTP/2 transport and curl reset the stream
/// (PROTOCOL_ERROR): the 401 challenge of a first HEAD, or the 404 of a
/// push's "is this blob there yet?", never reaches them.
#[tokio::test]
async fn head_replies_have_no_body_over_http2() {
    let (server, ca) = tls_registry();
    let client = ca.client(false);
    let missing = format!("/v2/h/blobs/sha256:{}", "0".repeat(64));
    for (path, creds, status) in [
        ("/v2/", None, 401),
        ("/v2/h/manifests/v1", None, 401),
        ("/v2/h/manifests/v1", Some(PASS), 404),
        (missing.as_str(), Some(PASS), 404),
        ("/v2/", Some(PASS), 200),
    ] {
        let mut req = client.head(server.url("https", path));
        if let Some(pass) = creds {
            req = req.basic_auth(USER, Some(pass));
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2, "HEAD {path}");
        assert_eq!(res.status(), status, "HEAD {path}");
        if status == 401 {
            assert!(
                res.headers().contains_key("www-authenticate"),
                "HEAD {path}"
            );
        }
        let body = res.bytes().await.unwrap();
        assert!(body.is_empty(), "HEAD {path} sent a body: {body:?}");
    }
}

/// `relativeurls: false` without a proxy: the `Location` of an upload is
/// the `https://` URL the client reached, over HTTP/1.1 (from `Host`) and
/// HTTP/2 (from `:authority`, there is no `Host`).
#[tokio::test]
async fn absolute_locations_say_https() {
    let (server, ca) = tls_registry_with("  relativeurls: false\n");
    for http1_only in [true, false] {
        let res = ca
            .client(http1_only)
            .post(server.url("https", "/v2/p/blobs/uploads/"))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{:?}", res.version());
        let location = res.headers()["location"].to_str().unwrap();
        let expected = server.url("https", "/v2/p/blobs/uploads/");
        assert!(
            location.starts_with(&expected),
            "{:?}: {location}",
            res.version()
        );
    }
}

#[tokio::test]
async fn certificate_rotation_without_restart_or_dropped_connections() {
    let (server, old_ca) = tls_registry();
    let data = vec![9u8; 256 * 1024];
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    let keepalive = old_ca.client(true);
    let push = keepalive
        .post(server.url("https", &format!("/v2/rot/blobs/uploads/?digest={digest}")))
        .basic_auth(USER, Some(PASS))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 201);

    // Rotate to a certificate from a new CA while a client keeps pulling
    // over its established connection.
    let new_ca = TestCa::new("second CA");
    new_ca.issue(
        &server.dir.path().join("tls.crt.new"),
        &server.dir.path().join("tls.key.new"),
    );
    std::fs::rename(
        server.dir.path().join("tls.key.new"),
        server.dir.path().join("tls.key"),
    )
    .unwrap();
    std::fs::rename(
        server.dir.path().join("tls.crt.new"),
        server.dir.path().join("tls.crt"),
    )
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut pulls = 0;
    loop {
        let res = keepalive
            .get(server.url("https", &format!("/v2/rot/blobs/{digest}")))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .expect("the established connection keeps working");
        assert_eq!(res.bytes().await.unwrap(), data);
        pulls += 1;
        let fresh = new_ca
            .client(true)
            .get(server.url("https", "/v2/"))
            .basic_auth(USER, Some(PASS))
            .send()
            .await;
        if fresh.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(pulls >= 1);
    server.wait_log("TLS certificate reloaded", Duration::from_secs(5));
    // New handshakes no longer present the old certificate.
    assert!(old_ca
        .client(true)
        .get(server.url("https", "/v2/"))
        .send()
        .await
        .is_err());
    // And the old keep-alive connection is still in use.
    let res = keepalive
        .get(server.url("https", "/v2/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn skopeo_over_https_with_a_test_ca() {
    let (server, ca) = tls_registry();
    let certs = tempfile::tempdir().unwrap();
    std::fs::write(certs.path().join("ca.crt"), &ca.pem).unwrap();
    let layout = tempfile::tempdir().unwrap();
    let blobs = layout.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data));
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let (layer, layer_size) = put(&vec![1u8; 10_000]);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(
        layout.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.path().join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#),
    )
    .unwrap();
    let creds = format!("{USER}:{PASS}");
    let dest = format!("docker://{}/secure/app:v1", server.addr);
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--dest-creds",
            &creds,
            "--dest-cert-dir",
        ])
        .arg(certs.path())
        .arg(format!("oci:{}:v1", layout.path().display()))
        .arg(&dest)
        .output()
        .expect("skopeo is installed (bash scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &creds, "--cert-dir"])
        .arg(certs.path())
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(String::from_utf8(raw.stdout).unwrap(), manifest);
    // Without the CA, skopeo refuses the certificate.
    let untrusted = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &creds])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}
