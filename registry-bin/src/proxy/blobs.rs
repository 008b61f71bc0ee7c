//! Blobs through the cache: stream-through with one upstream fetch per blob.
//!
//! A miss starts a *flight*: a task, independent of any client, that GETs the blob from
//! the upstream and writes it into an upload of the repository while hashing it, making
//! what it wrote visible every [`SEGMENT`] bytes. Every client pulling that digest
//! meanwhile, the first included, reads the upload's bytes as they become visible and
//! follows the rest, so nobody waits for the whole blob and the upstream sees one GET.
//!
//! The latest segments written stay in memory (the same buffers the hasher reads), and
//! a client that keeps up (the usual case: the one whose pull started the fetch) is sent
//! those buffers as they are, without reading the file back, to the blob's end; the
//! fetch waits a little for such clients before it lets a segment go, and one that falls
//! behind anyway reads the upload in storage ([`window`](super::window)). So a cold pull
//! costs one write of each byte and no read, and object storage, which cannot read an
//! upload in progress, still streams to the clients that keep up.
//!
//! ```text
//!              upstream GET ──► hash + write segment ──► ... ──► digest verifies?
//! state:  Connecting ──► Writing{written} ──► Writing{written'} ──►  yes: commit_upload ──► Done
//!                                                                     no: cancel_upload ──► Failed
//! clients:       read upload [pos, written - HOLD_BACK)            ...  Done: read the blob to its end
//!                                                                       Failed: the body breaks off
//! ```
//!
//! The last [`HOLD_BACK`] bytes reach clients only once the digest verified and the blob
//! is committed, so no client ever receives a corrupt blob whole: on a mismatch the
//! response breaks off (the connection is cut) and nothing is kept, so the next pull
//! fetches again.
//!
//! A `Range` GET of an uncached blob joins the flight like any other and is answered
//! once the blob is verified and stored, from storage, as a hit is (206 with the range):
//! a part cannot be checked against the digest on its own.
//!
//! In read-only mode (`storage.maintenance.readonly`) nothing is fetched, since nothing
//! may be written: what is cached is served, a miss gets a 503 that says why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderMap, StatusCode};
use registry_core::{BlobHasher, Digest, ErrorCode, RegistryError, RepoName, UploadId};
use registry_storage::{ByteStream, StorageError, Store};
use tokio::sync::watch;

use super::window::{Position, Readers, Recent, Window};
use super::{Proxy, Target, Upstream};
use crate::handlers::blobs as local;
use crate::handlers::noted;
use crate::http_error::{ApiError, ApiResult};
use crate::metrics::{ProxyEvent, ProxyMetrics};
use crate::notify::Happened;
use crate::registry::Shared;
use crate::reply::Reply;

/// Bytes written between two points where readers may see them. Each segment costs the
/// fetch two hops to the blocking pool (the write, the hash), and clients hold slices of
/// it until their connection sends them: 16 nodes pulling an uncached 5-blob image at
/// once peaked at 53 to 55 MiB of RSS with 1 MiB segments, 50 with 512 KiB, 46 with
/// this; 512 KiB with a 2 MiB window pulled no faster and peaked at up to 53 MiB.
const SEGMENT: u64 = 256 * 1024;

/// Bytes held back from clients until the digest verifies.
const HOLD_BACK: u64 = 64 * 1024;

/// Most bytes a client's read of a flight takes from storage at a time. Storage reads
/// buffer (or map) up to two chunks of the range asked for, so this bounds each client's
/// memory: 16 nodes pulling an uncached 5-blob image at once are 80 readers (peak RSS
/// about 110 MiB with reads of whole 1 MiB segments, 47 to 54 with 256 KiB, 38 to 41
/// with this).
const FOLLOW_READ: u64 = 128 * 1024;

/// Why a flight failed, as the clients that wait on it are told.
#[derive(Debug, Clone)]
enum Failure {
    /// The upstream does not have the blob.
    NotFound,
    /// The upstream failed; `status` is what clients get (502 or 503).
    Upstream { status: u16, message: String },
    /// Storage failed.
    Storage(String),
}

