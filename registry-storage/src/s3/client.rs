//! `S3Client`: the S3 operations the S3 backend is written over, and nothing registry-shaped.
//!
//! Requests are signed by rusty-s3 (SigV4 in the query string, the same signing as the
//! presigned URLs handed to clients for `storage.redirect`) and sent with reqwest. Keys are
//! backend keys (`v1/blobs/...`); the client puts them under `rootdirectory`.
//!
//! Failures: connection errors, timeouts, 5xx and throttling are retried (7 attempts,
//! 100 ms doubling, with jitter, about 6 s in all: `retry.rs`); then, like 403 (credentials) and 404
//! `NoSuchBucket`, they become [`StorageError::Unavailable`] with a reason naming the S3
//! code and HTTP status. An absent object is `None`/`false`, not an error. Streamed bodies
//! are never retried mid-way: a body that fails yields an `io::Error` in the stream.
//!
//! Radosgw (Ceph) differences the operations allow for: `If-Match` must carry the ETag
//! unquoted (a quoted one gets 412 even on a match); CompleteMultipartUpload answers an
//! empty ETag, ignores `If-None-Match`, and answers an aborted or unknown upload with 500;
//! a PUT without a body needs `Content-Length: 0`; a 404 of a HEAD does not say whether
//! the bucket or the object is missing; `x-amz-delete-if-unmodified-since` is honoured
//! (AWS ignores it, hence [`S3Client::supports_conditional_delete`]).

mod config;
mod credentials;
mod error;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt as _;
use reqwest::{Method, StatusCode};
use rusty_s3::actions::{ListObjectsV2, ObjectIdentifier};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub use config::{S3Config, MIN_PART_SIZE};
use credentials::CredentialSource;
use error::{element, status_reason, transport_reason, unescape, ErrorBody};

use crate::{ByteStream, StorageError};

/// How long the URL of one request stays valid: the signature is checked when the request
/// starts, so this only has to cover the wait in the client.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The largest object one CopyObject (or part one UploadPartCopy) may copy.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// The most parts a multipart upload may have.
const MAX_PARTS: u64 = 10_000;

/// The most keys one DeleteObjects request may name.
const DELETE_BATCH: usize = 1000;

/// A server clock further than this from ours makes signatures fail (AWS allows 15 min).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// What HEAD and GET say about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// `Last-Modified` (whole seconds: the HTTP date has no more).
    pub modified: SystemTime,
    /// The ETag, unquoted.
    pub etag: String,
}

/// The precondition of a PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Write unconditionally.
    None,
    /// `If-None-Match: *`: only if no object has the key.
    IfNoneMatchAny,
    /// `If-Match`: only if the object's ETag is this one, given unquoted (radosgw answers
    /// 412 to a quoted ETag even when it matches).
    IfMatch(String),
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Keys (without the root), sizes and modification times, in key order.
    pub objects: Vec<(String, u64, SystemTime)>,
    /// With a delimiter: the common prefixes (without the root and the trailing `/`).
    pub prefixes: Vec<String>,
    /// The continuation token of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// An S3 bucket (under a root directory), reached over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
    /// Objects above this size are copied part by part (tests lower it).
    single_copy_limit: u64,
}

struct Inner {
    cfg: S3Config,
    bucket: Bucket,
    http: reqwest::Client,
    creds: CredentialSource,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.inner.cfg.endpoint.as_str())
            .field("bucket", &self.inner.cfg.bucket)
            .field("root", &self.inner.cfg.root)
            .finish_non_exhaustive()
    }
}

/// How a CopyObject ended, when it did not fail.
enum Copied {
    Done,
    /// 404: the source does not exist.
    SourceMissing,
    /// 400 InvalidRequest: the source is too large for one CopyObject.
    TooLarge,
}

