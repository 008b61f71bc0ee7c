//! The one loop that moves request bytes: hand each frame to storage, hash it, and
//! keep the two equal. Memory is bounded by a few batches of frames (hyper delivers what
//! the socket read, up to its buffer size), never by the blob size.
//!
//! Three things overlap on a large push: the connection task receives frames, a
//! hashing thread works through the batches before them, and the storage writer writes
//! its own batches (it returns from `write` while its blocking task works). On two cores
//! this keeps SHA-256, the socket copy and the page-cache copy from queueing behind each
//! other. Small bodies (under one batch) are hashed inline, without a thread.

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
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    /// The hashing task died (a panic); the session must be rebuilt from storage.
    Hashing(String),
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Client(e) => ApiError::Spec(vec![RegistryError::new(
                registry_core::ErrorCode::BlobUploadInvalid,
            )
            .with_message(format!("request body ended early: {e}"))]),
            StreamError::Storage(e) => e.into(),
            StreamError::Hashing(e) => ApiError::Internal(format!("hashing task failed: {e}")),
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

/// Frames are hashed off the connection task in batches of about this many bytes.
/// 512 KiB hashes as fast as 1 MiB did (the hand-off costs one wake-up per batch), and
/// a large push holds at most three batches (see [`HASH_QUEUE`]), each at most one
/// frame over this size: about 1.5 MiB less than with 1 MiB batches.
const HASH_BATCH: usize = 512 * 1024;

/// Streams `body` into `writer`, feeding every byte handed to the writer to `session`.
/// Returns the number of bytes moved. After [`StreamError::Client`], every frame handed
/// to the writer was also hashed (the caller commits what arrived and the two agree).
/// After [`StreamError::Storage`] (the writer is broken) or [`StreamError::Hashing`],
/// the caller must rebuild the session from what storage holds, as every handler does
/// after any error.
pub async fn stream_into(
    body: &mut RequestBody,
    writer: &mut dyn BackendWriter,
    session: &mut UploadSession,
    idle: Duration,
) -> Result<u64, StreamError> {
    let mut hashing = Hashing::new(session);
    let mut moved = 0u64;
    let result = loop {
        let Some(frame) = next_frame(body, idle).await else {
            break Ok(());
        };
        let data = match frame.map(|f| f.into_data()) {
            Ok(Ok(data)) if !data.is_empty() => data,
            Ok(_) => continue, // trailers and empty frames carry no content
            Err(e) => break Err(StreamError::Client(e)),
        };
        if let Err(e) = writer.write(data.clone()).await {
            break Err(StreamError::Storage(e));
        }
        moved += data.len() as u64;
        if let Err(e) = hashing.push(data).await {
            break Err(e);
        }
    };
    let finished = hashing.finish(session).await;
    result.and(finished).map(|()| moved)
}

/// The running hash. Small bodies are hashed inline; from the first full batch on, a
/// blocking thread owns the session and hashes batches as they come, in order, so
/// SHA-256 (the slowest stage of a push) never waits for a thread to be found and
/// always has the next batch queued.
struct Hashing {
    /// The session until the hashing thread takes it.
    inline: Option<UploadSession>,
    thread: Option<HashThread>,
    batch: Vec<Bytes>,
    batch_len: usize,
}

/// The hashing thread: where to send batches, and the session it hands back.
struct HashThread {
    batches: mpsc::Sender<Vec<Bytes>>,
    done: JoinHandle<UploadSession>,
}

/// Full batches waiting for the hashing thread, besides the one it is hashing: one keeps
/// it busy while the next fills, and bounds memory to about three batches.
const HASH_QUEUE: usize = 1;

impl HashThread {
    fn start(mut session: UploadSession) -> HashThread {
        let (batches, mut queued) = mpsc::channel::<Vec<Bytes>>(HASH_QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(batch) = queued.blocking_recv() {
                for frame in &batch {
                    session.absorb(frame);
                }
            }
            session
        });
        HashThread { batches, done }
    }
}

impl Hashing {
    /// Takes the session out of `slot` (a fresh one stays there until `finish`).
    fn new(slot: &mut UploadSession) -> Hashing {
        let placeholder = UploadSession::new(slot.algorithm());
        Hashing {
            inline: Some(std::mem::replace(slot, placeholder)),
            thread: None,
            batch: Vec::new(),
            batch_len: 0,
        }
    }

