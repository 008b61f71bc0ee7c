//! The registry as seen over plain requests with basic auth (reqwest, over
//! HTTPS trusting only the endpoint's test CA), to check what a client
//! stored: manifests byte for byte, every blob by digest. Independent of
//! every client under test.

use super::{image::OCI_INDEX, image::OCI_MANIFEST, Blob, Endpoint, Image, Index, PASS, USER};

/// A response read whole.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// `GET <path>` with credentials and the OCI and Docker manifest types
/// accepted. Blocking, on a thread of its own, so async tests may call it.
pub fn get(endpoint: &Endpoint, path: &str) -> Raw {
    request(endpoint, "GET", path, &[], Vec::new())
}

/// `<method> <path>` with credentials, the manifest types accepted, more
/// `headers` and `body`; as [`get`] does it.
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Raw {
    let url = format!("{}{path}", endpoint.base_url());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    std::thread::scope(|scope| {
        scope
            .spawn(|| fetch(endpoint, method, &url, headers, body))
            .join()
            .unwrap()
    })
}

fn fetch(
    endpoint: &Endpoint,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Raw {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = match &endpoint.ca {
            None => reqwest::Client::new(),
            Some(ca) => crate::test_ca::https_client(&std::fs::read(ca).unwrap(), false),
        };
        let send = |token: Option<String>| {
            let mut req = client.request(method.clone(), url);
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            req = match token {
                None => req.basic_auth(USER, Some(PASS)),
                Some(token) => req.bearer_auth(token),
            };
            req.body(body.clone())
                .header(
                    "accept",
                    format!(
                        "{OCI_MANIFEST}, {OCI_INDEX}, \
                         application/vnd.docker.distribution.manifest.v2+json, \
                         application/vnd.docker.distribution.manifest.list.v2+json"
                    ),
                )
                .send()
        };
        let mut res = send(None)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        if let Some(token) = bearer_token(&client, &res).await {
            // Token auth: what a client does with a Bearer challenge.
            res = send(Some(token))
                .await
                .unwrap_or_else(|e| panic!("{method} {url} with a token: {e}"));
        }
        Raw {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.bytes().await.unwrap().to_vec(),
        }
    })
}

/// For a 401 with a `Bearer` challenge, a token from its realm for its
/// service and scope, asked for as [`USER`].
async fn bearer_token(client: &reqwest::Client, res: &reqwest::Response) -> Option<String> {
    if res.status() != 401 {
        return None;
    }
    let challenge = res.headers().get("www-authenticate")?.to_str().ok()?;
    let params = challenge.strip_prefix("Bearer ")?;
    let param = |name: &str| {
        let start = params.find(&format!("{name}=\""))? + name.len() + 2;
        let len = params[start..].find('"')?;
        Some(params[start..start + len].to_owned())
    };
    let mut query = vec![("service", param("service")?)];
    query.extend(param("scope").map(|s| ("scope", s)));
    let answer: serde_json::Value = client
        .get(param("realm")?)
        .query(&query)
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer["token"].as_str().map(str::to_owned)
}

/// The manifest `repo:reference` as served (status must be 200).
pub fn manifest(endpoint: &Endpoint, repo: &str, reference: &str, step: &str) -> Raw {
    let res = get(endpoint, &format!("/v2/{repo}/manifests/{reference}"));
    assert_eq!(res.status, 200, "{step}: GET manifest {repo}:{reference}");
    let digest = super::sha256_digest(&res.body);
    assert_eq!(
        res.header("docker-content-digest"),
        digest,
        "{step}: Docker-Content-Digest of {repo}:{reference}"
    );
    res
}

/// Asserts `repo:reference` serves exactly `expected`'s bytes and type.
pub fn assert_manifest(
    endpoint: &Endpoint,
    repo: &str,
    reference: &str,
    expected: &Blob,
    step: &str,
) {
    let res = manifest(endpoint, repo, reference, step);
    assert!(
        res.body == expected.data,
        "{step}: manifest {repo}:{reference} is not the bytes pushed:\n{}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(
        res.header("content-type"),
        expected.media_type,
        "{step}: Content-Type"
    );
}

/// Asserts every blob is served from `repo` with exactly its bytes.
pub fn assert_blobs(endpoint: &Endpoint, repo: &str, blobs: &[&Blob], step: &str) {
    for blob in blobs {
        let res = get(endpoint, &format!("/v2/{repo}/blobs/{}", blob.digest));
        assert_eq!(
            res.status, 200,
            "{step}: GET blob {} in {repo}",
            blob.digest
        );
        assert!(
            res.body == blob.data,
            "{step}: blob {} in {repo} differs",
            blob.digest
        );
    }
}

/// Asserts the registry holds `image` in `repo` under `reference`, byte for byte.
pub fn assert_image(endpoint: &Endpoint, repo: &str, reference: &str, image: &Image, step: &str) {
    assert_manifest(endpoint, repo, reference, &image.manifest, step);
    assert_blobs(endpoint, repo, &image.blobs(), step);
}

/// Asserts the registry holds `index` (and all below it) under `reference`.
pub fn assert_index(endpoint: &Endpoint, repo: &str, reference: &str, index: &Index, step: &str) {
    assert_manifest(endpoint, repo, reference, &index.index, step);
    for image in &index.images {
        assert_image(endpoint, repo, &image.manifest.digest, image, step);
    }
}

/// Checks that every blob a served manifest references is served and
/// matches its digest; returns the manifest JSON. For images a client
/// re-encoded (podman and buildah compress layers), where there are no
/// source bytes to compare with.
pub fn assert_consistent(
    endpoint: &Endpoint,
    repo: &str,
    reference: &str,
    step: &str,
) -> serde_json::Value {
    let manifest = manifest(endpoint, repo, reference, step).json();
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_owned());
    }
    for digest in digests {
        let res = get(endpoint, &format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(res.status, 200, "{step}: GET blob {digest}");
        assert_eq!(
            super::sha256_digest(&res.body),
            digest,
            "{step}: blob {digest}"
        );
    }
    manifest
}

/// The tag list of `repo`, as served.
pub fn tags(endpoint: &Endpoint, repo: &str) -> Vec<String> {
    let res = get(endpoint, &format!("/v2/{repo}/tags/list"));
    assert_eq!(res.status, 200, "GET tags of {repo}");
    serde_json::from_value(res.json()["tags"].clone()).unwrap()
}
