//! S3 storage at start-up: `registry config check` and `registry serve` say exactly what
//! is wrong with the bucket (missing, credentials refused, endpoint unreachable, clock skew) and
//! check a good one, against the S3 server `scripts/test` starts.

use std::process::Output;

use crate::config::check;
use crate::harness::*;

#[path = "../../../registry-storage/tests/s3_env/mod.rs"]
mod s3_env;

/// A config file for the bucket at `endpoint` with these keys.
fn s3_config(
    dir: &std::path::Path,
    endpoint: &str,
    bucket: &str,
    secret: &str,
) -> std::path::PathBuf {
    let base = s3_env::config(bucket, "");
    let (access, _, _) = base.credentials.unwrap();
    let text = format!(
        "http:\n  addr: 127.0.0.1:0\nstorage:\n  s3:\n    region: {}\n    regionendpoint: {endpoint}\n    \
         bucket: {bucket}\n    rootdirectory: /r\n    accesskey: {access}\n    secretkey: {secret}\n    \
         encrypt: false\n    v4auth: true\n",
        base.region
    );
    let file = dir.join("config.yml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A config file in `dir` for a new bucket on the test server, with its keys.
async fn new_bucket_config(dir: &std::path::Path) -> std::path::PathBuf {
    let server = s3_env::config("x", "");
    let (_, secret, _) = server.credentials.clone().unwrap();
    let bucket = s3_env::unique_bucket();
    s3_env::client_in(&bucket, "").await;
    s3_config(dir, server.endpoint.as_str(), &bucket, &secret)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn config_check_names_what_is_wrong_with_the_bucket() {
    let dir = workdir();
    let good = s3_env::config("x", "");
    let (_, secret, _) = good.credentials.clone().unwrap();
    let endpoint = good.endpoint.to_string();
    let bucket = s3_env::unique_bucket();
    s3_env::client_in(&bucket, "").await;

    let out = check(&s3_config(dir.path(), &endpoint, &bucket, &secret));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("s3 bucket {bucket}")) && said.contains("answers"),
        "{said}"
    );
    // The standard registry's `encrypt` is accepted with a warning naming it.
    assert!(said.contains("storage.s3.encrypt"), "{said}");

    for (endpoint, bucket, secret, expected) in [
        (
            endpoint.as_str(),
            "no-such-bucket-here",
            secret.as_str(),
            "no-such-bucket-here",
        ),
        (
            endpoint.as_str(),
            bucket.as_str(),
            "wrong-secret",
            "credentials refused",
        ),
        (
            "http://127.0.0.1:9",
            bucket.as_str(),
            secret.as_str(),
            "127.0.0.1:9",
        ),
    ] {
        let out = check(&s3_config(dir.path(), endpoint, bucket, secret));
        assert!(!out.status.success(), "{endpoint} {bucket}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "{expected:?} in {}",
            text(&out)
        );
        // Never a presigned URL (its signature is a credential for minutes).
        assert!(!text(&out).contains("X-Amz-Signature"), "{}", text(&out));
    }

    // `serve` refuses to start on the same grounds, and says so.
    let out = registry()
        .arg("serve")
        .arg(s3_config(
            dir.path(),
            &endpoint,
            "no-such-bucket-here",
            &secret,
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("no-such-bucket-here"), "{}", text(&out));
}

/// A clock two hours ahead (libfaketime's `faketime`, which only this process sees): the
/// S3 server refuses the signatures' time, and `config check` names the clocks.
#[tokio::test]
async fn config_check_names_clock_skew() {
    let dir = workdir();
    let config = new_bucket_config(dir.path()).await;

    let out = std::process::Command::new("faketime")
        .args(["-f", "+2h"])
        .arg(env!("CARGO_BIN_EXE_registry"))
        .args(["config", "check"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .output()
        .expect("faketime (Debian package faketime) runs");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("clock skew"), "{}", text(&out));
    // The same config passes with the right time: the clock was the only fault.
    assert!(check(&config).status.success());
}

/// `storage.redirect` with `disable: false`: a blob GET is a 307 to a presigned URL of
/// the bucket, which serves the bytes (and ranges) without credentials; a HEAD, and a
/// blob the repository does not hold, are still answered by the registry.
#[tokio::test]
async fn storage_redirect_sends_blob_gets_to_the_bucket() {
    use sha2::{Digest as _, Sha256};

    let dir = workdir();
    let config = new_bucket_config(dir.path()).await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("  redirect:\n    disable: false\n");
    std::fs::write(&config, text).unwrap();
    let server = Binary::start(dir, &config, &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let blob = b"bytes the bucket serves itself".to_vec();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
    let pushed = http
        .post(server.url(
            "http",
            &format!("/v2/redirect/app/blobs/uploads/?digest={digest}"),
        ))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);

    let url = server.url("http", &format!("/v2/redirect/app/blobs/{digest}"));
    let got = http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 307);
    assert_eq!(got.headers()["docker-content-digest"], digest.as_str());
    let location = got.headers()["location"].to_str().unwrap().to_owned();
    let endpoint = s3_env::config("x", "").endpoint.to_string();
    let endpoint = endpoint.trim_end_matches('/');
    assert!(location.starts_with(endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let from_bucket = reqwest::get(&location).await.unwrap();
    assert_eq!(from_bucket.status(), 200);
    assert_eq!(from_bucket.bytes().await.unwrap().as_ref(), &blob[..]);
    let ranged = http
        .get(&location)
        .header("range", "bytes=6-8")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), b"the");

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        blob.len().to_string().as_str()
    );
    for path in [
        format!("/v2/redirect/other/blobs/{digest}"),
        format!("/v2/redirect/app/blobs/sha256:{}", "0".repeat(64)),
    ] {
        let missing = http.get(server.url("http", &path)).send().await.unwrap();
        assert_eq!(missing.status(), 404, "{path}");
        let body = missing.text().await.unwrap();
        assert!(body.contains("BLOB_UNKNOWN"), "{body}");
    }
}
