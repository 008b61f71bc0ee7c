//! Uploads on object storage: a multipart upload plus a small state object.
//!
//! S3 can neither append to an object nor rename one, and the parts of a multipart
//! upload cannot be read before it completes. So an upload at key `K` is:
//!
//! ```text
//! K                          state (JSON): size, the multipart upload's id, the parts
//!                            in it (number, size, ETag), the tail segments, the hash
//!                            checkpoint. Rewritten by every chunk with If-Match on
//!                            its ETag, so two replicas cannot both extend one upload.
//! <dir>/.tmp-data-<name>     the multipart upload's object, once it has a part
//! <dir>/.tmp-tail-<name>-*   tail segments: bytes not yet in a part, one object per
//!                            chunk that left some (parts must be >= 5 MiB but the
//!                            last, and a chunk of docker's may be a few KiB)
//! ```
//!
//! A chunk reads nothing back unless its bytes complete a part: then the tail segments
//! (less than one part) are read once and sent with the new bytes as the next part. Memory
//! per upload is bounded by one part. What is in the state is the upload: parts and
//! segments a chunk wrote before its state write failed (a killed replica, a lost race)
//! are never listed, so the next chunk starts from the state's size and the completion
//! names only the state's parts, each with its ETag: a part overwritten by a racing
//! writer fails the completion instead of changing the bytes. Segment keys are unique
//! per write for the same reason.
//!
//! Completion finishes the multipart upload into the `.tmp-data-` object and copies it
//! to the blob's key on the server side (no byte crosses the network again; radosgw
//! shares the data by reference), because the blob's key, its digest, is not known
//! when the multipart upload starts. Leftovers of a replica killed at any point are
//! hidden (`.tmp-` names) and removed with the upload's cancellation or purge; a bucket
//! lifecycle rule aborts multipart uploads nobody completes (docs/kubernetes.md).

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::client::{PutCondition, S3Client};
use crate::backend::{BackendWriter, UploadStatus};
use crate::error::StorageError;

/// S3's smallest part but the last.
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// The upload's state object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct UploadState {
    /// Bytes committed.
    pub size: u64,
    /// The multipart upload's id, once the first part was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    /// The parts, in order.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Bytes after the last part, in order.
    #[serde(default)]
    pub tail: Vec<Segment>,
    /// The hash checkpoint saved with the last chunk (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// One part of the multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Part {
    pub number: u16,
    pub size: u64,
    pub etag: String,
}

/// One tail segment object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Segment {
    pub key: String,
    pub size: u64,
}

impl UploadState {
    fn tail_size(&self) -> u64 {
        self.tail.iter().map(|s| s.size).sum()
    }

    /// What [`crate::Backend::upload_status`] reports.
    pub fn status(&self) -> UploadStatus {
        UploadStatus {
            size: self.size,
            checkpoint: self
                .checkpoint
                .as_deref()
                .and_then(|c| hex::decode(c).ok())
                .map(Bytes::from),
        }
    }
}

/// The hidden keys that belong to the upload at `key`.
#[derive(Debug, Clone)]
pub(crate) struct UploadKeys {
    /// The state object: the upload's own key.
    pub state: String,
    /// The multipart upload's object.
    pub data: String,
    /// What every tail segment's key starts with.
    pub tail_prefix: String,
}

impl UploadKeys {
    pub fn new(key: &str) -> UploadKeys {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        let hidden = |kind: &str| {
            if dir.is_empty() {
                format!("{}{kind}-{name}", crate::backend::TEMP_PREFIX)
            } else {
                format!("{dir}/{}{kind}-{name}", crate::backend::TEMP_PREFIX)
            }
        };
        UploadKeys {
            state: key.to_owned(),
            data: hidden("data"),
            tail_prefix: format!("{}-", hidden("tail")),
        }
    }

    /// A new, never used key for a tail segment starting at `offset`.
    fn segment(&self, offset: u64) -> String {
        format!(
            "{}{offset}-{}",
            self.tail_prefix,
            uuid::Uuid::new_v4().simple()
        )
    }
}

/// Reads the state; `None` when there is no such upload. Returns its ETag too.
pub(crate) async fn load(
    client: &S3Client,
    key: &str,
) -> Result<Option<(UploadState, String)>, StorageError> {
    let Some((bytes, info)) = client.get(key).await? else {
        return Ok(None);
    };
    let state = serde_json::from_slice(&bytes).map_err(|_| StorageError::Corrupt {
        key: key.to_owned(),
    })?;
    Ok(Some((state, info.etag)))
}