    /// Queues a frame; hands the batch to the hashing thread once it is large enough.
    async fn push(&mut self, data: Bytes) -> Result<(), StreamError> {
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len < HASH_BATCH {
            return Ok(());
        }
        if self.thread.is_none() {
            let session = self.inline.take().ok_or_else(lost)?;
            self.thread = Some(HashThread::start(session));
        }
        // Sized like this one, so the next batch's frame list does not regrow.
        let next = Vec::with_capacity(self.batch.len());
        let batch = std::mem::replace(&mut self.batch, next);
        self.batch_len = 0;
        let sent = match &self.thread {
            Some(thread) => thread.batches.send(batch).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread is gone: only a panic ends it early; `finish` reports it.
            Err(StreamError::Hashing("hashing thread stopped".into()))
        }
    }

    /// Hashes what is left and puts the session back into `slot`.
    async fn finish(self, slot: &mut UploadSession) -> Result<(), StreamError> {
        let mut session = match self.thread {
            None => self.inline.ok_or_else(lost)?,
            Some(HashThread { batches, done }) => {
                drop(batches);
                done.await
                    .map_err(|e| StreamError::Hashing(e.to_string()))?
            }
        };
        for frame in &self.batch {
            session.absorb(frame);
        }
        *slot = session;
        Ok(())
    }
}

/// The error for a session that is nowhere (never happens: `new` fills `inline`, and
/// only starting the thread empties it).
fn lost() -> StreamError {
    StreamError::Hashing("session lost".into())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::StreamBody;
    use registry_core::{Algorithm, Digest};
    use registry_storage::{Backend, MemoryBackend};

    use super::*;

    fn body(frames: Vec<Result<Bytes, BoxError>>) -> RequestBody {
        let frames = frames.into_iter().map(|f| f.map(http_body::Frame::data));
        StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    /// Frames of uneven sizes adding up to several hash batches.
    fn frames() -> (Vec<Bytes>, Vec<u8>) {
        let mut all = Vec::new();
        let mut frames = Vec::new();
        for n in 0..200u32 {
            let len = [1, 16_384, 65_536, 300_000, 7][n as usize % 5];
            let frame: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(n) as u8).collect();
            all.extend_from_slice(&frame);
            frames.push(Bytes::from(frame));
        }
        (frames, all)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_exactly_what_it_stores() {
        let (frames, all) = frames();
        assert!(all.len() > 4 * HASH_BATCH);
        let backend = MemoryBackend::new();
        let mut writer = backend.append("k").await.unwrap();
        let mut session = UploadSession::new(Algorithm::Sha256);
        session.absorb(b"earlier chunk");
        let mut b = body(frames.into_iter().map(Ok).collect());
        let moved = stream_into(
            &mut b,
            writer.as_mut(),
            &mut session,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(moved, all.len() as u64);
        writer.commit().await.unwrap();
        let mut expected = b"earlier chunk".to_vec();
        expected.extend_from_slice(&all);
        assert_eq!(
            session
                .finish(&Digest::of(Algorithm::Sha256, &expected))
                .map(drop),
            Ok(())
        );
        assert_eq!(backend.get("k").await.unwrap().unwrap(), all);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_body_leaves_hash_and_storage_equal() {
        let (frames, _) = frames();
        let mut sent: Vec<Result<Bytes, BoxError>> =
            frames[..120].iter().cloned().map(Ok).collect();
        sent.push(Err("connection reset".into()));
        let backend = MemoryBackend::new();
        let mut writer = backend.append("k").await.unwrap();
        let mut session = UploadSession::new(Algorithm::Sha256);
        let mut b = body(sent);
        let err = stream_into(
            &mut b,
            writer.as_mut(),
            &mut session,
            Duration::from_secs(60),
        )
        .await;
        assert!(matches!(err, Err(StreamError::Client(_))), "{err:?}");
        writer.commit().await.unwrap();
        let stored = backend.get("k").await.unwrap().unwrap();
        assert_eq!(session.offset(), stored.len() as u64);
        assert_eq!(
            session
                .finish(&Digest::of(Algorithm::Sha256, &stored))
                .map(drop),
            Ok(())
        );
    }

    #[tokio::test]
    async fn small_bodies_are_hashed_inline() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let mut writer = backend.append("k").await.unwrap();
        let mut session = UploadSession::new(Algorithm::Sha256);
        let mut b = body(vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::new())]);
        assert_eq!(
            stream_into(
                &mut b,
                writer.as_mut(),
                &mut session,
                Duration::from_secs(60)
            )
            .await
            .unwrap(),
            3
        );
        writer.commit().await.unwrap();
        assert!(session
            .finish(&Digest::of(Algorithm::Sha256, b"abc"))
            .is_ok());
    }
}
