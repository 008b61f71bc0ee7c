//! Health, readiness and metrics.

use std::time::Duration;

use crate::harness::*;

#[tokio::test]
async fn health_and_readiness_need_no_credentials() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let server = Binary::start(dir, &config, &[]);
    let client = reqwest::Client::new();
    let res = client
        .get(server.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .get(server.url("http", "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Nothing else is reachable without credentials.
    for path in ["/v2/", "/metrics", "/v2/_catalog", "/healthz/../v2/"] {
        let res = client.get(server.url("http", path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    // Storage gone (the root replaced by a file): not ready, still alive.
    let root = server.dir.path().join("data");
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, "not a directory").unwrap();
    let res = client
        .get(server.url("http", "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let res = client
        .get(server.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_after_known_traffic() {
    let dir = workdir();
    let config = config(dir.path(), "  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n      path: /metrics\n");
    let server = Binary::start(dir, &config, &[]);
    let metrics_addr = server.metrics_addr.clone().expect("metrics listener");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let res = client
            .get(server.url("http", "/v2/"))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        client
            .get(server.url("http", "/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong = client
        .get(server.url("http", "/v2/"))
        .basic_auth(USER, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let data = vec![5u8; 12_345];
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    let res = client
        .post(server.url("http", &format!("/v2/m/blobs/uploads/?digest={digest}")))
        .basic_auth(USER, Some(PASS))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .get(server.url("http", &format!("/v2/m/blobs/{digest}")))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), data.len());
    let started = client
        .post(server.url("http", "/v2/m/blobs/uploads/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);

    // The separate listener needs no credentials.
    let text = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &text,
            "registry_http_requests_total{route=\"base\",method=\"GET\",status=\"200\"}"
        ),
        3.0
    );
    // No credentials: anonymous, refused by authorization on the route;
    // wrong credentials: refused before routing.
    let refused = |route: &str| {
        format!("registry_http_requests_total{{route=\"{route}\",method=\"GET\",status=\"401\"}}")
    };
    assert_eq!(metric(&text, &refused("base")), 1.0);
    assert_eq!(metric(&text, &refused("unauthenticated")), 1.0);
    assert_eq!(
        metric(
            &text,
            "registry_http_requests_total{route=\"upload_start\",method=\"POST\",status=\"201\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "registry_http_requests_total{route=\"blob_get\",method=\"GET\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "registry_auth_failures_total{reason=\"missing\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "registry_auth_failures_total{reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "registry_http_received_bytes_total"),
        data.len() as f64
    );
    assert!(metric(&text, "registry_http_sent_bytes_total") >= data.len() as f64);
    assert_eq!(metric(&text, "registry_upload_duration_seconds_count"), 1.0);
    assert_eq!(
        metric(
            &text,
            "registry_http_request_duration_seconds_count{route=\"base\"}"
        ),
        4.0
    );
    assert_eq!(metric(&text, "registry_uploads_in_progress"), 1.0);
    assert_eq!(metric(&text, "registry_storage_errors_total"), 0.0);
    // On the main port, metrics need credentials.
    let res = client
        .get(server.url("http", "/metrics"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("registry_http_requests_total"));
    // Request log lines carry route, repository, status, bytes and user.
    let line = server.wait_log("route=blob_get", Duration::from_secs(5));
    for field in [
        "repository=m",
        "status=200",
        "user=ops",
        &format!("bytes_out={}", data.len()),
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

#[tokio::test]
async fn json_logs_carry_one_object_per_request() {
    let dir = workdir();
    let config = config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("  level: info\n", "  level: info\n  formatter: json\n");
    std::fs::write(&config, text).unwrap();
    let server = Binary::start(dir, &config, &[]);
    let client = reqwest::Client::new();
    let res = client
        .get(server.url("http", "/v2/nothing/here/tags/list"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let line = server.wait_log("tags_list", Duration::from_secs(5));
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["message"], "request");
    assert_eq!(entry["route"], "tags_list");
    assert_eq!(entry["repository"], "nothing/here");
    assert_eq!(entry["status"], 404);
    assert_eq!(entry["user"], USER);
    assert_eq!(entry["method"], "GET");
}
