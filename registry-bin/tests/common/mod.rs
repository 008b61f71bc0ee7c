//! Test harness: a real registry on 127.0.0.1 and a free port, over a
//! temporary storage folder, with an htpasswd user.
//!
//! With `TEST_STORAGE=s3` the registry keeps everything in a bucket of its own on the
//! S3 server of `scripts/s3-server` instead (as the binary composes it: no metadata
//! cache), so the same suite runs against object storage. With
//! `TEST_STORAGE=s3-replicas`, three registries (each with its own store, caches and
//! sessions, as three processes would have) share that bucket behind haproxy, which
//! sends every request to the next one: the suite then runs through the load balancer.

#![allow(dead_code)]

use std::sync::Arc;

use registry_auth::{AuthenticatedOnly, CachingAuthenticator, Htpasswd, HtpasswdAuthenticator};
use registry_bin::{serve, Registry, RegistryBuilder, ServeOptions};
use registry_storage::s3::client::S3Client;
use registry_storage::s3::S3Backend;
use registry_storage::{CacheConfig, FsBackend, Store};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;

#[path = "haproxy.rs"]
mod haproxy;

#[path = "../../../registry-storage/tests/s3_env/mod.rs"]
pub mod s3_env;

pub const USER: &str = "alice";
pub const PASS: &str = "s3cret:with colon";
pub const REALM: &str = "Test Realm";

pub struct TestServer {
    pub base: String,
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    /// The bucket when the storage is S3 (`TEST_STORAGE=s3`).
    pub s3: Option<String>,
    pub client: reqwest::Client,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The load balancer in front of the replicas (`TEST_STORAGE=s3-replicas`).
    balancer: Option<haproxy::Haproxy>,
}

impl TestServer {
    /// A registry with basic auth (user `alice`).
    pub async fn with_auth() -> TestServer {
        let hash = bcrypt::hash(PASS, 4).unwrap();
        Self::start(Some(format!("{USER}:{hash}\n"))).await
    }

    /// A registry with auth off.
    pub async fn anonymous() -> TestServer {
        Self::start(None).await
    }

    async fn start(users: Option<String>) -> TestServer {
        Self::custom(users, |b| b, ServeOptions::default()).await
    }