/// One request as sent: rusty-s3 signs the URL (and the headers given to it), reqwest
/// sends it with the same headers.
struct Request {
    method: Method,
    url: url::Url,
    headers: Vec<(&'static str, String)>,
    body: Option<Bytes>,
}

impl Request {
    /// `action` signed with `signed` headers (every `x-amz-*` header must be signed).
    fn signed<'a, A: S3Action<'a>>(mut action: A, signed: &[(&'static str, &str)]) -> Request {
        for (name, value) in signed {
            action.headers_mut().insert(*name, value.to_string());
        }
        let method = match A::METHOD {
            rusty_s3::Method::Head => Method::HEAD,
            rusty_s3::Method::Get => Method::GET,
            rusty_s3::Method::Post => Method::POST,
            rusty_s3::Method::Put => Method::PUT,
            rusty_s3::Method::Delete => Method::DELETE,
        };
        Request {
            method,
            url: action.sign(SIGNATURE_LIFETIME),
            headers: signed.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            body: None,
        }
    }

    /// An unsigned header (conditions, ranges, `Content-MD5`).
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Request {
        self.body = Some(body.into());
        self
    }
}

impl S3Client {
    /// A client for `cfg`. Without credentials in `cfg`, a web identity
    /// (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, exchanged with STS at
    /// `AWS_ENDPOINT_URL_STS` or `https://sts.<region>.amazonaws.com`) signs the requests,
    /// and without one they go unsigned. Nothing is sent here: see [`S3Client::check`].
    pub fn new(cfg: S3Config) -> Result<S3Client, StorageError> {
        cfg.validate()?;
        let style = if cfg.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            cfg.endpoint.clone(),
            style,
            cfg.bucket.clone(),
            cfg.region.clone(),
        )
        .map_err(|e| cfg.invalid(format!("bucket {} at {}: {e}", cfg.bucket, cfg.endpoint)))?;
        let http = cfg.http_client()?;
        let creds = CredentialSource::from_config(&cfg)?;
        Ok(S3Client {
            inner: Arc::new(Inner {
                cfg,
                bucket,
                http,
                creds,
            }),
            single_copy_limit: MAX_SINGLE_COPY,
        })
    }

    /// Copies of objects above `limit` bytes go part by part (UploadPartCopy) instead of
    /// one CopyObject. For tests: the S3 limit (5 GiB) is the default.
    #[doc(hidden)]
    pub fn with_single_copy_limit(mut self, limit: u64) -> S3Client {
        self.single_copy_limit = limit;
        self
    }

    /// The part size of multipart uploads (`chunksize`).
    pub fn part_size(&self) -> u64 {
        self.inner.cfg.part_size
    }

    /// Size, modification time and ETag of `key`; `None` if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                Request::signed(self.inner.bucket.head_object(c, &full), &[])
            })
            .await?;
        match response.status() {
            s if s.is_success() => self.info(key, &response).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.failure(key, response).await),
        }
    }

    /// The whole of a small object `key` and what it is; `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, ObjectInfo)>, StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                Request::signed(self.inner.bucket.get_object(c, &full), &[])
            })
            .await?;
        match response.status() {
            s if s.is_success() => {
                let info = self.info(key, &response)?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| self.unavailable(key, transport_reason(self.endpoint(), &e)))?;
                Ok(Some((bytes, info)))
            }
            StatusCode::NOT_FOUND => self.absent(key, response).await.map(|()| None),
            _ => Err(self.failure(key, response).await),
        }
    }

    /// Bytes `start..end` of `key` (to its end without `end`), streamed; `None` if there is
    /// no such object. A range that starts at or after the end is an empty stream.
    pub async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<ByteStream>, StorageError> {
        let empty = || -> ByteStream { Box::pin(futures::stream::empty()) };
        let range = match end {
            Some(end) if end <= start => {
                // Nothing to read, but absence must still be reported.
                return Ok(self.head(key).await?.map(|_| empty()));
            }
            Some(end) => format!("bytes={start}-{}", end - 1),
            None => format!("bytes={start}-"),
        };
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                Request::signed(self.inner.bucket.get_object(c, &full), &[])
                    .header("range", range.clone())
            })
            .await?;
        match response.status() {
            s if s.is_success() => {
                let stream = response.bytes_stream().map_err(std::io::Error::other);
                Ok(Some(Box::pin(stream)))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(Some(empty())),
            StatusCode::NOT_FOUND => self.absent(key, response).await.map(|()| None),
            _ => Err(self.failure(key, response).await),
        }
    }

    /// Writes `body` at `key` if `cond` holds; the new ETag (unquoted), or `None` when the
    /// precondition failed (412, or 404 for `IfMatch` on an absent object).
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        cond: PutCondition,
    ) -> Result<Option<String>, StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                let request =
                    Request::signed(self.inner.bucket.put_object(c, &full), &[]).body(body.clone());
                match &cond {
                    PutCondition::None => request,
                    PutCondition::IfNoneMatchAny => request.header("if-none-match", "*"),
                    PutCondition::IfMatch(etag) => request.header("if-match", etag.clone()),
                }
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(Some(etag_of(&response))),
            StatusCode::PRECONDITION_FAILED => Ok(None),
            // `If-Match` on an absent object: S3 answers 404 NoSuchKey.
            StatusCode::NOT_FOUND => self.absent(key, response).await.map(|()| None),
            _ => Err(self.failure(key, response).await),
        }
    }

    /// Deletes `key`; an absent object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                Request::signed(self.inner.bucket.delete_object(c, &full), &[])
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => self.absent(key, response).await,
            _ => Err(self.failure(key, response).await),
        }
    }

    /// Deletes `key` only if it was not modified after `cutoff`, atomically on the server
    /// (radosgw's `x-amz-delete-if-unmodified-since`): true when deleted, false when it
    /// was modified since (412). An absent object is true: radosgw answers 204 as to any
    /// delete, so telling it apart would take a second request. Servers that ignore the
    /// header (AWS) delete unconditionally: ask [`S3Client::supports_conditional_delete`].
    pub async fn delete_if_unmodified_since(
        &self,
        key: &str,
        cutoff: SystemTime,
    ) -> Result<bool, StorageError> {
        let full = self.full_key(key);
        let since = iso8601(cutoff).map_err(|reason| self.unavailable(key, reason))?;
        let response = self
            .send(key, |c| {
                Request::signed(
                    self.inner.bucket.delete_object(c, &full),
                    &[("x-amz-delete-if-unmodified-since", &since)],
                )
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::PRECONDITION_FAILED => Ok(false),
            StatusCode::NOT_FOUND => self.absent(key, response).await.map(|()| false),
            _ => Err(self.failure(key, response).await),
        }
    }

    /// Whether the server honours [`S3Client::delete_if_unmodified_since`]: a probe object
    /// under `_probe/` is deleted with a cutoff an hour ago; still there means yes.
    pub async fn supports_conditional_delete(&self) -> Result<bool, StorageError> {
        let probe = format!(
            "_probe/conditional-delete-{}",
            uuid::Uuid::new_v4().simple()
        );
        self.put(&probe, Bytes::from_static(b"probe"), PutCondition::None)
            .await?;
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let deleted = self.delete_if_unmodified_since(&probe, hour_ago).await?;
        let still_there = self.head(&probe).await?.is_some();
        self.delete(&probe).await?;
        Ok(!deleted && still_there)
    }

    /// Deletes `keys`, up to 1000 per DeleteObjects request; absent keys are not errors, a
    /// key the server failed to delete is (all of them named in the reason).
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), StorageError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let ids: Vec<ObjectIdentifier> = batch
                .iter()
                .map(|k| ObjectIdentifier::new(self.full_key(k)))
                .collect();
            let first = batch.first().map_or("", String::as_str);
            let response = self
                .send(first, |c| {
                    let mut action = self.inner.bucket.delete_objects(c, ids.iter());
                    action.set_quiet(true);
                    let request = Request::signed(action.clone(), &[]);
                    let (body, md5) = action.body_with_md5();
                    request.header("content-md5", md5).body(body)
                })
                .await?;
            if !response.status().is_success() {
                return Err(self.failure(first, response).await);
            }
            let body = self.text(first, response).await?;
            let parsed = rusty_s3::actions::DeleteObjectsResponse::parse(&body)
                .map_err(|e| self.unavailable(first, format!("DeleteObjects answer: {e}")))?;
            let failed: Vec<String> = parsed
                .errors
                .iter()
                .filter(|e| e.code != "NoSuchKey")
                .map(|e| format!("{}: {} {}", self.strip_root(&e.key), e.code, e.message))
                .collect();
            if !failed.is_empty() {
                return Err(self.unavailable(
                    first,
                    format!("DeleteObjects failed for {}", failed.join("; ")),
                ));
            }
        }
        Ok(())
    }

    /// One page (ListObjectsV2) of the objects whose keys start with `prefix`; with
    /// `delimiter`, keys below a further `/` are grouped into `prefixes`. `start_after`
    /// is a key; `continuation` the `next` of the previous page.
    pub async fn list(
        &self,
        prefix: &str,
        delimiter: bool,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StorageError> {
        let full_prefix = self.full_key(prefix);
        let full_start = start_after.map(|s| self.full_key(s));
        let response = self
            .send(prefix, |c| {
                let mut action = self.inner.bucket.list_objects_v2(c);
                action.with_prefix(full_prefix.as_str());
                if delimiter {
                    action.with_delimiter("/");
                }
                if let Some(start) = &full_start {
                    action.with_start_after(start.as_str());
                }
                if let Some(token) = continuation {
                    action.with_continuation_token(token);
                }
                action.with_max_keys(max_keys);
                Request::signed(action, &[])
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.failure(prefix, response).await);
        }
        let body = self.text(prefix, response).await?;
        let parsed = ListObjectsV2::parse_response(&body)
            .map_err(|e| self.unavailable(prefix, format!("ListObjectsV2 answer: {e}")))?;
        let mut objects = Vec::with_capacity(parsed.contents.len());
        for object in parsed.contents {
            let modified = object
                .last_modified
                .as_deref()
                .ok_or_else(|| "no LastModified".to_string())
                .and_then(parse_iso8601)
                .map_err(|e| self.unavailable(prefix, format!("{}: {e}", object.key)))?;
            let key = self.strip_root(&object.key).to_string();
            objects.push((key, object.size.unwrap_or(0), modified));
        }
        let prefixes = parsed
            .common_prefixes
            .iter()
            .map(|p| {
                let p = self.strip_root(&p.prefix);
                p.strip_suffix('/').unwrap_or(p).to_string()
            })
            .collect();
        Ok(ListPage {
            objects,
            prefixes,
            next: parsed.next_continuation_token,
        })
    }

    /// Copies `from` (of `size` bytes) to `to`: one CopyObject, or part by part above
    /// 5 GiB. A missing source is [`StorageError::NotFound`].
    pub async fn copy(&self, from: &str, to: &str, size: u64) -> Result<(), StorageError> {
        if size > self.single_copy_limit {
            return self.multipart_copy(from, to, size).await;
        }
        let source = self.copy_source(from);
        match self
            .copy_object(to, &[("x-amz-copy-source", &source)])
            .await?
        {
            Copied::Done => Ok(()),
            Copied::SourceMissing => Err(StorageError::NotFound { key: from.into() }),
            Copied::TooLarge => self.multipart_copy(from, to, size).await,
        }
    }

    /// Sets the `Last-Modified` of `key` to now (a copy onto itself that replaces the
    /// metadata); false if there is no such object. An object too large for CopyObject
    /// (above 5 GiB on AWS) is copied onto itself part by part.
    pub async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        let source = self.copy_source(key);
        let copied = self
            .copy_object(
                key,
                &[
                    ("x-amz-copy-source", &source),
                    ("x-amz-metadata-directive", "REPLACE"),
                ],
            )
            .await?;
        match copied {
            Copied::Done => Ok(true),
            Copied::SourceMissing => Ok(false),
            Copied::TooLarge => match self.head(key).await? {
                Some(info) => self
                    .multipart_copy(key, key, info.size)
                    .await
                    .map(|()| true),
                None => Ok(false),
            },
        }
    }

    /// Starts a multipart upload to `key`; its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String, StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                Request::signed(self.inner.bucket.create_multipart_upload(c, &full), &[])
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.failure(key, response).await);
        }
        let body = self.text(key, response).await?;
        let parsed = rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
            .map_err(|e| self.unavailable(key, format!("CreateMultipartUpload answer: {e}")))?;
        Ok(parsed.upload_id().to_string())
    }

    /// Uploads part `number` (from 1) of an upload; its ETag (unquoted).
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: Bytes,
    ) -> Result<String, StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                let action = self.inner.bucket.upload_part(c, &full, number, upload_id);
                Request::signed(action, &[]).body(body.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.failure(key, response).await);
        }
        Ok(etag_of(&response))
    }

    /// Completes an upload from its `(number, etag)` parts. A 200 whose body is an
    /// `<Error>` is an error; an unknown upload id (404 NoSuchUpload) is
    /// [`StorageError::NotFound`]. (Radosgw answers an aborted or unknown upload id with
    /// 500 "This multipart completion is already in progress" instead, which ends as
    /// [`StorageError::Unavailable`] after the retries.)
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u16, String)],
    ) -> Result<(), StorageError> {
        let full = self.full_key(key);
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag></Part>",
                escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let no_etags = std::iter::empty::<&str>();
        let response = self
            .send(key, |c| {
                let action = self.inner.bucket.complete_multipart_upload(
                    c,
                    &full,
                    upload_id,
                    no_etags.clone(),
                );
                Request::signed(action, &[]).body(xml.clone())
            })
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            self.absent(key, response).await?;
            return Err(StorageError::NotFound { key: key.into() });
        }
        if !status.is_success() {
            return Err(self.failure(key, response).await);
        }
        let body = self.text(key, response).await?;
        match ErrorBody::parse(&body) {
            None => Ok(()),
            Some(error) => Err(self.unavailable(key, status_reason(self.bucket(), status, &error))),
        }
    }

    /// Abandons an upload and its parts; an upload already gone is not an error.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let full = self.full_key(key);
        let response = self
            .send(key, |c| {
                let action = self
                    .inner
                    .bucket
                    .abort_multipart_upload(c, &full, upload_id);
                Request::signed(action, &[])
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => self.absent(key, response).await,
            _ => Err(self.failure(key, response).await),
        }
    }

    /// A URL that GETs `key` without further credentials until `expires` from now (S3
    /// accepts 1 s to 7 days; temporary keys end it sooner).
    pub fn presign_get(&self, key: &str, expires: Duration) -> url::Url {
        let full = self.full_key(key);
        let creds = self.inner.creds.cached();
        self.inner
            .bucket
            .get_object(creds.as_deref(), &full)
            .sign(expires)
    }

    /// Whether the bucket can be used, for start-up and `config-check`: the reason of the
    /// error says whether the endpoint is unreachable, TLS failed, the bucket is missing,
    /// the credentials were refused, or the clocks disagree. A one-key listing, not a HEAD,
    /// so that the server's error code comes back with the status.
    pub async fn check(&self) -> Result<(), StorageError> {
        let bucket = self.bucket();
        let response = self
            .send(bucket, |c| {
                let mut action = self.inner.bucket.list_objects_v2(c);
                action.with_max_keys(1);
                Request::signed(action, &[])
            })
            .await?;
        let skew = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| parse_http_date(d).ok())
            .map(|server| match server.duration_since(SystemTime::now()) {
                Ok(ahead) => ahead,
                Err(behind) => behind.duration(),
            });
        if !response.status().is_success() {
            return Err(self.failure(bucket, response).await);
        }
        match skew {
            Some(skew) if skew > MAX_CLOCK_SKEW => Err(self.unavailable(
                bucket,
                format!(
                    "clock skew: the server's Date is {} s away from the local clock",
                    skew.as_secs()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Creates the bucket (for tests and tooling); one that exists already and is ours is
    /// not an error.
    pub async fn create_bucket(&self) -> Result<(), StorageError> {
        let bucket = self.bucket();
        let creds = self
            .inner
            .creds
            .get(&self.inner.http)
            .await?
            .ok_or_else(|| {
                self.unavailable(bucket, "creating a bucket needs credentials".into())
            })?;
        let response = self
            .send(bucket, |_| {
                let action = self.inner.bucket.create_bucket(&creds);
                let body = action.body();
                Request::signed(action, &[]).body(body)
            })
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = self.text(bucket, response).await?;
        let error = ErrorBody::parse(&body).unwrap_or_default();
        if error.code == "BucketAlreadyOwnedByYou" {
            return Ok(());
        }
        Err(self.unavailable(bucket, status_reason(bucket, status, &error)))
    }

    /// CopyObject onto `to` with the copy headers `signed`.
    async fn copy_object(
        &self,
        to: &str,
        signed: &[(&'static str, &str)],
    ) -> Result<Copied, StorageError> {
        let full = self.full_key(to);
        let response = self
            .send(to, |c| {
                Request::signed(self.inner.bucket.put_object(c, &full), signed)
            })
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return self
                .absent(to, response)
                .await
                .map(|()| Copied::SourceMissing);
        }
        if !status.is_success() {
            let error = read_error(response).await;
            if status == StatusCode::BAD_REQUEST && error.code == "InvalidRequest" {
                // AWS: "The specified copy source is larger than the maximum allowable
                // size for a copy source: 5368709120".
                return Ok(Copied::TooLarge);
            }
            return Err(self.unavailable(to, status_reason(self.bucket(), status, &error)));
        }
        // S3 may answer 200 and fail the copy in the body.
        let body = self.text(to, response).await?;
        match ErrorBody::parse(&body) {
            None => Ok(Copied::Done),
            Some(error) => Err(self.unavailable(to, status_reason(self.bucket(), status, &error))),
        }
    }

    /// A copy above the CopyObject limit: a multipart upload of UploadPartCopy ranges,
    /// aborted if any part fails.
    async fn multipart_copy(&self, from: &str, to: &str, size: u64) -> Result<(), StorageError> {
        let part = self
            .part_size()
            .max(size.div_ceil(MAX_PARTS))
            .min(MAX_SINGLE_COPY);
        let upload_id = self.create_multipart(to).await?;
        let copied = self.copy_parts(from, to, &upload_id, size, part).await;
        let result = match copied {
            Ok(parts) => self.complete_multipart(to, &upload_id, &parts).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            // The copy's own error is the one worth reporting.
            let _ = self.abort_multipart(to, &upload_id).await;
        }
        result
    }

    async fn copy_parts(
        &self,
        from: &str,
        to: &str,
        upload_id: &str,
        size: u64,
        part: u64,
    ) -> Result<Vec<(u16, String)>, StorageError> {
        let full = self.full_key(to);
        let source = self.copy_source(from);
        let mut parts = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + part).min(size);
            let number = u16::try_from(parts.len() + 1)
                .map_err(|_| self.unavailable(to, "more than 65535 copy parts".into()))?;
            let range = format!("bytes={start}-{}", end - 1);
            let response = self
                .send(to, |c| {
                    let action = self.inner.bucket.upload_part(c, &full, number, upload_id);
                    Request::signed(
                        action,
                        &[
                            ("x-amz-copy-source", &source),
                            ("x-amz-copy-source-range", &range),
                        ],
                    )
                })
                .await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                self.absent(to, response).await?;
                return Err(StorageError::NotFound { key: from.into() });
            }
            if !status.is_success() {
                return Err(self.failure(to, response).await);
            }
            let body = self.text(to, response).await?;
            if let Some(error) = ErrorBody::parse(&body) {
                return Err(self.unavailable(to, status_reason(self.bucket(), status, &error)));
            }
            let etag = element(&body, "ETag")
                .map(|e| unescape(e).trim_matches('"').to_string())
                .ok_or_else(|| self.unavailable(to, "UploadPartCopy answer without ETag".into()))?;
            parts.push((number, etag));
            start = end;
        }
        Ok(parts)
    }

    /// Sends the request `build` makes (signed afresh each attempt), retrying transport
    /// failures and retryable statuses; the first other answer is returned as is.
    async fn send(
        &self,
        key: &str,
        build: impl Fn(Option<&Credentials>) -> Request,
    ) -> Result<reqwest::Response, StorageError> {
        let mut reason = String::new();
        for attempt in 0..retry::ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(retry::backoff(attempt - 1)).await;
            }
            let creds = self.inner.creds.get(&self.inner.http).await?;
            let request = build(creds.as_deref());
            let mut builder = self.inner.http.request(request.method.clone(), request.url);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            // Radosgw refuses a PUT without Content-Length (411), which hyper leaves out
            // for a request without a body and for an empty one.
            match request.body {
                Some(body) => {
                    builder = builder
                        .header(reqwest::header::CONTENT_LENGTH, body.len())
                        .body(body)
                }
                None if matches!(request.method, Method::PUT | Method::POST) => {
                    builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
                }
                None => {}
            }
            match builder.send().await {
                Ok(response) if retry::retryable(response.status()) => {
                    reason = self.failure_reason(response).await;
                }
                Ok(response) => return Ok(response),
                Err(e) => reason = transport_reason(self.endpoint(), &e),
            }
        }
        Err(self.unavailable(
            key,
            format!("{reason} (after {} attempts)", retry::ATTEMPTS),
        ))
    }

    /// The error for an answer no operation expected.
    async fn failure(&self, key: &str, response: reqwest::Response) -> StorageError {
        let reason = self.failure_reason(response).await;
        self.unavailable(key, reason)
    }

    async fn failure_reason(&self, response: reqwest::Response) -> String {
        let status = response.status();
        let error = read_error(response).await;
        status_reason(self.bucket(), status, &error)
    }

    /// Checks that a 404 is about the object (or upload), not the bucket: a missing bucket
    /// must not read as a missing object. (HEAD answers carry no body: a HEAD in a missing
    /// bucket reads as an absent object, which [`S3Client::check`] rules out at start-up.)
    async fn absent(&self, key: &str, response: reqwest::Response) -> Result<(), StorageError> {
        let status = response.status();
        let error = read_error(response).await;
        match error.code.as_str() {
            "NoSuchBucket" => {
                Err(self.unavailable(key, status_reason(self.bucket(), status, &error)))
            }
            _ => Ok(()),
        }
    }

    async fn text(&self, key: &str, response: reqwest::Response) -> Result<String, StorageError> {
        response
            .text()
            .await
            .map_err(|e| self.unavailable(key, transport_reason(self.endpoint(), &e)))
    }

    fn info(&self, key: &str, response: &reqwest::Response) -> Result<ObjectInfo, StorageError> {
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| self.unavailable(key, format!("answer without {name}")))
        };
        let size = header(reqwest::header::CONTENT_LENGTH)?
            .parse::<u64>()
            .map_err(|e| self.unavailable(key, format!("Content-Length: {e}")))?;
        let modified = parse_http_date(header(reqwest::header::LAST_MODIFIED)?)
            .map_err(|e| self.unavailable(key, format!("Last-Modified: {e}")))?;
        Ok(ObjectInfo {
            size,
            modified,
            etag: etag_of(response),
        })
    }

    /// `key` under the root directory.
    fn full_key(&self, key: &str) -> String {
        match self.inner.cfg.root.as_str() {
            "" => key.to_string(),
            root => format!("{root}/{key}"),
        }
    }

    /// A listed key without the root directory.
    fn strip_root<'k>(&self, key: &'k str) -> &'k str {
        match self.inner.cfg.root.as_str() {
            "" => key,
            root => key
                .strip_prefix(root)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(key),
        }
    }

    /// `x-amz-copy-source`: `/bucket/key`, percent-encoded but for `/`.
    fn copy_source(&self, key: &str) -> String {
        let mut source = format!("/{}/", self.bucket());
        for byte in self.full_key(key).bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    source.push(char::from(byte))
                }
                _ => source.push_str(&format!("%{byte:02X}")),
            }
        }
        source
    }

    fn bucket(&self) -> &str {
        &self.inner.cfg.bucket
    }

    fn endpoint(&self) -> &str {
        self.inner.cfg.endpoint.as_str()
    }

    fn unavailable(&self, key: &str, reason: String) -> StorageError {
        StorageError::Unavailable {
            key: key.into(),
            reason,
        }
    }
}

