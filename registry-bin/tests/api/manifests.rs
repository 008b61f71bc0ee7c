//! Manifest push, pull, validation, tags and deletes.

use crate::common::*;
use reqwest::Method;

#[tokio::test]
async fn push_and_pull_by_tag_and_digest_returns_exact_bytes() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("img", b"{\"a\":1}").await;
    let layer = s.push_blob("img", b"layer bytes").await;
    // Unusual spacing: the registry must keep the bytes, not re-serialize.
    let manifest = image_manifest(&config, 7, &[(&layer, 11)], "")
        .replace("\"schemaVersion\":2", "\"schemaVersion\" :  2");
    let digest = sha256(manifest.as_bytes());
    let res = s.put_manifest("img", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        res.headers()["location"],
        format!("/v2/img/manifests/{digest}").as_str()
    );

    for reference in ["v1", digest.as_str()] {
        let res = s
            .req(Method::GET, &format!("/v2/img/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(res.text().await.unwrap(), manifest);
        let res = s
            .req(Method::HEAD, &format!("/v2/img/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-length"],
            manifest.len().to_string().as_str()
        );
        assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(res.headers()["content-type"], OCI_MANIFEST);
    }
}

#[tokio::test]
async fn push_by_digest_checks_the_digest() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("dig", b"{}").await;
    let manifest = image_manifest(&config, 2, &[], "");
    let res = s
        .put_manifest("dig", &sha256(b"other"), OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["DIGEST_INVALID"]);
    let digest = sha256(manifest.as_bytes());
    let res = s
        .put_manifest("dig", &digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(res.status(), 201);
    let res = s
        .req(Method::GET, "/v2/dig/tags/list")
        .send()
        .await
        .unwrap();
    let tags: serde_json::Value = res.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));
}

#[tokio::test]
async fn missing_blobs_are_each_reported() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("miss", b"{}").await;
    let (l1, l2) = (sha256(b"l1"), sha256(b"l2"));
    let manifest = image_manifest(&config, 2, &[(&l1, 2), (&l2, 2)], "");
    let res = s.put_manifest("miss", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e["code"] == "MANIFEST_BLOB_UNKNOWN"));
    assert_eq!(errors[0]["detail"]["digest"], l1.as_str());
    assert_eq!(errors[1]["detail"]["digest"], l2.as_str());
    // A blob pushed to another repository does not count.
    let elsewhere = s.push_blob("elsewhere", b"l1").await;
    assert_eq!(elsewhere, l1);
    let res = s.put_manifest("miss", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(error_codes(res).await, ["MANIFEST_BLOB_UNKNOWN"; 2]);
    let res = s
        .req(Method::GET, "/v2/miss/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn invalid_manifests_are_refused() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("inv", b"{}").await;
    let good = image_manifest(&config, 2, &[], "");
    for (content_type, body) in [
        (OCI_MANIFEST, "{not json".to_owned()),
        (OCI_INDEX, good.clone()),
        (DOCKER_MANIFEST, good.clone()),
        ("text/plain", good.clone()),
        (
            OCI_MANIFEST,
            good.replace("\"schemaVersion\":2", "\"schemaVersion\":3"),
        ),
    ] {
        let res = s.put_manifest("inv", "v1", content_type, &body).await;
        assert_eq!(res.status(), 400, "{content_type}: {body}");
        assert_eq!(error_codes(res).await, ["MANIFEST_INVALID"]);
    }
    let huge = format!("{}{}", good, " ".repeat(4 * 1024 * 1024));
    let res = s.put_manifest("inv", "v1", OCI_MANIFEST, &huge).await;
    assert_eq!(res.status(), 413);
    assert_eq!(error_codes(res).await, ["SIZE_INVALID"]);
    let res = s.put_manifest("inv", "bad:tag", OCI_MANIFEST, &good).await;
    assert_eq!(res.status(), 400);
    let res = s.put_manifest("inv", ".bad", OCI_MANIFEST, &good).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn docker_types_and_sparse_indexes() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("dock", b"{}").await;
    let layer = s.push_blob("dock", b"L").await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer}","size":1}}]}}"#
    );
    let res = s
        .put_manifest("dock", "amd64", DOCKER_MANIFEST, &manifest)
        .await;
    assert_eq!(res.status(), 201);
    let child = sha256(manifest.as_bytes());
    let missing_child = sha256(b"pushed later");
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{child}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{DOCKER_MANIFEST}","digest":"{missing_child}","size":5,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let res = s.put_manifest("dock", "latest", DOCKER_LIST, &list).await;
    assert_eq!(res.status(), 201);
    let res = s
        .req(Method::GET, "/v2/dock/manifests/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], DOCKER_LIST);
    assert_eq!(res.text().await.unwrap(), list);
}

#[tokio::test]
async fn several_tags_in_one_put() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("multi", b"{}").await;
    let manifest = image_manifest(&config, 2, &[], "");
    let digest = sha256(manifest.as_bytes());
    let res = s
        .put_manifest(
            "multi",
            &format!("{digest}?tag=v1&tag=v1.0&tag=latest"),
            OCI_MANIFEST,
            &manifest,
        )
        .await;
    assert_eq!(res.status(), 201);
    let tags: Vec<_> = res
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tags, ["v1", "v1.0", "latest"]);
    let res = s
        .req(Method::GET, "/v2/multi/tags/list")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"name": "multi", "tags": ["latest", "v1", "v1.0"]})
    );
}

#[tokio::test]
async fn delete_by_tag_and_by_digest() {
    let s = TestServer::with_auth().await;
    let (digest, _) = s.push_image("del", "v1", b"x").await;
    let res = s
        .req(Method::PUT, &format!("/v2/del/manifests/{digest}?tag=v2"))
        .header("content-type", OCI_MANIFEST)
        .body(
            s.req(Method::GET, "/v2/del/manifests/v1")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let res = s
        .req(Method::DELETE, "/v2/del/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(
        s.req(Method::GET, "/v2/del/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.req(Method::GET, "/v2/del/manifests/v2")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let res = s
        .req(Method::DELETE, &format!("/v2/del/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = s
        .req(Method::GET, &format!("/v2/del/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["MANIFEST_UNKNOWN"]);
    // Tags that pointed at it are gone too.
    assert_eq!(
        s.req(Method::GET, "/v2/del/manifests/v2")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let res = s
        .req(Method::DELETE, &format!("/v2/del/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["MANIFEST_UNKNOWN"]);
}

#[tokio::test]
async fn unknown_manifests() {
    let s = TestServer::with_auth().await;
    for reference in ["nope".to_owned(), sha256(b"nope")] {
        let res = s
            .req(Method::GET, &format!("/v2/ghost/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(error_codes(res).await, ["MANIFEST_UNKNOWN"]);
        let res = s
            .req(Method::HEAD, &format!("/v2/ghost/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
}
