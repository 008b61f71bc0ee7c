//! Reloads and graceful shutdown.

use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test]
async fn htpasswd_is_reloaded_without_restart() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let server = Binary::start(dir, &config, &[]);
    let client = reqwest::Client::new();
    let status = |user: &'static str, pass: &'static str| {
        let req = client
            .get(server.url("http", "/v2/"))
            .basic_auth(user, Some(pass));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(USER, PASS).await, 200);
    assert_eq!(status("newcomer", "welcome").await, 401);
    write_htpasswd(
        &server.dir.path().join("htpasswd"),
        &[("newcomer", "welcome")],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while status("newcomer", "welcome").await != 200 {
        assert!(
            Instant::now() < deadline,
            "the new htpasswd was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status(USER, PASS).await,
        401,
        "removed users are locked out"
    );
    // A broken file keeps the last good users.
    std::fs::write(
        server.dir.path().join("htpasswd"),
        "garbage without colon\n",
    )
    .unwrap();
    server.wait_log("cannot be loaded", Duration::from_secs(10));
    assert_eq!(status("newcomer", "welcome").await, 200);
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_exits_zero() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let mut server = Binary::start(dir, &config, &[]);
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("http", "/v2/slow/blobs/uploads/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();

    // A PATCH whose body trickles in over ~1.5 s.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let patch = tokio::spawn(
        client
            .patch(server.url("http", &location))
            .basic_auth(USER, Some(PASS))
            .body(body)
            .send(),
    );
    tx.send(Ok(vec![1u8; 1000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    server.wait_log("shutting down", Duration::from_secs(5));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(Ok(vec![2u8; 1000])).await.unwrap();
    }
    drop(tx);
    let res = patch.await.unwrap().unwrap();
    assert_eq!(res.status(), 202, "the request in flight completes");
    assert_eq!(res.headers()["range"], "0-4999");
    // New connections are refused once draining starts.
    assert!(client.get(server.url("http", "/v2/")).send().await.is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the registry did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// A `Stream` over an mpsc receiver (no extra crate needed).
fn tokio_stream<T>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[tokio::test]
async fn an_upload_cut_by_a_restart_resumes() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let server = Binary::start(dir, &config, &[]);
    let client = reqwest::Client::new();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    let res = client
        .post(server.url("http", "/v2/resume/blobs/uploads/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let res = client
        .patch(server.url("http", &location))
        .basic_auth(USER, Some(PASS))
        .header("content-range", "0-99999")
        .body(data[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let server = server.restart();
    // The upload is still there, at the offset it had, and its hash is
    // rebuilt from the stored bytes.
    let res = client
        .get(server.url("http", &location))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["range"], "0-99999");
    let res = client
        .patch(server.url("http", &location))
        .basic_auth(USER, Some(PASS))
        .header("content-range", "100000-299999")
        .body(data[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = client
        .put(server.url("http", &format!("{location}?digest={digest}")))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .get(server.url("http", &format!("/v2/resume/blobs/{digest}")))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap(), data);
}
