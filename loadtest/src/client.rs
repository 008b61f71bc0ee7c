//! The HTTP client (hyper 1, pooled HTTP/1.1 connections, no TLS) and the
//! registry operations the workloads are made of.
//!
//! Uploads use the two-request monolithic form (POST, then PUT with the body
//! and `?digest=`) and the chunked form (POST, PATCH with `Content-Range`,
//! PUT), which every Distribution-compatible registry accepts. `Location`
//! may be relative (this project) or absolute with a `_state` query
//! (Distribution): both are followed as given.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Longest any single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What the manifest GETs accept: the four image media types.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest manifest body [`Client::fetch_manifest`] reads.
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// Media type of the manifests the workloads push.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A finished request: status, `Location`, and how many body bytes came back
/// (the body is read to the end and dropped, never hashed).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body_len: u64,
    pub elapsed: Duration,
}

/// One registry, one user; cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
}

/// hyper's read buffer cap on the client's connections: large reads for large bodies.
const READ_BUFFER: usize = 1024 * 1024;

/// Errors are text: the workload reports the first one.
pub type Result<T> = std::result::Result<T, String>;

impl Client {
    /// A client for `base` (`http://host:port`) with basic credentials.
    pub fn new(base: &str, user: &str, password: &str) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .http1_max_buf_size(READ_BUFFER)
            .build(connector);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let auth = HeaderValue::try_from(format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
        }
    }

    /// The same registry and pool with other credentials.
    pub fn with_user(&self, user: &str, password: &str) -> Client {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Client {
            auth: HeaderValue::try_from(format!("Basic {token}"))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            ..self.clone()
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", self.base, path_or_url)
        }
    }

    /// The request, with the credentials and a `Content-Length` where one is due.
    fn request(
        &self,
        method: &Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(self.url(path_or_url))
            .header("authorization", self.auth.clone());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if !body.is_empty() || method == Method::PUT || method == Method::PATCH {
            builder = builder.header("content-length", body.len().to_string());
        }
        builder
            .body(Full::new(body))
            .map_err(|e| format!("building {method} {path_or_url}: {e}"))
    }

    /// Sends one request on a pooled connection and drains the response body.
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer> {
        let started = Instant::now();
        let request = self.request(&method, path_or_url, headers, body)?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("{method} {path_or_url}: {e}"))?;
            drain(response, &method, path_or_url, started).await
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{method} {path_or_url}: timed out"))?
    }

    /// A `GET` on a fresh connection of its own, driven by the calling task.
    ///
    /// The pooled client runs each connection as a task of its own, so every body frame
    /// crosses from that task to the reader, often between the two worker threads. For
    /// one large stream those hand-overs, not the server, were the limit: about 2.5 GB/s
    /// on the 2-core machines, where `curl` pulls the same blob from the same server at
    /// 3.2 to 3.6. Here the socket reads and the byte count share one task, as in `curl`.
    pub async fn get_on_own_connection(&self, path: &str) -> Result<Answer> {
        let started = Instant::now();
        let request = self.request(&Method::GET, path, &[], Bytes::new())?;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| format!("GET {path}: no host in the URL"))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(|e| format!("connecting to {authority}: {e}"))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("connecting to {authority}: {e}"))?;
            let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
                .max_buf_size(READ_BUFFER)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("connecting to {authority}: {e}"))?;
            // hyper's client wants an absolute path and a Host header on a bare connection.
            let mut request = request;
            let host = HeaderValue::try_from(authority.as_str())
                .map_err(|e| format!("GET {path}: {e}"))?;
            request.headers_mut().insert(http::header::HOST, host);
            *request.uri_mut() = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .map_err(|e| format!("GET {path}: {e}"))?;
            let answer = async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("GET {path}: {e}"))?;
                drain(response, &Method::GET, path, started).await
            };
            // The connection is driven until the answer is complete. If it ends first
            // (closed after the body, or broken), the answer still finishes or reports
            // the failure itself, so its own end is not taken as the outcome.
            let drive = async {
                let _ = connection.await;
                std::future::pending::<std::convert::Infallible>().await
            };
            tokio::select! {
                answer = answer => answer,
                never = drive => match never {},
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {path}: timed out"))?
    }

    /// Like [`Client::send`], but any status other than `expected` is an error.
    pub async fn expect(
        &self,
        expected: u16,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer> {
        let answer = self
            .send(method.clone(), path_or_url, headers, body)
            .await?;
        check_status(answer, expected, &method, path_or_url)
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the upload's `Location`.
    pub async fn start_upload(&self, repo: &str) -> Result<String> {
        let answer = self
            .expect(
                202,
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
            )
            .await?;
        answer
            .location
            .ok_or_else(|| "upload started without a Location".to_owned())
    }

    /// POST, then PUT with the whole blob: the monolithic push.
    pub async fn push_blob(&self, repo: &str, digest: &str, data: Bytes) -> Result<()> {
        let location = self.start_upload(repo).await?;
        self.expect(
            201,
            Method::PUT,
            &with_digest(&location, digest),
            &[("content-type", "application/octet-stream")],
            data,
        )
        .await
        .map(drop)
    }

    /// POST, PATCH per `chunk` bytes (with `Content-Range`), PUT `?digest=`.
    /// Returns the latency of every PATCH.
    pub async fn push_blob_chunked(
        &self,
        repo: &str,
        digest: &str,
        data: Bytes,
        chunk: usize,
    ) -> Result<Vec<Duration>> {
        let mut location = self.start_upload(repo).await?;
        let mut latencies = Vec::new();
        let mut offset = 0usize;
        while offset < data.len() {
            let end = (offset + chunk).min(data.len());
            let range = format!("{}-{}", offset, end - 1);
            let answer = self
                .expect(
                    202,
                    Method::PATCH,
                    &location,
                    &[
                        ("content-type", "application/octet-stream"),
                        ("content-range", &range),
                    ],
                    data.slice(offset..end),
                )
                .await?;
            latencies.push(answer.elapsed);
            if let Some(next) = answer.location {
                location = next;
            }
            offset = end;
        }
        self.expect(
            201,
            Method::PUT,
            &with_digest(&location, digest),
            &[],
            Bytes::new(),
        )
        .await
        .map(drop)?;
        Ok(latencies)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: whether the registry has it.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool> {
        let answer = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
            )
            .await?;
        match answer.status.as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            other => Err(format!("HEAD blob {digest}: unexpected {other}")),
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>`: the number of bytes received.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Answer> {
        self.expect(
            200,
            Method::GET,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            Bytes::new(),
        )
        .await
    }

    /// Like [`Client::get_blob`], on a connection of its own (see
    /// [`Client::get_on_own_connection`]): for the single large pull.
    pub async fn get_blob_alone(&self, repo: &str, digest: &str) -> Result<Answer> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let answer = self.get_on_own_connection(&path).await?;
        check_status(answer, 200, &Method::GET, &path)
    }

    /// `PUT /v2/<repo>/manifests/<reference>` of a Docker schema 2 manifest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: Bytes) -> Result<()> {
        self.expect(
            201,
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", DOCKER_MANIFEST)],
            manifest,
        )
        .await
        .map(drop)
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        self.expect(
            202,
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            Bytes::new(),
        )
        .await
        .map(drop)
    }

    /// `GET /v2/<repo>/manifests/<reference>` accepting every image type.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Answer> {
        self.expect(
            200,
            Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("accept", ACCEPT_MANIFESTS)],
            Bytes::new(),
        )
        .await
    }

    /// `GET /v2/<repo>/manifests/<reference>` accepting every image type, with its body
    /// (at most [`MANIFEST_LIMIT`] bytes): for pulls that follow what the manifest lists.
    pub async fn fetch_manifest(&self, repo: &str, reference: &str) -> Result<Bytes> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let request = self.request(
            &Method::GET,
            &path,
            &[("accept", ACCEPT_MANIFESTS)],
            Bytes::new(),
        )?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            if response.status() != StatusCode::OK {
                return Err(format!(
                    "GET {path}: expected 200, got {}",
                    response.status()
                ));
            }
            let limited = http_body_util::Limited::new(response.into_body(), MANIFEST_LIMIT);
            let body = limited
                .collect()
                .await
                .map_err(|e| format!("GET {path} body: {e}"))?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {path}: timed out"))?
    }
}

/// The answer if its status is `expected`, else an error naming both.
fn check_status(answer: Answer, expected: u16, method: &Method, path: &str) -> Result<Answer> {
    if answer.status.as_u16() != expected {
        return Err(format!(
            "{method} {path}: expected {expected}, got {}",
            answer.status
        ));
    }
    Ok(answer)
}

/// Reads the status, the `Location` and the body's length, dropping the bytes.
async fn drain(
    response: http::Response<hyper::body::Incoming>,
    method: &Method,
    path_or_url: &str,
    started: Instant,
) -> Result<Answer> {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = response.into_body();
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("{method} {path_or_url} body: {e}"))?;
        if let Some(data) = frame.data_ref() {
            body_len += data.len() as u64;
        }
    }
    Ok(Answer {
        status,
        location,
        body_len,
        elapsed: started.elapsed(),
    })
}

/// Adds `digest=` to an upload URL that may already have a query.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_joins_any_location() {
        assert_eq!(
            with_digest("/v2/a/u/1", "sha256:x"),
            "/v2/a/u/1?digest=sha256:x"
        );
        assert_eq!(
            with_digest("http://h/v2/a/u/1?_state=abc", "sha256:x"),
            "http://h/v2/a/u/1?_state=abc&digest=sha256:x"
        );
    }
}
