//! A registry client for load tests: pushes (monolithic, chunked, manifests),
//! pulls, deletes and listings over reqwest, returning errors instead of
//! panicking, so a test can tell a dead server (transport error) from a
//! wrong answer (unexpected status).
//!
//! Included with `#[path = "common/client.rs"] mod client;`.

#![allow(dead_code)]

use std::time::Duration;

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No complete response: connection refused, reset, timed out.
    Transport(String),
    /// A response with a status the call does not accept.
    Status {
        /// What was asked.
        call: String,
        /// The status received.
        status: u16,
        /// The body received.
        body: String,
    },
}

impl Failure {
    /// Whether the server answered (wrongly), as opposed to not answering.
    pub fn is_status(&self) -> bool {
        matches!(self, Failure::Status { .. })
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) => write!(f, "transport: {e}"),
            Failure::Status { call, status, body } => write!(f, "{call}: {status} {body}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An image manifest with the given config and layers `(digest, size)`.
pub fn image_manifest(config: (&str, usize), layers: &[(String, usize)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| {
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{s}}}"#)
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.0,
        config.1,
        layers.join(",")
    )
}

/// A client of one registry base URL (`http://127.0.0.1:port`).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

fn transport(e: reqwest::Error) -> Failure {
    Failure::Transport(e.to_string())
}

async fn expect(call: &str, res: reqwest::Response, ok: &[u16]) -> Result<reqwest::Response> {
    let status = res.status().as_u16();
    if ok.contains(&status) {
        return Ok(res);
    }
    let body = res.text().await.map_err(transport)?;
    Err(Failure::Status {
        call: call.to_owned(),
        status,
        body,
    })
}

impl Client {
    /// A client with a per-request timeout, so nothing hangs a test.
    pub fn new(base: &str, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(4)
            .build()
            .expect("a reqwest client");
        Client {
            http,
            base: base.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST ?digest=` with the whole blob; returns its digest.
    pub async fn push_monolithic(&self, repo: &str, data: &[u8]) -> Result<String> {
        let digest = sha256(data);
        let res = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .map_err(transport)?;
        let res = expect("monolithic push", res, &[201]).await?;
        check_digest_header(&res, &digest)?;
        Ok(digest)
    }

    /// `POST`, `PATCH` chunks of `chunk` bytes with `Content-Range`, then
    /// `PUT ?digest=` (carrying the last chunk when `last_in_put`).
    pub async fn push_chunked(
        &self,
        repo: &str,
        data: &[u8],
        chunk: usize,
        last_in_put: bool,
    ) -> Result<String> {
        let digest = sha256(data);
        let res = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .map_err(transport)?;
        let mut location = location(&expect("upload start", res, &[202]).await?)?;
        let chunks: Vec<&[u8]> = data.chunks(chunk.max(1)).collect();
        let (patched, last): (&[&[u8]], &[u8]) = match chunks.split_last() {
            Some((last, rest)) if last_in_put => (rest, last),
            _ => (&chunks[..], &[]),
        };
        let mut offset = 0usize;
        for part in patched {
            let end = offset + part.len() - 1;
            let res = self
                .http
                .patch(self.url(&location))
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{end}"))
                .body(part.to_vec())
                .send()
                .await
                .map_err(transport)?;
            let res = expect("chunk", res, &[202]).await?;
            let range = res
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if range != format!("0-{end}") {
                return Err(Failure::Status {
                    call: "chunk Range".into(),
                    status: 202,
                    body: format!("Range {range:?} after bytes 0-{end}"),
                });
            }
            location = self::location(&res)?;
            offset += part.len();
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let res = self
            .http
            .put(self.url(&format!("{location}{sep}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(last.to_vec())
            .send()
            .await
            .map_err(transport)?;
        let res = expect("upload completion", res, &[201]).await?;
        check_digest_header(&res, &digest)?;
        Ok(digest)
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; returns the manifest digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, body: &str) -> Result<String> {
        self.put_manifest_as(repo, reference, OCI_MANIFEST, body)
            .await
    }

    /// [`Client::put_manifest`] with another media type (an index).
    pub async fn put_manifest_as(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> Result<String> {
        let res = self
            .http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_owned())
            .send()
            .await
            .map_err(transport)?;
        let res = expect("manifest push", res, &[201]).await?;
        let digest = sha256(body.as_bytes());
        check_digest_header(&res, &digest)?;
        Ok(digest)
    }

    /// `POST ?mount=<digest>&from=<from>`: whether the blob was mounted (201).
    /// When the registry opens a session instead (202), `data` is uploaded
    /// into it in one `PUT ?digest=`, as clients do.
    pub async fn mount_or_upload(&self, repo: &str, from: &str, data: &[u8]) -> Result<bool> {
        let digest = sha256(data);
        let res = self
            .http
            .post(self.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
            )))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("mount", res, &[201, 202]).await?;
        if res.status() == 201 {
            check_digest_header(&res, &digest)?;
            return Ok(true);
        }
        let location = location(&res)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let res = self
            .http
            .put(self.url(&format!("{location}{sep}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .map_err(transport)?;
        let res = expect("upload after a refused mount", res, &[201]).await?;
        check_digest_header(&res, &digest)?;
        Ok(false)
    }

    /// `GET` a manifest: `Some((bytes, Docker-Content-Digest))`, `None` on 404.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>> {
        let res = self
            .http
            .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("manifest pull", res, &[200, 404]).await?;
        if res.status() == 404 {
            return Ok(None);
        }
        let digest = header(&res, "docker-content-digest");
        let bytes = res.bytes().await.map_err(transport)?.to_vec();
        Ok(Some((bytes, digest)))
    }

    /// `GET` a blob: `Some(bytes)`, `None` on 404.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let res = self
            .http
            .get(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("blob pull", res, &[200, 404]).await?;
        if res.status() == 404 {
            return Ok(None);
        }
        Ok(Some(res.bytes().await.map_err(transport)?.to_vec()))
    }

    /// `HEAD` a blob: `Some(Content-Length)`, `None` on 404.
    pub async fn head_blob(&self, repo: &str, digest: &str) -> Result<Option<u64>> {
        let res = self
            .http
            .head(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("blob head", res, &[200, 404]).await?;
        if res.status() == 404 {
            return Ok(None);
        }
        Ok(header(&res, "content-length").parse().ok())
    }

    /// `DELETE` a manifest by tag or digest; 202 only.
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<()> {
        let res = self
            .http
            .delete(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .send()
            .await
            .map_err(transport)?;
        expect("manifest delete", res, &[202]).await.map(drop)
    }

    /// The whole catalog.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let res = self
            .http
            .get(self.url("/v2/_catalog"))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("catalog", res, &[200]).await?;
        let value: serde_json::Value = res.json().await.map_err(transport)?;
        Ok(strings(&value["repositories"]))
    }

    /// The repository's tags; `None` when the repository is unknown (404).
    pub async fn tags(&self, repo: &str) -> Result<Option<Vec<String>>> {
        let res = self
            .http
            .get(self.url(&format!("/v2/{repo}/tags/list")))
            .send()
            .await
            .map_err(transport)?;
        let res = expect("tag list", res, &[200, 404]).await?;
        if res.status() == 404 {
            return Ok(None);
        }
        let value: serde_json::Value = res.json().await.map_err(transport)?;
        Ok(Some(strings(&value["tags"])))
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn location(res: &reqwest::Response) -> Result<String> {
    let location = header(res, "location");
    if location.starts_with('/') {
        Ok(location)
    } else {
        Err(Failure::Status {
            call: "Location".into(),
            status: res.status().as_u16(),
            body: format!("Location {location:?} is not a path"),
        })
    }
}

fn check_digest_header(res: &reqwest::Response, digest: &str) -> Result<()> {
    let got = header(res, "docker-content-digest");
    if got == digest {
        Ok(())
    } else {
        Err(Failure::Status {
            call: "Docker-Content-Digest".into(),
            status: res.status().as_u16(),
            body: format!("{got:?} instead of {digest}"),
        })
    }
}
