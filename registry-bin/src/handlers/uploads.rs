//! Blob uploads: start (session, monolithic, mount), chunks, completion,
//! status and cancel.

use http::{HeaderMap, StatusCode};
use registry_auth::Identity;
use registry_core::route::{blob_url, upload_url, UploadStart};
use registry_core::upload::{range_header, UploadSession};
use registry_core::{Algorithm, Digest, ErrorCode, RegistryError, RepoName, UploadId};

use crate::access::may_pull;
use crate::body::{stream_into, RequestBody, StreamError};
use crate::handlers::{content_length, header, noted};
use crate::http_error::{is_storage_full, ApiError, ApiResult};
use crate::notify::Happened;
use crate::registry::Shared;
use crate::reply::Reply;
use crate::sessions::{resync, SessionSlot};

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A new upload id: a UUIDv7 of the clock and 74 random bits (taken from a v4 UUID, so
/// the random source is the one every other id uses).
pub(crate) fn new_id() -> UploadId {
    let random = uuid::Uuid::new_v4().into_bytes();
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&random[6..]);
    UploadId::mint(now_unix_millis(), bits)
}

/// 202 with the headers that tell the client where the upload stands.
fn progress(name: &RepoName, id: &UploadId, size: u64, status: StatusCode) -> Reply {
    Reply::empty(status)
        .header("location", &upload_url(name, id))
        .header("range", &range_header(size))
        .header("docker-upload-uuid", id.as_str())
}

/// 201 for a blob that now exists in `name`.
fn created(name: &RepoName, digest: &Digest) -> Reply {
    Reply::empty(StatusCode::CREATED)
        .header("location", &blob_url(name, digest))
        .header("docker-content-digest", &digest.to_string())
}

/// `POST /v2/<name>/blobs/uploads/` in its three forms.
pub async fn start(
    shared: &Shared,
    identity: &Identity,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    start: &UploadStart,
) -> ApiResult {
    let algorithm = match start {
        UploadStart::Mount { digest, from } => {
            if let Some(reply) = mount(shared, identity, name, digest, from.as_ref()).await? {
                return Ok(reply);
            }
            Algorithm::Sha256
        }
        UploadStart::Monolithic { digest } => {
            return monolithic(shared, headers, body, name, digest).await
        }
        UploadStart::Session { algorithm } => *algorithm,
    };
    let id = new_id();
    shared.store.create_upload(name, &id).await?;
    *shared.sessions.lock(&id).await = Some(UploadSession::new(algorithm));
    Ok(progress(name, &id, 0, StatusCode::ACCEPTED))
}

/// `POST ...?mount=<digest>[&from=<repo>]`: links an existing blob. `None`
/// means "not mountable": the caller then opens a normal session (202).
async fn mount(
    shared: &Shared,
    identity: &Identity,
    name: &RepoName,
    digest: &Digest,
    from: Option<&RepoName>,
) -> Result<Option<Reply>, ApiError> {
    let store = &shared.store;
    let mounted = |size, from: Option<&RepoName>| {
        noted(shared, created(name, digest), || Happened::BlobMounted {
            repository: name.clone(),
            digest: digest.clone(),
            size,
            from: from.cloned(),
        })
    };
    if let Some(size) = store.repo_blob_size(name, digest).await? {
        return Ok(Some(mounted(size, from)));
    }
    let source = match from {
        // Pull permission on `from` was checked with the route.
        Some(from) => store
            .repo_blob_size(from, digest)
            .await?
            .map(|size| (size, from.clone())),
        None => {
            let mut found = None;
            for repo in store.list_repositories().await? {
                let Ok(repo) = repo.parse::<RepoName>() else {
                    continue;
                };
                if !may_pull(shared.authorizer.as_ref(), identity, &repo) {
                    continue;
                }
                if let Some(size) = store.repo_blob_size(&repo, digest).await? {
                    found = Some((size, repo));
                    break;
                }
            }
            found
        }
    };
    let Some((size, source)) = source else {
        return Ok(None);
    };
    store.link_blob(name, digest).await?;
    Ok(Some(mounted(size, Some(&source))))
}

/// `POST ...?digest=<digest>` with the whole blob as the body.
async fn monolithic(
    shared: &Shared,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    digest: &Digest,
) -> ApiResult {
    let id = new_id();
    shared.store.create_upload(name, &id).await?;
    let mut slot = shared.sessions.lock(&id).await;
    *slot = Some(UploadSession::new(digest.algorithm()));
    let result = match write_chunk(shared, &mut slot, headers, body, name, &id, Chunk::Last).await {
        Ok(()) => complete(shared, &mut slot, name, &id, digest).await,
        Err(e) => Err(e),
    };
    finish_or_discard(shared, name, &id, result).await
}

/// Forgets the session; when `result` is an error, also removes the upload,
/// so a failed one-shot push or a digest mismatch leaves nothing behind.
async fn finish_or_discard(
    shared: &Shared,
    name: &RepoName,
    id: &UploadId,
    result: ApiResult,
) -> ApiResult {
    shared.sessions.remove(id);
    if result.is_err() {
        if let Err(e) = shared.store.cancel_upload(name, id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove a failed upload");
        }
    }
    result
}

