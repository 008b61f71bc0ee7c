//! Upload flows: monolithic, POST+PUT, chunked, resumable, mounts, errors.

use crate::common::*;
use reqwest::Method;

async fn start(s: &TestServer, repo: &str) -> String {
    let res = s
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["range"], "0-0");
    assert_eq!(res.headers()["content-length"], "0");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let uuid = res.headers()["docker-upload-uuid"].to_str().unwrap();
    assert_eq!(location, format!("/v2/{repo}/blobs/uploads/{uuid}"));
    location
}

async fn head_blob(s: &TestServer, repo: &str, digest: &str) -> reqwest::StatusCode {
    s.req(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn post_then_put_with_the_whole_body() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "app").await;
    let data = vec![7u8; 300_000];
    let digest = sha256(&data);
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        format!("/v2/app/blobs/{digest}").as_str()
    );
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    let got = s
        .req(Method::GET, &format!("/v2/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), data);
    // The session is gone once completed.
    let res = s.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_codes(res).await, ["BLOB_UPLOAD_UNKNOWN"]);
}

#[tokio::test]
async fn chunked_upload_with_content_range_and_status() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "chunky").await;
    let data: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = sha256(&data);
    let mut offset = 0;
    for chunk in data.chunks(10_000) {
        let end = offset + chunk.len() - 1;
        let res = s
            .req(Method::PATCH, &location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{end}"))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        assert_eq!(res.headers()["range"], format!("0-{end}").as_str());
        assert_eq!(res.headers()["location"], location.as_str());
        offset += chunk.len();
        let status = s.req(Method::GET, &location).send().await.unwrap();
        assert_eq!(status.status(), 204);
        assert_eq!(status.headers()["range"], format!("0-{end}").as_str());
    }
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let got = s
        .req(Method::GET, &format!("/v2/chunky/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn streamed_patch_without_content_range_or_length() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "stream").await;
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..50).map(|i| Ok(vec![i as u8; 4096])).collect();
    let data: Vec<u8> = parts
        .iter()
        .flat_map(|p| p.as_ref().unwrap().clone())
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(parts));
    let res = s
        .req(Method::PATCH, &location)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.headers()["range"],
        format!("0-{}", data.len() - 1).as_str()
    );
    let digest = sha256(&data);
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(head_blob(&s, "stream", &digest).await, 200);
}

#[tokio::test]
async fn last_chunk_in_the_put() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "lastchunk").await;
    let res = s
        .req(Method::PATCH, &location)
        .header("content-range", "0-4")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let digest = sha256(b"hello world");
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", "5-10")
        .body(" world")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let got = s
        .req(Method::GET, &format!("/v2/lastchunk/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), &b"hello world"[..]);
}

#[tokio::test]
async fn out_of_order_chunk_is_416_and_changes_nothing() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "order").await;
    let res = s
        .req(Method::PATCH, &location)
        .header("content-range", "0-2")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    for range in ["0-2", "5-7"] {
        let res = s
            .req(Method::PATCH, &location)
            .header("content-range", range)
            .body("xyz")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 416, "{range}");
        assert_eq!(res.headers()["range"], "0-2");
        assert_eq!(res.headers()["location"], location.as_str());
        assert_eq!(error_codes(res).await, ["BLOB_UPLOAD_INVALID"]);
    }
    let res = s
        .req(Method::PATCH, &location)
        .header("content-range", "3-5")
        .body("def")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let digest = sha256(b"abcdef");
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn wrong_digest_is_refused_and_nothing_is_stored() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "bad").await;
    let wrong = sha256(b"something else");
    let res = s
        .req(Method::PUT, &format!("{location}?digest={wrong}"))
        .body("actual bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["DIGEST_INVALID"]);
    assert_eq!(head_blob(&s, "bad", &wrong).await, 404);
    assert_eq!(head_blob(&s, "bad", &sha256(b"actual bytes")).await, 404);
    // One-shot POST with a wrong digest too.
    let res = s
        .req(
            Method::POST,
            &format!("/v2/bad/blobs/uploads/?digest={wrong}"),
        )
        .body("other")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["DIGEST_INVALID"]);
    assert!(
        s.files().iter().all(|f| !f.contains("/blobs/")),
        "{:?}",
        s.files()
    );
    assert!(
        s.files().iter().all(|f| !f.contains("_uploads")),
        "{:?}",
        s.files()
    );
}