/// Writes the state: new when `etag` is `None`, else only over that version.
async fn store(
    client: &S3Client,
    key: &str,
    state: &UploadState,
    etag: Option<&str>,
) -> Result<(), StorageError> {
    let body = serde_json::to_vec(state).map_err(|e| StorageError::io(key, e.into()))?;
    let condition = match etag {
        None => PutCondition::None,
        Some(etag) => PutCondition::IfMatch(etag.to_owned()),
    };
    match client.put(key, Bytes::from(body), condition).await? {
        Some(_) => Ok(()),
        None => Err(StorageError::Unavailable {
            key: key.to_owned(),
            reason: "the upload was changed by another request at the same time".into(),
        }),
    }
}

/// Starts an empty upload.
pub(crate) async fn start(client: &S3Client, key: &str) -> Result<(), StorageError> {
    store(client, key, &UploadState::default(), None).await
}

/// The size of the next part: the configured one, grown so that S3's 10,000 parts
/// always reach past what is already stored (a 100 GiB layer still fits).
fn part_target(client: &S3Client, size: u64) -> u64 {
    client.part_size().max(MIN_PART).max(size / (MAX_PARTS / 2))
}

/// Reads the tail segments back, in order (less than one part in all).
async fn read_tail(client: &S3Client, tail: &[Segment]) -> Result<Vec<Bytes>, StorageError> {
    let mut out = Vec::with_capacity(tail.len());
    for segment in tail {
        let (bytes, _) = client
            .get(&segment.key)
            .await?
            .ok_or_else(|| StorageError::Corrupt {
                key: segment.key.clone(),
            })?;
        if bytes.len() as u64 != segment.size {
            return Err(StorageError::Corrupt {
                key: segment.key.clone(),
            });
        }
        out.push(bytes);
    }
    Ok(out)
}

/// Joins buffers into one body.
fn concat(pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() == 1 {
        return pieces.into_iter().next().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in pieces {
        all.extend_from_slice(&piece);
    }
    all.freeze()
}

/// Deletes objects whose loss harms nothing (consumed segments, leftovers); a failure
/// is logged by the caller's next cleanup, never fatal.
async fn forget(client: &S3Client, keys: Vec<String>) {
    if !keys.is_empty() {
        let _ = client.delete_many(&keys).await;
    }
}

/// The writer of one chunk.
#[derive(Debug)]
pub(crate) struct S3UploadWriter {
    client: S3Client,
    keys: UploadKeys,
    state: UploadState,
    etag: String,
    /// New bytes not yet sent as a part, copied out of the request's frames into one
    /// buffer of the part's size: the part is sent without another copy, and the frames
    /// (and the read buffers they share) go as soon as they are copied. Memory per upload
    /// is one part, not the frames plus their concatenation.
    pending: BytesMut,
    /// Segments this writer consumed into a part: deleted after the state names the part.
    consumed: Vec<String>,
    checkpoint: Option<Bytes>,
}

impl S3UploadWriter {
    /// Opens the upload at `key`; `Err(NotFound)` when there is none.
    pub async fn open(client: S3Client, key: &str) -> Result<S3UploadWriter, StorageError> {
        let (state, etag) = load(&client, key)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })?;
        Ok(S3UploadWriter {
            client,
            keys: UploadKeys::new(key),
            state,
            etag,
            pending: BytesMut::new(),
            consumed: Vec::new(),
            checkpoint: None,
        })
    }

    /// Sends the tail and the pending bytes as the next part.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        let upload_id = match &self.state.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self.client.create_multipart(&self.keys.data).await?;
                self.state.multipart = Some(id.clone());
                id
            }
        };
        let mut pieces = read_tail(&self.client, &self.state.tail).await?;
        pieces.push(self.pending.split().freeze());
        let body = concat(pieces);
        let number = u16::try_from(self.state.parts.len() + 1).map_err(|_| {
            StorageError::io(&self.keys.state, std::io::Error::other("too many parts"))
        })?;
        let size = body.len() as u64;
        let etag = self
            .client
            .upload_part(&self.keys.data, &upload_id, number, body)
            .await?;
        self.state.parts.push(Part { number, size, etag });
        self.consumed
            .extend(self.state.tail.drain(..).map(|segment| segment.key));
        Ok(())
    }
}