/// A flight's progress.
#[derive(Debug, Clone)]
enum State {
    /// Waiting for the upstream's response.
    Connecting,
    /// `written` bytes are in the upload and readable; `size` is the upstream's length;
    /// `recent` holds the latest segments written, ending at `written`.
    Writing {
        written: u64,
        size: Option<u64>,
        recent: Recent,
    },
    /// Verified and committed: the blob is in storage; `recent` holds its last segments,
    /// ending at its end.
    Done { recent: Recent },
    /// Nothing was kept.
    Failed(Failure),
}

/// One blob being fetched.
#[derive(Debug)]
struct Flight {
    /// The repository whose upload receives the bytes (the first puller's).
    repo: RepoName,
    id: UploadId,
    state: watch::Receiver<State>,
    readers: Arc<Readers>,
}

/// Blobs being fetched, by digest.
#[derive(Debug, Default)]
pub struct Flights {
    map: FlightMap,
}

/// The flights in the air, shared with their tasks.
type FlightMap = Arc<Mutex<HashMap<Digest, Arc<Flight>>>>;

/// What a flight needs, owned, so it outlives the request that started it.
struct Job {
    flights: FlightMap,
    store: Store,
    upstream: Arc<Upstream>,
    metrics: Arc<ProxyMetrics>,
    remote: String,
    digest: Digest,
    repo: RepoName,
    id: UploadId,
    state: watch::Sender<State>,
    readers: Arc<Readers>,
}

impl Flights {
    /// The flight of `digest`, started now if none is in the air.
    fn join(
        &self,
        shared: &Shared,
        target: Target<'_>,
        name: &RepoName,
        digest: &Digest,
    ) -> Arc<Flight> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = map.get(digest) {
            return Arc::clone(flight);
        }
        let id = mint_upload_id();
        let (tx, rx) = watch::channel(State::Connecting);
        let readers = Arc::new(Readers::default());
        let flight = Arc::new(Flight {
            repo: name.clone(),
            id: id.clone(),
            state: rx,
            readers: Arc::clone(&readers),
        });
        map.insert(digest.clone(), Arc::clone(&flight));
        let job = Job {
            flights: Arc::clone(&self.map),
            store: shared.store.clone(),
            upstream: Arc::clone(target.upstream),
            metrics: Arc::clone(&shared.metrics.proxy),
            remote: target.remote(),
            digest: digest.clone(),
            repo: name.clone(),
            id,
            state: tx,
            readers,
        };
        tokio::spawn(job.run());
        flight
    }
}

/// A fresh upload id, as upload sessions get them (its time lets purging find it).
fn mint_upload_id() -> UploadId {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random = uuid::Uuid::new_v4();
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&random.as_bytes()[..10]);
    UploadId::mint(millis, bytes)
}

impl Job {
    /// Fetches, then leaves the map: a pull that comes after a success finds the blob
    /// in storage (or, in between, this flight's `Done`), and one after a failure
    /// starts a new fetch.
    async fn run(self) {
        let label = self.upstream.label.clone();
        match self.fetch().await {
            Ok(recent) => {
                self.state.send_replace(State::Done { recent });
                self.leave();
            }
            Err(failure) => {
                if !matches!(failure, Failure::NotFound) {
                    self.metrics.record(&label, ProxyEvent::UpstreamError);
                    tracing::warn!(upstream = %label, digest = %self.digest, failure = ?failure, "blob fetch failed; nothing kept");
                }
                if let Err(e) = self.store.cancel_upload(&self.repo, &self.id).await {
                    tracing::warn!(error = %e, "removing a failed fetch's upload");
                }
                self.leave();
                self.state.send_replace(State::Failed(failure));
            }
        }
    }

