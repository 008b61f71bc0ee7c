//! Moving one blob into the store, verified: copied through an upload, or hard-linked
//! into an upload's place, hashed once either way, and committed only when it hashes to
//! its digest.
//!
//! Both ways go through an upload of the store (`_uploads/<id>`), so the bytes reach
//! `blobs/` by the same rename a push ends with, and only verified bytes ever do. An
//! import killed part way leaves at most one upload per blob in flight, which the
//! registry's purge of stale uploads removes like any abandoned push.

use futures::StreamExt;
use registry_core::{BlobHasher, Digest, RepoName, UploadId};

use super::distribution::Distribution;
use super::error::ImportError;
use super::report::{Progress, SkipReason};
use crate::error::StorageError;
use crate::fs::FsBackend;
use crate::layout;
use crate::store::Store;

/// How blob bytes reach the store.
#[derive(Debug, Clone)]
pub enum Transfer {
    /// Read from the source and written: works across file systems and backends.
    Copy,
    /// Hard-linked from the source into this file system backend (the one the store
    /// writes to), then read once to verify: no byte written, both storages share the
    /// files. Only within one file system.
    HardLink(FsBackend),
}

/// What became of one blob.
pub(super) enum Outcome {
    /// Written by this run; its size.
    Imported(u64),
    /// Left out.
    Skipped(SkipReason),
}

/// Brings `digest` into the store through an upload in `repo` (which the blob is then
/// linked into), verifying it on the way.
pub(super) async fn import(
    store: &Store,
    source: &Distribution,
    transfer: &Transfer,
    repo: &RepoName,
    digest: &Digest,
    id: UploadId,
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    let target = ImportError::Target;
    match transfer {
        Transfer::Copy => {
            store.create_upload(repo, &id).await.map_err(target)?;
            let mut writer = store.upload_writer(repo, &id).await.map_err(target)?;
            let mut bytes = match source.read_blob(digest).await {
                Ok(stream) => stream,
                Err(e) => {
                    writer.cancel().await.map_err(target)?;
                    store.cancel_upload(repo, &id).await.map_err(target)?;
                    return Ok(Outcome::Skipped(unreadable(e)));
                }
            };
            let mut hasher = BlobHasher::new(digest.algorithm());
            while let Some(chunk) = bytes.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        writer.cancel().await.map_err(target)?;
                        store.cancel_upload(repo, &id).await.map_err(target)?;
                        return Ok(Outcome::Skipped(SkipReason::BlobUnreadable {
                            error: e.to_string(),
                        }));
                    }
                };
                hasher.update(&chunk);
                progress.add_bytes(chunk.len() as u64);
                writer.write(chunk).await.map_err(target)?;
            }
            writer.commit().await.map_err(target)?;
            finish(store, repo, digest, &id, hasher).await
        }
        Transfer::HardLink(fs) => {
            let key = layout::upload_data(repo, &id);
            match fs.hard_link_from(&source.blob_path(digest), &key).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => return Ok(Outcome::Skipped(SkipReason::BlobMissing)),
                // Not the blob's fault (a permission, `fs.protected_hardlinks`): stop.
                Err(e) => return Err(target(e)),
            }
            // Hash the file now named in our store: exactly the bytes that stay.
            let mut bytes = store.read_upload(repo, &id).await.map_err(target)?;
            let mut hasher = BlobHasher::new(digest.algorithm());
            while let Some(chunk) = bytes.next().await {
                match chunk {
                    Ok(chunk) => {
                        hasher.update(&chunk);
                        progress.add_bytes(chunk.len() as u64);
                    }
                    Err(e) => {
                        store.cancel_upload(repo, &id).await.map_err(target)?;
                        return Ok(Outcome::Skipped(SkipReason::BlobUnreadable {
                            error: e.to_string(),
                        }));
                    }
                }
            }
            finish(store, repo, digest, &id, hasher).await
        }
    }
}

/// Commits the upload if it hashed to `digest`, cancels it otherwise.
async fn finish(
    store: &Store,
    repo: &RepoName,
    digest: &Digest,
    id: &UploadId,
    hasher: BlobHasher,
) -> Result<Outcome, ImportError> {
    let size = hasher.len();
    match hasher.verify(digest) {
        Ok(_) => {
            store
                .commit_upload(repo, id, digest)
                .await
                .map_err(ImportError::Target)?;
            Ok(Outcome::Imported(size))
        }
        Err(mismatch) => {
            store
                .cancel_upload(repo, id)
                .await
                .map_err(ImportError::Target)?;
            Ok(Outcome::Skipped(SkipReason::BlobCorrupt {
                actual: mismatch.actual,
            }))
        }
    }
}

/// A source blob that cannot be opened: missing, or another error worth naming.
fn unreadable(e: StorageError) -> SkipReason {
    if is_not_found(&e) {
        SkipReason::BlobMissing
    } else {
        SkipReason::BlobUnreadable {
            error: e.to_string(),
        }
    }
}

/// A missing file, however the backend said so.
fn is_not_found(e: &StorageError) -> bool {
    match e {
        StorageError::NotFound { .. } => true,
        StorageError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}