    /// A registry with these htpasswd `users` (and the default authorizer,
    /// unless `configure` sets another), built by `configure`.
    pub async fn with_users(
        users: &[(&str, &str)],
        configure: impl Fn(RegistryBuilder) -> RegistryBuilder,
        options: ServeOptions,
    ) -> TestServer {
        let text: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()))
            .collect();
        Self::custom(Some(text), configure, options).await
    }

    /// Registries with the htpasswd lines `users`, built by `configure`: one, or three
    /// behind haproxy (`TEST_STORAGE=s3-replicas`).
    async fn custom(
        users: Option<String>,
        configure: impl Fn(RegistryBuilder) -> RegistryBuilder,
        options: ServeOptions,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let bucket = if s3_storage() {
            let bucket = s3_env::unique_bucket();
            s3_env::client_in(&bucket, S3_ROOT).await;
            Some(bucket)
        } else {
            None
        };
        let count = if replicas() { 3 } else { 1 };
        let (mut shutdown, mut tasks, mut hosts, mut handles) = (vec![], vec![], vec![], vec![]);
        for _ in 0..count {
            // As the binary composes it: metadata cached on a disk, not on S3.
            let store = match &bucket {
                Some(bucket) => {
                    let client = S3Client::new(s3_env::config(bucket, S3_ROOT)).unwrap();
                    Store::new(Arc::new(S3Backend::new(client).await.unwrap()))
                }
                None => Store::new(Arc::new(FsBackend::new(dir.path())))
                    .with_cache(CacheConfig::default()),
            };
            let mut builder = Registry::builder(store);
            if let Some(users) = &users {
                let users = Htpasswd::parse(users).unwrap();
                builder = builder
                    .authenticator(Arc::new(CachingAuthenticator::new(
                        HtpasswdAuthenticator::new(users, REALM),
                    )))
                    .authorizer(Arc::new(AuthenticatedOnly));
            }
            let registry = configure(builder).build();
            handles.push(registry.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            hosts.push(listener.local_addr().unwrap().to_string());
            let (tx, rx) = oneshot::channel();
            let options = options.clone();
            tasks.push(tokio::spawn(async move {
                serve(listener, registry, options, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            }));
            shutdown.push(tx);
        }
        let balancer = replicas().then(|| haproxy::Haproxy::start(&hosts));
        let base = match &balancer {
            Some(balancer) => format!("http://{}", balancer.host),
            None => format!("http://{}", hosts[0]),
        };
        TestServer {
            base,
            registry: handles.swap_remove(0),
            dir,
            s3: bucket,
            client: reqwest::Client::new(),
            shutdown,
            tasks,
            balancer,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the given credentials (`None`: none at all).
    pub fn req_as(
        &self,
        method: reqwest::Method,
        path: &str,
        creds: Option<(&str, &str)>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match creds {
            Some((user, pass)) => builder.basic_auth(user, Some(pass)),
            None => builder,
        }
    }

    /// A request with the test user's credentials.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth(USER, Some(PASS))
    }

    /// Pushes a blob in one POST and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let res = self
            .req(
                reqwest::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        digest
    }

    /// Pushes a manifest and returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> reqwest::Response {
        self.req(
            reqwest::Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
        )
        .header("content-type", media_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
    }

    /// Pushes config + one layer + an OCI manifest under `tag`; returns the manifest digest and body.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, String) {
        let config = self.push_blob(repo, b"{}").await;
        let layer_digest = self.push_blob(repo, layer).await;
        let manifest = image_manifest(&config, 2, &[(&layer_digest, layer.len())], "");
        let res = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        (sha256(manifest.as_bytes()), manifest)
    }

    /// Every file under the storage root (relative paths), for leftover checks; on S3,
    /// every object in the bucket under the root, hidden ones included.
    pub fn files(&self) -> Vec<String> {
        if let Some(bucket) = &self.s3 {
            return bucket_keys(bucket);
        }
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(
                        path.strip_prefix(root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }
}

/// Whether the suite runs on S3 (`TEST_STORAGE=s3` or `s3-replicas`).
pub fn s3_storage() -> bool {
    std::env::var("TEST_STORAGE").is_ok_and(|v| v == "s3" || v == "s3-replicas")
}

/// Whether the suite runs through a load balancer to three replicas
/// (`TEST_STORAGE=s3-replicas`): limits of one process (throttling, upload slots,
/// timeouts) are then not what a client meets.
pub fn replicas() -> bool {
    std::env::var("TEST_STORAGE").is_ok_and(|v| v == "s3-replicas")
}

/// The key prefix the suite's registries use in their buckets.
const S3_ROOT: &str = "registry";

/// Every key under the root of `bucket`, listed on a thread and runtime of its own with
/// a client of its own (`files` is called from synchronous assertions inside async
/// tests, whose runtime is blocked meanwhile).
fn bucket_keys(bucket: &str) -> Vec<String> {
    let bucket = bucket.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s3 = S3Client::new(s3_env::config(&bucket, S3_ROOT)).unwrap();
        runtime.block_on(async {
            let mut keys = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let page = s3
                    .list("", false, None, next.as_deref(), 1000)
                    .await
                    .unwrap();
                keys.extend(page.objects.into_iter().map(|(k, _, _)| k));
                match page.next {
                    Some(n) => next = Some(n),
                    None => break keys,
                }
            }
        })
    })
    .join()
    .unwrap()
    .into_iter()
    .filter(|k| !k.starts_with("_probe/"))
    .collect()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An image manifest JSON with the given config and layers; `extra` is
/// spliced in after the layers (e.g. `,"subject":{...}`).
pub fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(&str, usize)],
    extra: &str,
) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{s}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{}]{extra}}}"#,
        layers.join(",")
    )
}

/// The error codes of a spec error body.
pub async fn error_codes(res: reqwest::Response) -> Vec<String> {
    let body: serde_json::Value = res.json().await.unwrap();
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}
