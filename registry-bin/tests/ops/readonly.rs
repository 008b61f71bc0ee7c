//! The standard registry's command line and read-only mode, with the real binary:
//! `registry serve <config>` (a positional path), then the same storage served with
//! `storage.maintenance.readonly.enabled`: pulls work, every write is 405 `UNSUPPORTED`.

use reqwest::{Client, Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::harness::{config, registry, workdir, Binary, PASS, USER};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn send(client: &Client, server: &Binary, method: Method, path: &str) -> reqwest::Response {
    client
        .request(method, server.url("http", path))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn positional_config_then_read_only_serves_pulls_and_refuses_writes() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let mut cmd = registry();
    cmd.arg("serve").arg(&config);
    let server = Binary::spawn(dir, cmd);

    let client = Client::new();
    let layer = b"read-only layer".to_vec();
    let (layer_digest, config_digest) = (sha256(&layer), sha256(b"{}"));
    for (bytes, digest) in [(&layer[..], &layer_digest), (&b"{}"[..], &config_digest)] {
        let res = client
            .post(server.url("http", &format!("/v2/ro/blobs/uploads/?digest={digest}")))
            .basic_auth(USER, Some(PASS))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        layer.len()
    );
    let res = client
        .put(server.url("http", "/v2/ro/manifests/v1"))
        .basic_auth(USER, Some(PASS))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // The same storage, read-only (through the environment, as a Deployment would).
    let dir = server.stop();
    let mut cmd = registry();
    cmd.arg("serve")
        .arg(dir.path().join("config.yml"))
        .env("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "true");
    let server = Binary::spawn(dir, cmd);

    let res = send(&client, &server, Method::GET, "/v2/ro/manifests/v1").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), manifest);
    let res = send(
        &client,
        &server,
        Method::GET,
        &format!("/v2/ro/blobs/{layer_digest}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), layer);
    let res = send(&client, &server, Method::GET, "/v2/ro/tags/list").await;
    assert_eq!(res.status(), StatusCode::OK);

    for (method, path) in [
        (Method::POST, "/v2/ro/blobs/uploads/".to_owned()),
        (Method::PUT, "/v2/ro/manifests/v2".to_owned()),
        (Method::DELETE, "/v2/ro/manifests/v1".to_owned()),
        (Method::DELETE, format!("/v2/ro/blobs/{layer_digest}")),
        (
            Method::POST,
            format!("/v2/other/blobs/uploads/?mount={layer_digest}&from=ro"),
        ),
    ] {
        let res = client
            .request(method.clone(), server.url("http", &path))
            .basic_auth(USER, Some(PASS))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNSUPPORTED", "{method} {path}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("read-only"), "{message}");
    }
    // Nothing was written: still one tag, the same manifest.
    let res = send(&client, &server, Method::GET, "/v2/ro/tags/list").await;
    assert_eq!(res.text().await.unwrap(), r#"{"name":"ro","tags":["v1"]}"#);
    let res = send(&client, &server, Method::GET, "/v2/ro/manifests/v1").await;
    assert_eq!(res.status(), StatusCode::OK);
}