    fn leave(&self) {
        let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.digest);
    }

    /// Fetches, verifies and stores the blob; returns its last segments.
    async fn fetch(&self) -> Result<Recent, Failure> {
        let upstream_failure = |status: u16, message: String| Failure::Upstream { status, message };
        let mut response = self
            .upstream
            .client
            .blob(&self.remote, &self.digest.to_string(), false)
            .await
            .map_err(|e| match e {
                super::UpstreamError::Unreachable(_) => upstream_failure(503, e.to_string()),
                e => upstream_failure(502, e.to_string()),
            })?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Failure::NotFound),
            status => {
                return Err(upstream_failure(
                    502,
                    format!("answered HTTP {status} to a blob GET"),
                ))
            }
        }
        let size = response.content_length();
        let storage = |e: StorageError| Failure::Storage(e.to_string());
        self.store
            .create_upload(&self.repo, &self.id)
            .await
            .map_err(storage)?;
        self.state.send_replace(State::Writing {
            written: 0,
            size,
            recent: Recent::empty(),
        });
        let mut hasher = SegmentHasher::new(BlobHasher::new(self.digest.algorithm()));
        let mut segment: Vec<Bytes> = Vec::new();
        let mut window = Window::default();
        let mut writer = self
            .store
            .upload_writer(&self.repo, &self.id)
            .await
            .map_err(storage)?;
        let (mut written, mut pending) = (0u64, 0u64);
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| upstream_failure(502, format!("broke off a blob: {e}")))?;
            let Some(chunk) = chunk else { break };
            segment.push(chunk.clone());
            pending += chunk.len() as u64;
            writer.write(chunk).await.map_err(storage)?;
            if pending >= SEGMENT {
                // Readable, not yet durable: the commit below syncs the whole blob once.
                writer.flush().await.map_err(storage)?;
                let chunks: Arc<[Bytes]> = std::mem::take(&mut segment).into();
                hasher.flush(Arc::clone(&chunks)).await?;
                self.metrics.fetched(&self.upstream.label, pending);
                let next_start = window.start_after(pending);
                self.readers.wait_past(window.start(), next_start).await;
                written += pending;
                pending = 0;
                self.state.send_replace(State::Writing {
                    written,
                    size,
                    recent: window.push(chunks),
                });
            }
        }
        writer.commit().await.map_err(storage)?;
        self.metrics.fetched(&self.upstream.label, pending);
        written += pending;
        if size.is_some_and(|size| size != written) {
            return Err(upstream_failure(
                502,
                format!("sent {written} bytes of a blob it announced as {size:?} bytes"),
            ));
        }
        let last: Arc<[Bytes]> = segment.into();
        hasher
            .finish(Arc::clone(&last))
            .await?
            .verify(&self.digest)
            .map_err(|e| {
                upstream_failure(
                    502,
                    format!(
                        "sent a blob that hashes to {}, not {}",
                        e.actual, e.expected
                    ),
                )
            })?;
        self.store
            .commit_upload(&self.repo, &self.id, &self.digest)
            .await
            .map_err(storage)?;
        Ok(window.push(last))
    }
}

/// Hashes a download segment by segment on the blocking pool, one segment behind the
/// download, so SHA-256 does not hold up the runtime threads that serve clients.
/// Memory: the segment being received and the one being hashed.
struct SegmentHasher {
    idle: Option<BlobHasher>,
    busy: Option<tokio::task::JoinHandle<BlobHasher>>,
}

impl SegmentHasher {
    fn new(hasher: BlobHasher) -> SegmentHasher {
        SegmentHasher {
            idle: Some(hasher),
            busy: None,
        }
    }

    /// Waits for the previous segment's hashing, then starts `chunks`'.
    async fn flush(&mut self, chunks: Arc<[Bytes]>) -> Result<(), Failure> {
        let mut hasher = match (self.busy.take(), self.idle.take()) {
            (Some(task), _) => task
                .await
                .map_err(|e| Failure::Storage(format!("hashing task: {e}")))?,
            (None, Some(hasher)) => hasher,
            (None, None) => return Err(Failure::Storage("hasher already finished".into())),
        };
        self.busy = Some(tokio::task::spawn_blocking(move || {
            for chunk in chunks.iter() {
                hasher.update(chunk);
            }
            hasher
        }));
        Ok(())
    }

    /// The hasher over every segment flushed and `last`.
    async fn finish(mut self, last: Arc<[Bytes]>) -> Result<BlobHasher, Failure> {
        self.flush(last).await?;
        match self.busy.take() {
            Some(task) => task
                .await
                .map_err(|e| Failure::Storage(format!("hashing task: {e}"))),
            None => Err(Failure::Storage("hasher already finished".into())),
        }
    }
}