#[async_trait::async_trait]
impl BackendWriter for S3UploadWriter {
    async fn write(&mut self, mut bytes: Bytes) -> Result<(), StorageError> {
        while !bytes.is_empty() {
            let target = part_target(&self.client, self.state.size);
            let room = target.saturating_sub(self.state.tail_size() + self.pending.len() as u64);
            if room == 0 {
                self.send_part().await?;
                continue;
            }
            if self.pending.is_empty() {
                // One allocation per part, never regrown.
                self.pending
                    .reserve(usize::try_from(room).unwrap_or(usize::MAX));
            }
            let take = usize::try_from(room).map_or(bytes.len(), |room| room.min(bytes.len()));
            self.pending.extend_from_slice(&bytes.split_to(take));
            if take as u64 == room {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    fn set_checkpoint(&mut self, checkpoint: Bytes) {
        self.checkpoint = Some(checkpoint);
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        let total: u64 = self.state.parts.iter().map(|p| p.size).sum::<u64>()
            + self.state.tail_size()
            + self.pending.len() as u64;
        if !self.pending.is_empty() {
            let offset = total - self.pending.len() as u64;
            let key = self.keys.segment(offset);
            let body = self.pending.split().freeze();
            let size = body.len() as u64;
            self.client.put(&key, body, PutCondition::None).await?;
            self.state.tail.push(Segment { key, size });
        }
        self.state.size = total;
        self.state.checkpoint = self.checkpoint.as_deref().map(hex::encode);
        store(
            &self.client,
            &self.keys.state,
            &self.state,
            Some(&self.etag),
        )
        .await?;
        forget(&self.client, std::mem::take(&mut self.consumed)).await;
        Ok(total)
    }

    async fn cancel(self: Box<Self>) -> Result<(), StorageError> {
        // Nothing this writer sent is named by the state: parts are left out of the
        // completion, and the segments it consumed are still the upload's.
        Ok(())
    }
}

/// Completes the upload at `key` into the object `to`, then removes the upload.
pub(crate) async fn finish(client: &S3Client, key: &str, to: &str) -> Result<(), StorageError> {
    let keys = UploadKeys::new(key);
    let (mut state, _) = load(client, key)
        .await?
        .ok_or_else(|| StorageError::NotFound {
            key: key.to_owned(),
        })?;
    match state.multipart.clone() {
        None => {
            // Less than one part: the segments are the whole blob.
            let body = concat(read_tail(client, &state.tail).await?);
            client.put(to, body, PutCondition::None).await?;
        }
        Some(upload_id) => {
            if !state.tail.is_empty() {
                let body = concat(read_tail(client, &state.tail).await?);
                let number = u16::try_from(state.parts.len() + 1)
                    .map_err(|_| StorageError::io(key, std::io::Error::other("too many parts")))?;
                let size = body.len() as u64;
                let etag = client
                    .upload_part(&keys.data, &upload_id, number, body)
                    .await?;
                state.parts.push(Part { number, size, etag });
            }
            let parts: Vec<(u16, String)> = state
                .parts
                .iter()
                .map(|p| (p.number, p.etag.clone()))
                .collect();
            client
                .complete_multipart(&keys.data, &upload_id, &parts)
                .await?;
            client.copy(&keys.data, to, state.size).await?;
        }
    }
    // The blob is in place: the push succeeded whatever happens to the upload's own
    // objects now. Should removing them fail, the state object stays, and the purge of
    // stale uploads cancels the upload (and removes them) later.
    let _ = remove(client, &keys, &state).await;
    Ok(())
}

/// Cancels the upload at `key`; `Ok(false)` when there was none.
pub(crate) async fn cancel(client: &S3Client, key: &str) -> Result<bool, StorageError> {
    let Some((state, _)) = load(client, key).await? else {
        return Ok(false);
    };
    let keys = UploadKeys::new(key);
    if let Some(upload_id) = &state.multipart {
        client.abort_multipart(&keys.data, upload_id).await?;
    }
    remove(client, &keys, &state).await?;
    Ok(true)
}

/// Removes the upload's objects: its data, every tail segment (listed, so that those of
/// writers that never committed go too) and last its state.
async fn remove(
    client: &S3Client,
    keys: &UploadKeys,
    state: &UploadState,
) -> Result<(), StorageError> {
    let mut doomed: Vec<String> = state.tail.iter().map(|s| s.key.clone()).collect();
    doomed.push(keys.data.clone());
    let mut continuation: Option<String> = None;
    loop {
        let page = client
            .list(
                &keys.tail_prefix,
                false,
                None,
                continuation.as_deref(),
                1000,
            )
            .await?;
        doomed.extend(page.objects.into_iter().map(|(key, _, _)| key));
        match page.next {
            Some(next) => continuation = Some(next),
            None => break,
        }
    }
    doomed.sort();
    doomed.dedup();
    client.delete_many(&doomed).await?;
    client.delete(&keys.state).await
}
