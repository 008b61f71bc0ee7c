//! The one loop that moves request bytes: write a frame to storage, then hash
//! it, so the hash covers exactly the bytes stored. Memory is bounded by the
//! frame size (hyper delivers what the socket read), never by the blob size.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
use registry_core::upload::UploadSession;
use registry_core::RegistryError;
use registry_storage::BackendWriter;

use crate::handlers::{content_length, header};
use crate::http_error::ApiError;

/// Error type of request bodies once boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body every handler reads.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why streaming a body into storage stopped.
#[derive(Debug)]
pub enum StreamError {
    /// The client's body broke off (connection closed, bad chunking).
    Client(BoxError),
    /// Storage refused the bytes.
    Storage(registry_storage::StorageError),
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Client(e) => ApiError::Spec(vec![RegistryError::new(
                registry_core::ErrorCode::BlobUploadInvalid,
            )
            .with_message(format!("request body ended early: {e}"))]),
            StreamError::Storage(e) => e.into(),
        }
    }
}

/// The next frame, or an error when the client pauses longer than `idle`
/// (a stalled body must not hold an upload slot and its lock forever).
async fn next_frame(
    body: &mut RequestBody,
    idle: Duration,
) -> Option<Result<Frame<Bytes>, BoxError>> {
    match tokio::time::timeout(idle, body.frame()).await {
        Ok(frame) => frame,
        Err(_) => Some(Err(format!("no body data for {} s", idle.as_secs()).into())),
    }
}

/// Streams `body` into `writer`, feeding every written byte to `session`.
/// Returns the number of bytes moved. On error, what was written before it
/// stays written and hashed: the two never disagree.
pub async fn stream_into(
    body: &mut RequestBody,
    writer: &mut dyn BackendWriter,
    session: &mut UploadSession,
    idle: Duration,
) -> Result<u64, StreamError> {
    let mut moved = 0u64;
    while let Some(frame) = next_frame(body, idle).await {
        let frame = frame.map_err(StreamError::Client)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry no content
        };
        if data.is_empty() {
            continue;
        }
        writer
            .write(data.clone())
            .await
            .map_err(StreamError::Storage)?;
        session.absorb(&data);
        moved += data.len() as u64;
    }
    Ok(moved)
}

/// Reads a whole small body (a manifest), refusing more than `limit` bytes
/// without reading past the limit.
pub async fn read_limited(
    body: &mut RequestBody,
    limit: usize,
    idle: Duration,
) -> Result<Option<Bytes>, BoxError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = next_frame(body, idle).await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > limit {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// Counts the bytes of a request body as they are read, for metrics and logs.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    seen: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    /// Wraps `inner`; the returned counter follows every data frame read.
    pub fn new(inner: B) -> (Self, Arc<AtomicU64>) {
        let seen = Arc::default();
        let counted = Counted {
            inner,
            seen: Arc::clone(&seen),
        };
        (counted, seen)
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.seen.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Most body bytes [`discard_unread`] reads and drops for one request.
pub const DISCARD_LIMIT: u64 = 64 * 1024 * 1024;

/// Longest [`discard_unread`] waits for them.
pub const DISCARD_TIME: Duration = Duration::from_secs(30);

/// Reads and drops what is left of a body the handler did not read: a
/// request refused before its body (401 before authentication, 403, 404,
/// 416, ...).
///
/// Why: many clients send the whole body before reading the reply
/// (python-requests, so oras-py, which sends every chunk without
/// credentials first). Answering and closing with body bytes unread makes
/// the kernel reset the connection, and the client never sees the reply:
/// the 401 challenge is lost and the push fails. Bounded in bytes and
/// time (and by `idle` between two pieces); skipped when the client waits for `100-continue` (it sends no body
/// until told to) or announced more than [`DISCARD_LIMIT`] (nothing helps
/// then: the connection closes).
pub async fn discard_unread(body: &mut RequestBody, headers: &HeaderMap, idle: Duration) {
    if body.is_end_stream()
        || header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        || content_length(headers).is_some_and(|n| n > DISCARD_LIMIT)
    {
        return;
    }
    let discard = async {
        let mut dropped = 0u64;
        // A body that pauses longer than `idle` is given up at once.
        while let Some(Ok(frame)) = next_frame(body, idle).await {
            if let Some(data) = frame.data_ref() {
                dropped += data.len() as u64;
                if dropped > DISCARD_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, discard).await;
}