/// Loads the session of `id` in `name`, rebuilt from storage if needed.
async fn load(
    shared: &Shared,
    slot: &mut SessionSlot,
    name: &RepoName,
    id: &UploadId,
    algorithm: Option<Algorithm>,
) -> Result<u64, ApiError> {
    let status = shared
        .store
        .upload_status(name, id)
        .await?
        .ok_or(ErrorCode::BlobUploadUnknown)?;
    let size = status.size;
    resync(slot, &shared.store, name, id, status, algorithm).await?;
    Ok(size)
}

/// Whether a chunk's bytes must be on disk before its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// A `PATCH`: a later chunk's sync covers it, so its own runs in the background.
    Middle,
    /// The chunk before the `201`: everything the upload holds is made durable.
    Last,
}

/// Checks a chunk's headers and streams its body into the upload.
async fn write_chunk(
    shared: &Shared,
    slot: &mut SessionSlot,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    id: &UploadId,
    chunk: Chunk,
) -> Result<(), ApiError> {
    let Some(session) = slot.as_mut() else {
        return Err(ErrorCode::BlobUploadUnknown.into());
    };
    let plan = session
        .begin_chunk(header(headers, "content-range"), content_length(headers))
        .map_err(|e| {
            if e.status == 416 {
                ApiError::WithHeaders(
                    e,
                    vec![
                        ("location", upload_url(name, id)),
                        ("range", range_header(session.offset())),
                        ("docker-upload-uuid", id.to_string()),
                    ],
                )
            } else {
                e.into()
            }
        })?;
    let mut writer = shared.store.upload_writer(name, id).await?;
    let streamed = stream_into(body, writer.as_mut(), session, shared.body_timeout).await;
    writer.set_checkpoint(session.checkpoint().into());
    // Commit what arrived even when the body broke off, so the stored bytes
    // and the session's hash stay equal and the client can resume.
    let committed = match chunk {
        Chunk::Middle => writer.commit_unsynced().await,
        Chunk::Last => writer.commit().await,
    };
    let full = match (&streamed, &committed) {
        (Err(StreamError::Storage(e)), _) | (_, Err(e)) => is_storage_full(e),
        _ => false,
    };
    if full {
        // A full disk: give the partial upload's space back at once; the
        // client starts over once space is freed.
        **slot = None;
        if let Err(e) = shared.store.cancel_upload(name, id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove an upload after a full disk");
        }
    }
    let moved = streamed?;
    committed?;
    plan.check_received(moved)?;
    Ok(())
}

/// Verifies the digest and turns the upload into a blob of `name`; records the upload's
/// duration (from the time in its id) in the metrics.
async fn complete(
    shared: &Shared,
    slot: &mut SessionSlot,
    name: &RepoName,
    id: &UploadId,
    digest: &Digest,
) -> ApiResult {
    let session = slot.take().ok_or(ErrorCode::BlobUploadUnknown)?;
    let size = session.offset();
    let verified = session.finish(digest)?;
    shared.store.commit_upload(name, id, &verified).await?;
    if let Some(started) = id.minted_unix_secs() {
        let took = (now_unix_millis() / 1000).saturating_sub(started);
        shared
            .metrics
            .upload_completed(std::time::Duration::from_secs(took));
    }
    let reply = created(name, &verified);
    Ok(noted(shared, reply, || Happened::BlobPushed {
        repository: name.clone(),
        digest: verified,
        size,
    }))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: one chunk, with or without
/// `Content-Range`; 416 when it does not start at the current offset.
pub async fn patch(
    shared: &Shared,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    id: &UploadId,
) -> ApiResult {
    let mut slot = shared.sessions.lock(id).await;
    load(shared, &mut slot, name, id, None).await?;
    let result = write_chunk(shared, &mut slot, headers, body, name, id, Chunk::Middle).await;
    let offset = slot.as_ref().map_or(0, UploadSession::offset);
    if result.is_err() {
        // Storage decides the offset after a failure; re-read on next use.
        *slot = None;
    }
    result.map(|()| progress(name, id, offset, StatusCode::ACCEPTED))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=<digest>` with an optional
/// last chunk. A mismatch answers DIGEST_INVALID and discards the upload.
pub async fn put(
    shared: &Shared,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    id: &UploadId,
    digest: &Digest,
) -> ApiResult {
    let mut slot = shared.sessions.lock(id).await;
    load(shared, &mut slot, name, id, Some(digest.algorithm())).await?;
    if let Err(e) = write_chunk(shared, &mut slot, headers, body, name, id, Chunk::Last).await {
        // A bad or broken last chunk leaves the upload resumable.
        *slot = None;
        return Err(e);
    }
    let result = complete(shared, &mut slot, name, id, digest).await;
    finish_or_discard(shared, name, id, result).await
}

/// `GET /v2/<name>/blobs/uploads/<id>`: 204 with the current `Range`.
pub async fn status(shared: &Shared, name: &RepoName, id: &UploadId) -> ApiResult {
    let size = shared
        .store
        .upload_size(name, id)
        .await?
        .ok_or(ErrorCode::BlobUploadUnknown)?;
    Ok(progress(name, id, size, StatusCode::NO_CONTENT))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: cancels the upload.
pub async fn cancel(shared: &Shared, name: &RepoName, id: &UploadId) -> ApiResult {
    let _slot = shared.sessions.lock(id).await;
    let cancelled = shared.store.cancel_upload(name, id).await?;
    shared.sessions.remove(id);
    if cancelled {
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    } else {
        Err(RegistryError::new(ErrorCode::BlobUploadUnknown).into())
    }
}
