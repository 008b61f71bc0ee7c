//! Regressions found by real clients (tests/clients), reproduced at the
//! protocol level and named after what the client does.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::*;
use reqwest::Method;

/// Sends `head` and `body` the way python-requests does (the whole body,
/// then read the reply) on its own connection; returns the reply's head.
fn send_whole_body_then_read(base: &str, head: String, body: Vec<u8>) -> String {
    let addr = base.trim_start_matches("http://").to_owned();
    let sender = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let sent = stream.write_all(&body);
        let mut reply = Vec::new();
        let read = stream.read_to_end(&mut reply);
        (sent, read, reply)
    });
    let (sent, read, reply) = sender.join().unwrap();
    sent.expect("the registry reset the connection while the client was sending the body");
    read.expect("the registry reset the connection before the client read the reply");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    reply
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// oras-py sends every request, chunk bodies included, without credentials
/// first and only reads the 401 once the whole chunk is sent. The registry
/// must let it read the challenge (not close on unread bytes, which resets
/// the connection and loses the reply) and must leave the session as it was.
#[tokio::test]
async fn oras_py_sends_each_chunk_without_credentials_first() {
    let s = TestServer::with_auth().await;
    let res = s
        .req(Method::POST, "/v2/oras/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    // Larger than the socket buffers, so the client blocks in the write
    // until the registry reads the body.
    let chunk: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: 0-{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        chunk.len() - 1,
        chunk.len()
    );
    let base = s.base.clone();
    let body = chunk.clone();
    let reply = tokio::task::spawn_blocking(move || send_whole_body_then_read(&base, head, body))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains(&format!(
            "www-authenticate: basic realm=\"{}\"",
            REALM.to_ascii_lowercase()
        )),
        "{reply}"
    );

    // The refused chunk changed nothing; the same chunk with credentials lands at 0.
    let status = s.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-0");
    let res = s
        .req(Method::PATCH, &location)
        .header("content-range", format!("0-{}", chunk.len() - 1))
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.headers()["range"],
        format!("0-{}", chunk.len() - 1).as_str()
    );
    let digest = sha256(&chunk);
    let res = s
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}