/// The ETag header, unquoted; empty when absent.
fn etag_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// The S3 error of a failed answer: its `<Error>` body, else the `x-amz-error-code`
/// header some servers add (the only code a HEAD answer can carry). A body that cannot be
/// read leaves the code empty: the status still says what failed.
async fn read_error(response: reqwest::Response) -> ErrorBody {
    let header_code = response
        .headers()
        .get("x-amz-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    let mut error = ErrorBody::parse(&body).unwrap_or_default();
    if error.code.is_empty() {
        error.code = header_code.unwrap_or_default();
    }
    error
}

/// `2026-12-03T11:52:31.123Z`: ISO 8601 in UTC with milliseconds.
fn iso8601(time: SystemTime) -> Result<String, String> {
    let ts = jiff::Timestamp::try_from(time).map_err(|e| format!("time {time:?}: {e}"))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// An ISO 8601 time of a listing (`LastModified`), to the millisecond it carries.
fn parse_iso8601(text: &str) -> Result<SystemTime, String> {
    text.parse::<jiff::Timestamp>()
        .map(SystemTime::from)
        .map_err(|e| format!("time {text:?}: {e}"))
}

/// An HTTP date (`Thu, 03 Dec 2026 11:52:31 GMT`), as in `Last-Modified` and `Date`.
fn parse_http_date(text: &str) -> Result<SystemTime, String> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .map(SystemTime::from)
        .map_err(|e| format!("time {text:?}: {e}"))
}

/// Text for an XML element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_millisecond() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_212_351_123);
        let text = iso8601(t).unwrap();
        assert_eq!(text, "2026-12-02T11:52:31.123Z");
        assert_eq!(parse_iso8601(&text), Ok(t));
        assert_eq!(
            parse_http_date("Wed, 02 Dec 2026 11:52:31 GMT"),
            Ok(t - Duration::from_millis(123))
        );
    }

    #[test]
    fn copy_source_encodes_all_but_slashes() {
        let cfg = S3Config {
            endpoint: url::Url::parse("http://127.0.0.1:1").unwrap(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            root: "r/s".into(),
            credentials: None,
            path_style: true,
            skip_verify: false,
            ca_bundle: None,
            part_size: MIN_PART_SIZE,
        };
        let client = S3Client::new(cfg).unwrap();
        assert_eq!(
            client.copy_source("v1/a b/sha256:ab+c"),
            "/b/r/s/v1/a%20b/sha256%3Aab%2Bc"
        );
        assert_eq!(client.strip_root("r/s/v1/x"), "v1/x");
        assert_eq!(client.full_key("v1/x"), "r/s/v1/x");
    }
}
