//! The S3 server the tests use: a RADOS Gateway started by `scripts/s3-server start DIR`
//! (as `scripts/test` does), whose `DIR/env` gives `S3_ENDPOINT`, `S3_ACCESS_KEY`,
//! `S3_SECRET_KEY` and `S3_REGION`. Every test makes a bucket of its own.

#![allow(dead_code)]

use registry_storage::s3::client::{S3Client, S3Config, MIN_PART_SIZE};

/// The server's settings for `bucket` under `root`; fails the test when there is none.
pub fn config(bucket: &str, root: &str) -> S3Config {
    config_with(
        |name| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: these tests need an S3 server. Start one with \
                     `scripts/s3-server start /tmp/s3` and load `/tmp/s3/env` \
                     (`set -a; . /tmp/s3/env; set +a`); `scripts/test` does both"
                )
            })
        },
        bucket,
        root,
    )
}

/// The settings of the server whose `scripts/s3-server` env file is `env_file`.
pub fn config_from_file(env_file: &std::path::Path, bucket: &str, root: &str) -> S3Config {
    let text = std::fs::read_to_string(env_file).expect("the S3 server's env file");
    let vars: std::collections::HashMap<&str, &str> =
        text.lines().filter_map(|l| l.split_once('=')).collect();
    config_with(|name| vars[name].to_owned(), bucket, root)
}

/// The settings for `bucket` under `root`, the server's variables read by `var`.
fn config_with(var: impl Fn(&str) -> String, bucket: &str, root: &str) -> S3Config {
    S3Config {
        endpoint: var("S3_ENDPOINT").parse().expect("S3_ENDPOINT is a URL"),
        region: var("S3_REGION"),
        bucket: bucket.into(),
        root: root.into(),
        credentials: Some((var("S3_ACCESS_KEY"), var("S3_SECRET_KEY"), None)),
        path_style: true,
        skip_verify: false,
        ca_bundle: std::env::var_os("AWS_CA_BUNDLE").map(Into::into),
        part_size: MIN_PART_SIZE,
    }
}

/// A bucket name no other test uses.
pub fn unique_bucket() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A client on `bucket`, created, under `root`.
pub async fn client_in(bucket: &str, root: &str) -> S3Client {
    client_for(config(bucket, root)).await
}

/// A client for `config`, its bucket created.
pub async fn client_for(config: S3Config) -> S3Client {
    let client = S3Client::new(config).expect("client");
    client.create_bucket().await.expect("create the bucket");
    client
}

/// A client on a new bucket of its own, under `root`.
pub async fn client(root: &str) -> S3Client {
    client_in(&unique_bucket(), root).await
}
