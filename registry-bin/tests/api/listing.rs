//! Tag lists and catalog with pagination.

use crate::common::*;
use reqwest::Method;

#[tokio::test]
async fn tags_are_sorted_and_paginated() {
    let s = TestServer::with_auth().await;
    let config = s.push_blob("pages", b"{}").await;
    let manifest = image_manifest(&config, 2, &[], "");
    for tag in ["b", "a", "C", "d", "a1", "_z"] {
        assert_eq!(
            s.put_manifest("pages", tag, OCI_MANIFEST, &manifest)
                .await
                .status(),
            201
        );
    }
    let res = s
        .req(Method::GET, "/v2/pages/tags/list")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("link"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["tags"],
        serde_json::json!(["C", "_z", "a", "a1", "b", "d"])
    );

    let mut seen = Vec::new();
    let mut path = "/v2/pages/tags/list?n=4".to_owned();
    loop {
        let res = s.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link = res
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let body: serde_json::Value = res.json().await.unwrap();
        seen.extend(
            body["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned()),
        );
        match link {
            Some(link) => {
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                path = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["C", "_z", "a", "a1", "b", "d"]);
    let res = s
        .req(Method::GET, "/v2/pages/tags/list?n=2&last=a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["link"],
        "</v2/pages/tags/list?n=2&last=b>; rel=\"next\""
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["a1", "b"]));
    let res = s
        .req(Method::GET, "/v2/pages/tags/list?n=0")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!([]));
}

#[tokio::test]
async fn tags_of_an_unknown_repository() {
    let s = TestServer::with_auth().await;
    let res = s
        .req(Method::GET, "/v2/never/pushed/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["NAME_UNKNOWN"]);
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let s = TestServer::with_auth().await;
    for repo in ["zeta", "alpha/one", "alpha/two/three", "beta"] {
        s.push_image(repo, "v1", repo.as_bytes()).await;
    }
    let res = s.req(Method::GET, "/v2/_catalog").send().await.unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["repositories"],
        serde_json::json!(["alpha/one", "alpha/two/three", "beta", "zeta"])
    );
    let res = s.req(Method::GET, "/v2/_catalog?n=2").send().await.unwrap();
    assert_eq!(
        res.headers()["link"],
        "</v2/_catalog?n=2&last=alpha%2Ftwo%2Fthree>; rel=\"next\""
    );
    let res = s
        .req(Method::GET, "/v2/_catalog?n=2&last=alpha%2Ftwo%2Fthree")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("link"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["repositories"], serde_json::json!(["beta", "zeta"]));
    let res = s
        .req(Method::GET, "/v2/_catalog?n=-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
