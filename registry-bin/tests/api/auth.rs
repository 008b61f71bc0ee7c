//! Version check and authentication.

use crate::common::*;
use reqwest::Method;

#[tokio::test]
async fn version_check_answers_empty_json() {
    let s = TestServer::with_auth().await;
    let res = s.req(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_a_challenge() {
    let s = TestServer::with_auth().await;
    let no_creds = s.client.get(s.url("/v2/")).send().await.unwrap();
    let wrong = s
        .client
        .get(s.url("/v2/"))
        .basic_auth(USER, Some("nope"))
        .send()
        .await
        .unwrap();
    let unknown = s
        .client
        .get(s.url("/v2/"))
        .basic_auth("mallory", Some(PASS))
        .send()
        .await
        .unwrap();
    let bearer = s
        .client
        .get(s.url("/v2/"))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    for res in [no_creds, wrong, unknown, bearer] {
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"],
            format!("Basic realm=\"{REALM}\"")
        );
        assert_eq!(
            res.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        assert_eq!(error_codes(res).await, ["UNAUTHORIZED"]);
    }
}

#[tokio::test]
async fn every_endpoint_needs_credentials_head_included() {
    let s = TestServer::with_auth().await;
    let (digest, _) = s.push_image("team/app", "v1", b"layer").await;
    for (method, path) in [
        (Method::HEAD, format!("/v2/team/app/manifests/{digest}")),
        (Method::GET, "/v2/team/app/manifests/v1".to_owned()),
        (Method::GET, "/v2/team/app/tags/list".to_owned()),
        (Method::GET, "/v2/_catalog".to_owned()),
        (Method::POST, "/v2/team/app/blobs/uploads/".to_owned()),
        (Method::DELETE, "/v2/team/app/manifests/v1".to_owned()),
        (Method::GET, format!("/v2/team/app/referrers/{digest}")),
    ] {
        let res = s
            .client
            .request(method.clone(), s.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path}");
        assert!(
            res.headers().contains_key("www-authenticate"),
            "{method} {path}"
        );
    }
    // Nothing was deleted by the refused DELETE.
    let res = s
        .req(Method::GET, "/v2/team/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn anonymous_mode_needs_no_credentials() {
    let s = TestServer::anonymous().await;
    let res = s.client.get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn unknown_paths_and_methods_get_spec_errors() {
    let s = TestServer::with_auth().await;
    let res = s
        .req(Method::GET, "/v2/a/nothing/here")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["UNSUPPORTED"]);
    let res = s.req(Method::POST, "/v2/").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(error_codes(res).await, ["UNSUPPORTED"]);
    let res = s
        .req(Method::GET, "/v2/Bad_Name/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["NAME_INVALID"]);
    let res = s
        .req(Method::GET, "/v2/a/../b/tags/list")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
}