#[tokio::test]
async fn unknown_upload_and_cancel() {
    let s = TestServer::with_auth().await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let res = s
            .req(method.clone(), "/v2/x/blobs/uploads/no-such-upload")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method}");
        assert_eq!(error_codes(res).await, ["BLOB_UPLOAD_UNKNOWN"]);
    }
    let location = start(&s, "x").await;
    // An upload belongs to its repository.
    let other = location.replace("/v2/x/", "/v2/y/");
    assert_eq!(
        s.req(Method::GET, &other).send().await.unwrap().status(),
        404
    );
    let res = s.req(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        s.req(Method::GET, &location).send().await.unwrap().status(),
        404
    );
    assert!(
        s.files().iter().all(|f| !f.contains("_uploads")),
        "{:?}",
        s.files()
    );
}

#[tokio::test]
async fn unauthenticated_patch_does_not_touch_the_session() {
    let s = TestServer::with_auth().await;
    let location = start(&s, "guard").await;
    let res = s
        .client
        .patch(s.url(&location))
        .body("intruder")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let status = s.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.headers()["range"], "0-0");
    let digest = sha256(b"real");
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .body("real")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn sha512_uploads() {
    let s = TestServer::with_auth().await;
    let data = b"sha512 content";
    let digest = format!(
        "sha512:{}",
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(data))
    );
    let res = s
        .req(
            Method::POST,
            "/v2/five12/blobs/uploads/?digest-algorithm=sha512",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    let got = s
        .req(Method::GET, &format!("/v2/five12/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), &data[..]);
    // On object storage the stored hash state is the session's own algorithm's, and an
    // upload in progress cannot be read to hash it again with another.
    if !s3_storage() {
        a_sha256_session_completes_as_sha512(&s, &data[..], &digest).await;
    }
    let res = s
        .req(
            Method::POST,
            "/v2/five12/blobs/uploads/?digest-algorithm=md5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// A session started as sha256 still completes with a sha512 digest.
async fn a_sha256_session_completes_as_sha512(s: &TestServer, data: &[u8], digest: &str) {
    let location = start(s, "five12").await;
    let res = s
        .req(Method::PATCH, &location)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn cross_repository_mounts() {
    let s = TestServer::with_auth().await;
    let digest = s.push_blob("source/repo", b"shared layer").await;
    let res = s
        .req(
            Method::POST,
            &format!("/v2/target/blobs/uploads/?mount={digest}&from=source/repo"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        format!("/v2/target/blobs/{digest}").as_str()
    );
    assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(head_blob(&s, "target", &digest).await, 200);

    // Without `from`: the registry finds a repository that has it.
    let res = s
        .req(
            Method::POST,
            &format!("/v2/auto/blobs/uploads/?mount={digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(head_blob(&s, "auto", &digest).await, 200);

    // Not in the source: a normal upload session starts instead.
    let missing = sha256(b"nowhere");
    let res = s
        .req(
            Method::POST,
            &format!("/v2/target/blobs/uploads/?mount={missing}&from=source/repo"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/v2/target/blobs/uploads/"));
}

#[tokio::test]
async fn two_clients_pushing_the_same_blob_both_succeed() {
    let s = TestServer::with_auth().await;
    let data = vec![42u8; 1 << 20];
    let digest = sha256(&data);
    let pushes = (0..6).map(|i| {
        let (s, data, digest) = (&s, data.clone(), digest.clone());
        async move {
            let repo = if i % 2 == 0 { "same" } else { "other" };
            let location = start(s, repo).await;
            s.req(Method::PUT, &format!("{location}?digest={digest}"))
                .body(data)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(pushes).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let got = s
        .req(Method::GET, &format!("/v2/same/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), data);
    assert!(
        s.files().iter().all(|f| !f.contains(".tmp")),
        "{:?}",
        s.files()
    );
}
