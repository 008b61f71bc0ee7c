//! Abuse limits: failed-login throttling, upload slots, stalled bodies,
//! slow headers, header size, abandoned uploads.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;

// `per_process`: these limits are each process's own (failed logins, upload slots,
// header and idle timeouts, header size). Through a load balancer to several replicas
// (`TEST_STORAGE=s3-replicas`) a client meets the balancer's limits and several
// processes' counters, so those tests run against one process only.
use registry_bin::ServeOptions;
use reqwest::Method;

#[tokio::test]
async fn failed_logins_are_throttled_with_retry_after() {
    if replicas() {
        return; // a limit of one process: see `per_process`
    }
    let s = TestServer::with_users(
        &[(USER, PASS), ("bob", "bob-pw")],
        |b| b.throttle(3, Duration::from_secs(2)),
        ServeOptions::default(),
    )
    .await;
    for _ in 0..3 {
        let res = s
            .req_as(Method::GET, "/v2/", Some((USER, "guess")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    // Now even the right password waits: no bcrypt runs for this user or address.
    let res = s
        .req_as(Method::GET, "/v2/", Some((USER, PASS)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(error_codes(res).await, ["TOOMANYREQUESTS"]);
    // The address is throttled too, whatever the user name.
    let res = s
        .req_as(Method::GET, "/v2/", Some(("bob", "bob-pw")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = s
        .req_as(Method::GET, "/v2/", Some((USER, PASS)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn upload_slots_are_capped_and_stalled_bodies_time_out() {
    if replicas() {
        return; // a limit of one process: see `per_process`
    }
    let s = TestServer::with_users(
        &[(USER, PASS)],
        |b| b.upload_slots(1).body_timeout(Duration::from_secs(1)),
        ServeOptions::default(),
    )
    .await;
    let start = s
        .req(Method::POST, "/v2/slots/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    // A PATCH whose body stalls after a first piece holds the only slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let stalled = tokio::spawn(s.req(Method::PATCH, &location).body(body).send());
    tx.send(Ok(vec![1u8; 100])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = s
        .req(
            Method::POST,
            &format!("/v2/slots/blobs/uploads/?digest={}", sha256(b"x")),
        )
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    // The stalled body is abandoned after the body timeout; the bytes that
    // arrived stay, so the upload can resume.
    let started = Instant::now();
    let res = stalled.await.unwrap().unwrap();
    assert_eq!(res.status(), 400);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error_codes(res).await, ["BLOB_UPLOAD_INVALID"]);
    drop(tx);
    let status = s.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.headers()["range"], "0-99");
    // The slot is free again.
    let res = s
        .req(
            Method::POST,
            &format!("/v2/slots/blobs/uploads/?digest={}", sha256(b"x")),
        )
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

fn raw(addr: &str, bytes: &[u8]) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    if replicas() {
        return; // a limit of one process: see `per_process`
    }
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let s = TestServer::with_users(&[(USER, PASS)], |b| b, options).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        for opening in [&b""[..], b"GET /v2/ HTTP/1.1\r\nHost: x\r\n"] {
            let started = Instant::now();
            let mut stream = raw(&addr, opening);
            let mut buf = Vec::new();
            let _ = stream.read_to_end(&mut buf);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "held for {:?}",
                started.elapsed()
            );
            let text = String::from_utf8_lossy(&buf);
            assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn huge_headers_are_refused() {
    if replicas() {
        return; // a limit of one process: see `per_process`
    }
    let s = TestServer::with_auth().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let request = format!(
            "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2 * 1024 * 1024)
        );
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(request.as_bytes());
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 431") || buf.is_empty(), "{text}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn abandoned_uploads_are_purged_with_their_data() {
    let s = TestServer::with_auth().await;
    let start = s
        .req(Method::POST, "/v2/stale/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let res = s
        .req(Method::PATCH, &location)
        .body(vec![3u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(s.files().iter().any(|f| f.contains("_uploads")));
    let registry = s.registry.clone();
    assert_eq!(
        registry
            .purge_uploads(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(registry.purge_uploads(Duration::ZERO).await.unwrap(), 1);
    let res = s.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        s.files().iter().all(|f| !f.contains("_uploads")),
        "{:?}",
        s.files()
    );
}
