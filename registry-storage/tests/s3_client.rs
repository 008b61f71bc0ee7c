//! The S3 client against a real S3 server: a RADOS Gateway started by
//! `scripts/s3-server start DIR`, whose `DIR/env` gives `S3_ENDPOINT`, `S3_ACCESS_KEY`,
//! `S3_SECRET_KEY` and `S3_REGION`. Every test creates its own bucket.

// Test helpers panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use registry_storage::s3::client::{PutCondition, S3Client, MIN_PART_SIZE};
use registry_storage::{ByteStream, StorageError};

mod s3_env;

use s3_env::{client, client_in, config as server_config, unique_bucket};

async fn collect(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .unwrap()
}

fn reason(err: StorageError) -> String {
    match err {
        StorageError::Unavailable { reason, .. } => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// `n` bytes that differ from position to position, so a misplaced range shows.
fn pattern(n: usize) -> Bytes {
    (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

#[tokio::test]
async fn objects_round_trip_under_the_root() {
    let bucket = unique_bucket();
    let s3 = client_in(&bucket, "reg/root").await;
    let body = Bytes::from_static(b"hello, s3");
    let etag = s3
        .put("v1/blobs/a", body.clone(), PutCondition::None)
        .await
        .unwrap()
        .unwrap();
    assert!(!etag.is_empty() && !etag.contains('"'), "{etag}");

    let info = s3.head("v1/blobs/a").await.unwrap().unwrap();
    assert_eq!(info.size, 9);
    assert_eq!(info.etag, etag);
    let age = SystemTime::now().duration_since(info.modified).unwrap();
    assert!(age < Duration::from_secs(60), "{age:?}");

    let (bytes, got) = s3.get("v1/blobs/a").await.unwrap().unwrap();
    assert_eq!(bytes, body);
    assert_eq!(got, info);

    // The key lives under the root directory of the bucket.
    let bare = S3Client::new(server_config(&bucket, "")).unwrap();
    assert_eq!(bare.head("reg/root/v1/blobs/a").await.unwrap(), Some(info));
    assert_eq!(bare.head("v1/blobs/a").await.unwrap(), None);

    s3.delete("v1/blobs/a").await.unwrap();
    assert_eq!(s3.head("v1/blobs/a").await.unwrap(), None);
    assert_eq!(s3.get("v1/blobs/a").await.unwrap(), None);
    s3.delete("v1/blobs/a").await.unwrap();
}

#[tokio::test]
async fn ranges_stream_and_tolerate_the_end() {
    let s3 = client("").await;
    let body = pattern(300_000);
    s3.put("obj", body.clone(), PutCondition::None)
        .await
        .unwrap();
    let range = |start, end| {
        let s3 = s3.clone();
        async move { collect(s3.get_range("obj", start, end).await.unwrap().unwrap()).await }
    };
    assert_eq!(range(0, None).await, body);
    assert_eq!(range(10, Some(20)).await, &body[10..20]);
    assert_eq!(range(299_990, None).await, &body[299_990..]);
    assert_eq!(range(299_990, Some(400_000)).await, &body[299_990..]);
    assert_eq!(range(5, Some(5)).await, b"");
    assert_eq!(range(300_000, None).await, b"");
    assert_eq!(range(400_000, Some(400_010)).await, b"");
    assert!(s3.get_range("absent", 0, None).await.unwrap().is_none());
    assert!(s3.get_range("absent", 3, Some(3)).await.unwrap().is_none());
}

#[tokio::test]
async fn conditional_puts_answer_412_as_none() {
    let s3 = client("").await;
    let first = s3
        .put(
            "tag",
            Bytes::from_static(b"one"),
            PutCondition::IfNoneMatchAny,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s3.put(
            "tag",
            Bytes::from_static(b"two"),
            PutCondition::IfNoneMatchAny
        )
        .await
        .unwrap(),
        None
    );
    let second = s3
        .put(
            "tag",
            Bytes::from_static(b"three"),
            PutCondition::IfMatch(first.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(
        s3.put(
            "tag",
            Bytes::from_static(b"four"),
            PutCondition::IfMatch(first)
        )
        .await
        .unwrap(),
        None
    );
    let (bytes, info) = s3.get("tag").await.unwrap().unwrap();
    assert_eq!(bytes, "three");
    assert_eq!(info.etag, second);
    assert_eq!(
        s3.put(
            "absent",
            Bytes::from_static(b"x"),
            PutCondition::IfMatch(second)
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(s3.head("absent").await.unwrap(), None);
}

#[tokio::test]
async fn conditional_delete_keeps_newer_objects() {
    let s3 = client("r").await;
    assert!(s3.supports_conditional_delete().await.unwrap());
    // The probe cleaned up after itself.
    let page = s3.list("", false, None, None, 100).await.unwrap();
    assert!(page.objects.is_empty(), "{page:?}");

    s3.put("k", Bytes::from_static(b"x"), PutCondition::None)
        .await
        .unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert!(!s3.delete_if_unmodified_since("k", hour_ago).await.unwrap());
    assert!(s3.head("k").await.unwrap().is_some());
    let soon = SystemTime::now() + Duration::from_secs(60);
    assert!(s3.delete_if_unmodified_since("k", soon).await.unwrap());
    assert!(s3.head("k").await.unwrap().is_none());
    // Radosgw answers 204 for an absent object, as to any delete.
    assert!(s3.delete_if_unmodified_since("k", soon).await.unwrap());
}

#[tokio::test]
async fn touch_advances_last_modified() {
    let s3 = client("").await;
    s3.put("state", Bytes::from_static(b"kept"), PutCondition::None)
        .await
        .unwrap();
    let before = s3.head("state").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(s3.touch("state").await.unwrap());
    let after = s3.head("state").await.unwrap().unwrap();
    assert!(after.modified > before.modified, "{before:?} {after:?}");
    assert_eq!(s3.get("state").await.unwrap().unwrap().0, "kept");
    assert!(!s3.touch("absent").await.unwrap());
}

#[tokio::test]
async fn listing_pages_and_groups() {
    let s3 = client("root").await;
    let keys = ["p/a/1", "p/a/2", "p/b/1", "p/c", "p/d", "q/x"];
    for key in keys {
        s3.put(key, Bytes::from(key), PutCondition::None)
            .await
            .unwrap();
    }
    // Pages of two, followed by continuation token.
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = s3
            .list("p/", false, None, token.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.objects.len() <= 2);
        assert!(page.prefixes.is_empty());
        listed.extend(page.objects.iter().map(|(k, size, _)| (k.clone(), *size)));
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    let expected: Vec<(String, u64)> = keys[..5]
        .iter()
        .map(|k| (k.to_string(), k.len() as u64))
        .collect();
    assert_eq!(listed, expected);

    let page = s3
        .list("p/", false, Some("p/b/1"), None, 100)
        .await
        .unwrap();
    let names: Vec<&str> = page.objects.iter().map(|(k, ..)| k.as_str()).collect();
    assert_eq!(names, ["p/c", "p/d"]);
    assert_eq!(page.next, None);

    let page = s3.list("p/", true, None, None, 100).await.unwrap();
    let names: Vec<&str> = page.objects.iter().map(|(k, ..)| k.as_str()).collect();
    assert_eq!(names, ["p/c", "p/d"]);
    assert_eq!(page.prefixes, ["p/a", "p/b"]);

    // LastModified of the listing agrees with HEAD (which has whole seconds only).
    let (_, _, listed_time) = &page.objects[0];
    let head = s3.head("p/c").await.unwrap().unwrap().modified;
    let since_head = listed_time.duration_since(head).unwrap();
    assert!(since_head < Duration::from_secs(1), "{since_head:?}");
}

#[tokio::test]
async fn copies_small_and_by_parts() {
    let s3 = client("").await;
    s3.put("src", Bytes::from_static(b"small"), PutCondition::None)
        .await
        .unwrap();
    s3.copy("src", "dst", 5).await.unwrap();
    assert_eq!(s3.get("dst").await.unwrap().unwrap().0, "small");
    assert_eq!(
        s3.copy("absent", "dst2", 5).await,
        Err(StorageError::NotFound {
            key: "absent".into()
        })
    );

    // Above the (lowered) single-copy limit: two UploadPartCopy parts of 5 MiB and 1 byte.
    let big = pattern(MIN_PART_SIZE as usize + 1);
    s3.put("big", big.clone(), PutCondition::None)
        .await
        .unwrap();
    let by_parts = s3.clone().with_single_copy_limit(1024);
    by_parts
        .copy("big", "big-copy", big.len() as u64)
        .await
        .unwrap();
    let (bytes, info) = s3.get("big-copy").await.unwrap().unwrap();
    assert_eq!(info.size, big.len() as u64);
    assert!(bytes == big, "multipart copy differs");
    // A multipart object's ETag says how many parts it has.
    assert!(info.etag.ends_with("-2"), "{}", info.etag);

    // Onto itself, as `touch` does for objects too large for CopyObject.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    by_parts.copy("big", "big", big.len() as u64).await.unwrap();
    let (bytes, again) = s3.get("big").await.unwrap().unwrap();
    assert!(bytes == big, "multipart copy onto itself differs");
    let before = s3.head("big-copy").await.unwrap().unwrap().modified;
    assert!(again.modified > before, "{again:?}");
}

#[tokio::test]
async fn multipart_uploads_complete_and_abort() {
    let s3 = client("up").await;
    let one = pattern(MIN_PART_SIZE as usize);
    let two = Bytes::from_static(b"tail of the upload");
    let id = s3.create_multipart("blob").await.unwrap();
    let e1 = s3.upload_part("blob", &id, 1, one.clone()).await.unwrap();
    let e2 = s3.upload_part("blob", &id, 2, two.clone()).await.unwrap();
    assert!(!e1.is_empty() && !e1.contains('"'));
    // Not visible before completion.
    assert_eq!(s3.head("blob").await.unwrap(), None);
    s3.complete_multipart("blob", &id, &[(1, e1), (2, e2)])
        .await
        .unwrap();
    let (bytes, info) = s3.get("blob").await.unwrap().unwrap();
    assert_eq!(info.size, (one.len() + two.len()) as u64);
    assert!(bytes[..one.len()] == one[..] && bytes[one.len()..] == two[..]);

    let id = s3.create_multipart("gone").await.unwrap();
    let e1 = s3.upload_part("gone", &id, 1, two.clone()).await.unwrap();
    s3.abort_multipart("gone", &id).await.unwrap();
    s3.abort_multipart("gone", &id).await.unwrap();
    // Radosgw answers the completion of an aborted or unknown upload with a 500
    // ("This multipart completion is already in progress"), not 404 NoSuchUpload.
    for upload in [id.as_str(), "2~no-such-upload"] {
        let parts = [(1, e1.clone())];
        let why = reason(
            s3.complete_multipart("gone", upload, &parts)
                .await
                .unwrap_err(),
        );
        assert!(why.contains("HTTP 500"), "{why}");
    }
    assert_eq!(s3.head("gone").await.unwrap(), None);
}

#[tokio::test]
async fn delete_many_goes_in_batches() {
    let s3 = client("many").await;
    let mut keys: Vec<String> = (0..1003).map(|i| format!("k/{i:04}")).collect();
    futures::stream::iter(keys.clone())
        .map(|k| {
            let s3 = s3.clone();
            async move {
                s3.put(&k, Bytes::from_static(b"x"), PutCondition::None)
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    s3.put("kept", Bytes::from_static(b"x"), PutCondition::None)
        .await
        .unwrap();
    keys.push("k/absent".into());
    s3.delete_many(&keys).await.unwrap();
    let page = s3.list("", false, None, None, 1000).await.unwrap();
    let names: Vec<&str> = page.objects.iter().map(|(k, ..)| k.as_str()).collect();
    assert_eq!(names, ["kept"]);
    s3.delete_many(&[]).await.unwrap();
}

#[tokio::test]
async fn presigned_get_serves_the_object() {
    let s3 = client("pre").await;
    s3.put(
        "blob",
        Bytes::from_static(b"redirected"),
        PutCondition::None,
    )
    .await
    .unwrap();
    let url = s3.presign_get("blob", Duration::from_secs(60));
    let http = reqwest::Client::new();
    let response = http.get(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), "redirected");
    let tampered = url.as_str().replace("/blob?", "/blob2?");
    let response = http.get(tampered).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn check_names_what_is_wrong() {
    let bucket = unique_bucket();
    let s3 = client_in(&bucket, "").await;
    s3.check().await.unwrap();

    let mut cfg = server_config(&bucket, "");
    if let Some((_, secret, _)) = &mut cfg.credentials {
        secret.push('x');
    }
    let wrong_secret = S3Client::new(cfg).unwrap();
    let why = reason(wrong_secret.check().await.unwrap_err());
    assert!(
        why.starts_with("credentials refused: SignatureDoesNotMatch"),
        "{why}"
    );

    let mut cfg = server_config(&bucket, "");
    if let Some((access, ..)) = &mut cfg.credentials {
        access.push('x');
    }
    let wrong_key = S3Client::new(cfg).unwrap();
    let why = reason(wrong_key.check().await.unwrap_err());
    assert!(
        why.starts_with("credentials refused: InvalidAccessKeyId"),
        "{why}"
    );

    let missing = S3Client::new(server_config("no-such-bucket-here", "")).unwrap();
    let why = reason(missing.check().await.unwrap_err());
    assert_eq!(
        why,
        "bucket no-such-bucket-here does not exist (HTTP 404 Not Found)"
    );
    // A missing bucket is not a missing object.
    let why = reason(missing.get("k").await.unwrap_err());
    assert_eq!(
        why,
        "bucket no-such-bucket-here does not exist (HTTP 404 Not Found)"
    );
    // HEAD answers have no body to name the bucket: absent, as the object would be.
    assert_eq!(missing.head("k").await.unwrap(), None);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut cfg = server_config(&bucket, "");
    cfg.endpoint = format!("http://127.0.0.1:{closed}").parse().unwrap();
    let unreachable = S3Client::new(cfg).unwrap();
    let why = reason(unreachable.check().await.unwrap_err());
    assert!(
        why.starts_with(&format!(
            "S3 endpoint http://127.0.0.1:{closed}/ unreachable"
        )),
        "{why}"
    );
    assert!(why.ends_with("(after 7 attempts)"), "{why}");

    // TLS to a plain-HTTP server fails in the handshake.
    let mut cfg = server_config(&bucket, "");
    cfg.endpoint.set_scheme("https").unwrap();
    cfg.ca_bundle = None;
    let plain = cfg.endpoint.to_string();
    let tls = S3Client::new(cfg).unwrap();
    let why = reason(tls.check().await.unwrap_err());
    assert!(
        why.starts_with(&format!("TLS failure talking to {plain}: ")),
        "{why}"
    );
}

#[tokio::test]
async fn config_is_checked_before_any_request() {
    let mut cfg = server_config("b", "");
    cfg.ca_bundle = Some("/nonexistent/ca.pem".into());
    // An http endpoint never reads the bundle.
    S3Client::new(cfg.clone()).unwrap();
    cfg.endpoint = "https://127.0.0.1:1".parse().unwrap();
    let why = reason(S3Client::new(cfg.clone()).unwrap_err());
    assert!(why.starts_with("CA bundle /nonexistent/ca.pem: "), "{why}");
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate").unwrap();
    cfg.ca_bundle = Some(not_pem.path().into());
    let why = reason(S3Client::new(cfg.clone()).unwrap_err());
    assert!(why.ends_with("no PEM certificate in the file"), "{why}");
    // The machine's bundle (AWS_CA_BUNDLE), when set, loads for an https endpoint.
    cfg.ca_bundle = std::env::var_os("AWS_CA_BUNDLE").map(Into::into);
    S3Client::new(cfg).unwrap();

    let mut cfg = server_config("b", "");
    cfg.part_size = MIN_PART_SIZE - 1;
    assert!(reason(S3Client::new(cfg).unwrap_err()).contains("chunksize"));
    let cfg = server_config("b", "/root");
    assert!(reason(S3Client::new(cfg).unwrap_err()).contains("rootdirectory"));
}
