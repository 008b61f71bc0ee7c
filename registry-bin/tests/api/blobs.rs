//! Blob HEAD, GET, ranges and DELETE.

use crate::common::*;
use reqwest::Method;

#[tokio::test]
async fn head_and_get_return_the_bytes_and_headers() {
    let s = TestServer::with_auth().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = s.push_blob("a/b", &data).await;

    let res = s
        .req(Method::HEAD, &format!("/v2/a/b/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "100000");
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(res.bytes().await.unwrap().len(), 0);

    let res = s
        .req(Method::GET, &format!("/v2/a/b/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn ranges_give_206_and_416() {
    let s = TestServer::with_auth().await;
    let data = b"0123456789".to_vec();
    let digest = s.push_blob("r", &data).await;
    let path = format!("/v2/r/blobs/{digest}");
    for (range, want, content_range) in [
        ("bytes=2-5", &b"2345"[..], "bytes 2-5/10"),
        ("bytes=7-", &b"789"[..], "bytes 7-9/10"),
        ("bytes=-3", &b"789"[..], "bytes 7-9/10"),
        ("bytes=8-100", &b"89"[..], "bytes 8-9/10"),
    ] {
        let res = s
            .req(Method::GET, &path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(res.headers()["content-range"], content_range);
        assert_eq!(
            res.headers()["content-length"],
            want.len().to_string().as_str()
        );
        assert_eq!(res.bytes().await.unwrap(), want);
    }
    let res = s
        .req(Method::GET, &path)
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], "bytes */10");
}

#[tokio::test]
async fn blobs_are_visible_only_where_pushed_or_mounted() {
    let s = TestServer::with_auth().await;
    let digest = s.push_blob("one", b"private").await;
    let res = s
        .req(Method::HEAD, &format!("/v2/two/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = s
        .req(Method::GET, &format!("/v2/two/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["BLOB_UNKNOWN"]);
}

#[tokio::test]
async fn unknown_and_invalid_digests() {
    let s = TestServer::with_auth().await;
    let res = s
        .req(
            Method::GET,
            &format!("/v2/a/blobs/{}", sha256(b"never pushed")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["BLOB_UNKNOWN"]);
    let res = s
        .req(Method::GET, "/v2/a/blobs/sha256:1234")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["DIGEST_INVALID"]);
}

#[tokio::test]
async fn delete_removes_the_blob_from_the_repository() {
    let s = TestServer::with_auth().await;
    let digest = s.push_blob("d", b"bye").await;
    let res = s
        .req(Method::DELETE, &format!("/v2/d/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = s
        .req(Method::HEAD, &format!("/v2/d/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = s
        .req(Method::DELETE, &format!("/v2/d/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["BLOB_UNKNOWN"]);
}
