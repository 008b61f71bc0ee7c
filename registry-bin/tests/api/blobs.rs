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
    // Past the end, inverted (the distribution-spec suite sends `bytes=500-0`), or not a
    // range at all: 416 with the size, in the spec's error body.
    for range in [
        "bytes=10-",
        "bytes=5-0",
        "bytes=500-0",
        "bytes=x-3",
        "bytes=-",
    ] {
        let res = s
            .req(Method::GET, &path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 416, "{range}");
        assert_eq!(res.headers()["content-range"], "bytes */10", "{range}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN", "{range}");
    }
    // Another unit, or several ranges: the whole blob.
    for range in ["items=0-1", "bytes=0-1,4-5"] {
        let res = s
            .req(Method::GET, &path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{range}");
        assert_eq!(res.bytes().await.unwrap(), data, "{range}");
    }
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

/// Blobs of several MiB cross every batch boundary of the push path (hash batches,
/// writer batches, background syncs aside) and of the pull path (read-ahead chunks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_megabyte_blobs_round_trip_in_one_put_and_in_chunks() {
    let s = TestServer::with_auth().await;
    let data: Vec<u8> = (0..(9u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let digest = s.push_blob("big/one", &data).await;
    let res = s
        .req(Method::GET, &format!("/v2/big/one/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap() == data, "pulled bytes differ");
    let res = s
        .req(Method::GET, &format!("/v2/big/one/blobs/{digest}"))
        .header("range", "bytes=1048000-3146000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert!(res.bytes().await.unwrap() == data[1_048_000..=3_146_000]);

    // The same bytes in 3 MiB PATCHes into another repository.
    let res = s
        .req(Method::POST, "/v2/big/two/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mut location = res.headers()["location"].to_str().unwrap().to_owned();
    for (i, chunk) in data.chunks(3 << 20).enumerate() {
        let start = i * (3 << 20);
        let res = s
            .req(Method::PATCH, &location)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        location = res.headers()["location"].to_str().unwrap().to_owned();
    }
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}