/// `GET|HEAD /v2/<name>/blobs/<digest>` of a proxied repository.
pub async fn get(
    shared: &Shared,
    proxy: &Proxy,
    target: Target<'_>,
    headers: &HeaderMap,
    name: &RepoName,
    digest: &Digest,
    head: bool,
) -> ApiResult {
    let label = &target.upstream.label;
    if shared.store.repo_blob_size(name, digest).await?.is_some() {
        shared.metrics.proxy.record(label, ProxyEvent::Hit);
        return local::get(shared, headers, name, digest, head).await;
    }
    if shared.read_only && !head {
        return Err(target.read_only_miss());
    }
    if head || shared.store.blob_size(digest).await?.is_some() {
        // Ask without fetching: a HEAD is answered from the upstream's headers, and bytes
        // stored for another repository are linked here once the upstream confirms this
        // repository has them too.
        let remote = target.remote();
        let response = target
            .upstream
            .client
            .blob(&remote, &digest.to_string(), true)
            .await
            .map_err(|e| target.unavailable(shared, &e))?;
        target.expect_found(
            shared,
            response.status(),
            ErrorCode::BlobUnknown,
            "a blob HEAD",
        )?;
        if !shared.read_only && shared.store.blob_size(digest).await?.is_some() {
            shared.store.link_blob(name, digest).await?;
            shared.metrics.proxy.record(label, ProxyEvent::Hit);
            return local::get(shared, headers, name, digest, head).await;
        }
        let reply = Reply::empty(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .header("docker-content-digest", &digest.to_string());
        let size = response.content_length();
        return Ok(pulled(shared, with_length(reply, size), name, digest, size));
    }
    shared.metrics.proxy.record(label, ProxyEvent::Miss);
    let flight = proxy.flights.join(shared, target, name, digest);
    let mut rx = flight.state.clone();
    // A range is served from storage once the blob is verified; a whole GET follows.
    let ranged = headers.contains_key(http::header::RANGE);
    let state = rx
        .wait_for(|s| match s {
            State::Connecting => false,
            State::Writing { .. } => !ranged,
            State::Done { .. } | State::Failed(_) => true,
        })
        .await
        .map(|s| s.clone())
        .map_err(|_| ApiError::Internal("a blob fetch ended without a result".into()))?;
    let size = match state {
        State::Writing { .. } if ranged => {
            return Err(ApiError::Internal(
                "a ranged read saw a blob in flight".into(),
            ))
        }
        State::Writing { size, .. } => size,
        State::Done { .. } => {
            shared.store.link_blob(name, digest).await?;
            return local::get(shared, headers, name, digest, false).await;
        }
        State::Failed(Failure::NotFound) => return Err(ErrorCode::BlobUnknown.into()),
        State::Failed(Failure::Upstream { status, message }) => {
            return Err(RegistryError::new(ErrorCode::Unknown)
                .with_status(status)
                .with_message(format!(
                    "upstream {} ({}): {message}",
                    target.upstream.label, target.upstream.url
                ))
                .into())
        }
        State::Failed(Failure::Storage(e)) => return Err(ApiError::Internal(e)),
        State::Connecting => return Err(ApiError::Internal("unreachable state".into())),
    };
    let follower = Follower {
        store: shared.store.clone(),
        position: flight.readers.join(),
        flight,
        rx,
        name: name.clone(),
        digest: digest.clone(),
        pos: 0,
        linked: false,
        finished: false,
        follow_upload: true,
    };
    let stream: ByteStream = Box::pin(
        futures::stream::unfold(follower, |mut f| async move {
            if f.finished {
                return None;
            }
            match f.next().await {
                Ok(Some(stream)) => Some((Ok(stream), f)),
                Ok(None) => None,
                Err(e) => {
                    f.finished = true;
                    Some((Err(e), f))
                }
            }
        })
        .try_flatten(),
    );
    let reply = Reply::stream(StatusCode::OK, stream)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", &digest.to_string())
        .header("etag", &format!("\"{digest}\""));
    Ok(pulled(shared, with_length(reply, size), name, digest, size))
}

fn with_length(reply: Reply, size: Option<u64>) -> Reply {
    match size {
        Some(len) => reply.header("content-length", &len.to_string()),
        None => reply,
    }
}

/// The pull notification a hit sends (`handlers::blobs::get`), for an answer the cache
/// gives itself: a stream-through miss, or a HEAD answered from the upstream's headers.
/// Sent with the reply's head, as for a hit; the size is the upstream's (0 if it gave
/// none).
fn pulled(
    shared: &Shared,
    reply: Reply,
    name: &RepoName,
    digest: &Digest,
    size: Option<u64>,
) -> Reply {
    noted(shared, reply, || Happened::BlobPulled {
        repository: name.clone(),
        digest: digest.clone(),
        size: size.unwrap_or_default(),
    })
}

/// One client's read of a flight.
struct Follower {
    store: Store,
    flight: Arc<Flight>,
    rx: watch::Receiver<State>,
    name: RepoName,
    digest: Digest,
    /// Offset of the next byte to give the client's connection.
    pos: u64,
    /// `pos` as the fetch sees it, once the connection took what it was given.
    position: Position,
    /// Whether the committed blob is linked into `name`.
    linked: bool,
    finished: bool,
    /// False once the upload cannot be read while it is written (object storage cannot
    /// read a multipart upload in progress): the client then follows from memory while
    /// it keeps up, and what it missed comes from the blob once done.
    follow_upload: bool,
}

impl Follower {
    /// The next piece to send: bytes of the upload up to the hold-back point while the
    /// flight writes, then the rest of the committed blob. `Err` breaks the response off.
    async fn next(&mut self) -> std::io::Result<Option<ByteStream>> {
        // The connection asks for more: it took every byte given so far.
        self.position.set(self.pos, &self.flight.readers);
        loop {
            let state = self.rx.borrow_and_update().clone();
            match state {
                State::Connecting => {}
                State::Writing {
                    written, recent, ..
                } => {
                    let allowed = written.saturating_sub(HOLD_BACK);
                    if let Some(stream) = self.take_from_memory(&recent, allowed) {
                        return Ok(Some(stream));
                    }
                    if self.follow_upload && self.pos < allowed {
                        let (repo, id) = (&self.flight.repo, &self.flight.id);
                        let len = (allowed - self.pos).min(FOLLOW_READ);
                        match self.store.read_upload_range(repo, id, self.pos, len).await {
                            Ok(stream) => {
                                self.pos += len;
                                return Ok(Some(stream));
                            }
                            // Committed (renamed) since: `Done` is on its way.
                            Err(StorageError::NotFound { .. }) => {}
                            Err(StorageError::Unavailable { .. }) => self.follow_upload = false,
                            Err(e) => return Err(std::io::Error::other(e)),
                        }
                    }
                }
                State::Done { recent } => {
                    if !self.linked {
                        self.link_seen().await?;
                    }
                    let size = recent.end();
                    if let Some(stream) = self.take_from_memory(&recent, size) {
                        return Ok(Some(stream));
                    }
                    let len = size.saturating_sub(self.pos).min(FOLLOW_READ);
                    if len == 0 {
                        return Ok(None);
                    }
                    let rest = self
                        .store
                        .read_blob(&self.digest, self.pos, Some(len))
                        .await
                        .map_err(std::io::Error::other)?;
                    self.pos += len;
                    return Ok(Some(rest));
                }
                State::Failed(failure) => {
                    return Err(std::io::Error::other(format!(
                        "the upstream fetch of {} failed: {failure:?}",
                        self.digest
                    )))
                }
            }
            if self.rx.changed().await.is_err() && !matches!(*self.rx.borrow(), State::Done { .. })
            {
                return Err(std::io::Error::other("the blob fetch stopped"));
            }
        }
    }

    /// The client's next bytes up to `to` from the flight's memory, if it kept up.
    fn take_from_memory(&mut self, recent: &Recent, to: u64) -> Option<ByteStream> {
        let chunks = recent.slice(self.pos, to)?;
        self.pos = to;
        Some(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))))
    }

    /// On the flight's `Done`: links the blob into this client's repository if the
    /// flight wrote it for another.
    async fn link_seen(&mut self) -> std::io::Result<()> {
        if self.name != self.flight.repo {
            self.store
                .link_blob(&self.name, &self.digest)
                .await
                .map_err(std::io::Error::other)?;
        }
        self.linked = true;
        Ok(())
    }
}
