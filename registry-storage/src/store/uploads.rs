//! Upload sessions: bytes received so far under `_uploads/<id>`, moved into the shared blob
//! store once the caller has verified their digest.
//!
//! ```text
//! create_upload ──► upload_writer ──► write* ──► commit ──┐   (repeat per PATCH)
//!                        ▲                                │
//!                        └────────────────────────────────┘
//!                                     │
//!        commit_upload(verified digest)   or   cancel_upload
//!                 │                                │
//!     data renamed to the blob (or dropped     upload dir deleted
//!     if the blob exists), linked, dir deleted
//! ```
//!
//! The store does not serialise operations on one upload; the server does (one request per
//! upload session at a time), as the spec requires of clients anyway.

use bytes::Bytes;
use registry_core::{Digest, RepoName, UploadId};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::backend::{BackendWriter, ByteStream};
use crate::error::StorageError;
use crate::layout;

/// Content of `startedat`: when the upload began, so stale uploads can be expired.
#[derive(Serialize, Deserialize)]
struct StartedAt {
    started: u64,
}

impl Store {
    /// Starts an upload: writes `startedat`, then an empty `data` (an upload exists once its
    /// data does, so `startedat` is always there for an existing upload). Neither is synced
    /// ([`Backend::put_unsynced`](crate::Backend::put_unsynced)): a crash may lose an upload
    /// that has no bytes yet, and its client then starts over; the bytes themselves are
    /// synced by every `commit` of the writer.
    pub async fn create_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        now_unix: u64,
    ) -> Result<(), StorageError> {
        let key = layout::upload_started_at(repo, id);
        let info = serde_json::to_vec(&StartedAt { started: now_unix })
            .map_err(|_| StorageError::Corrupt { key: key.clone() })?;
        self.backend.put_unsynced(&key, Bytes::from(info)).await?;
        self.backend
            .put_unsynced(&layout::upload_data(repo, id), Bytes::new())
            .await
    }

    /// Bytes received so far; `None` for an unknown (or finished) upload.
    pub async fn upload_size(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<Option<u64>, StorageError> {
        self.backend.stat(&layout::upload_data(repo, id)).await
    }

    /// When the upload started (`now_unix` given to `create_upload`); `None` when unknown.
    pub async fn upload_started_at(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<Option<u64>, StorageError> {
        let key = layout::upload_started_at(repo, id);
        match self.backend.get(&key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice::<StartedAt>(&bytes)
                .map(|s| Some(s.started))
                .map_err(|_| StorageError::Corrupt { key }),
        }
    }

    /// Removes every upload that started before `cutoff_unix` (or whose start
    /// time is unreadable), with its data. Returns what was removed.
    pub async fn purge_uploads(
        &self,
        cutoff_unix: u64,
    ) -> Result<Vec<(RepoName, UploadId)>, StorageError> {
        let mut purged = Vec::new();
        for name in self.repositories_with_uploads().await? {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            for id in self.list_uploads(&repo).await? {
                let started = self.upload_started_at(&repo, &id).await.ok().flatten();
                if started.is_none_or(|t| t < cutoff_unix) && self.cancel_upload(&repo, &id).await?
                {
                    purged.push((repo.clone(), id));
                }
            }
        }
        Ok(purged)
    }

    /// Ids of the repository's uploads in progress, sorted; entries that are not valid ids
    /// are skipped (nothing the store writes).
    pub async fn list_uploads(&self, repo: &RepoName) -> Result<Vec<UploadId>, StorageError> {
        let names = self.backend.list(&layout::uploads_dir(repo)).await?;
        Ok(names.iter().filter_map(|n| UploadId::parse(n)).collect())
    }

    /// A writer appending to the upload's data. `Err(NotFound)` for an unknown upload, so a
    /// PATCH to a cancelled or finished upload does not resurrect it.
    pub async fn upload_writer(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<Box<dyn BackendWriter>, StorageError> {
        self.backend
            .append_existing(&layout::upload_data(repo, id))
            .await
    }

    /// All the upload's bytes, to rebuild the hash state after a restart.
    pub async fn read_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<ByteStream, StorageError> {
        self.backend
            .read(&layout::upload_data(repo, id), 0, None)
            .await
    }

    /// Finishes an upload whose bytes the caller verified to hash to `digest`: moves them to
    /// the blob, links the blob into `repo` and removes the upload. `Err(NotFound)` for an
    /// unknown upload.
    ///
    /// The bytes are renamed into place even when the blob already exists: they are the
    /// same bytes (the digest says so), the rename is atomic, and a reader of the old file
    /// keeps its inode. Asking first would cost every new blob, the common case (clients
    /// `HEAD` before they push), one more storage round trip. Concurrent pushes of one
    /// blob therefore all succeed, the last rename winning.
    pub async fn commit_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        // Refused with NotFound (naming the upload's data) when the upload is gone.
        self.backend
            .rename(&layout::upload_data(repo, id), &layout::blob_data(digest))
            .await?;
        // Independent once the data is in place: link and clean up at once.
        let upload_dir = layout::upload_dir(repo, id);
        futures::future::try_join(
            self.link_blob(repo, digest),
            self.backend.delete(&upload_dir),
        )
        .await?;
        Ok(())
    }

    /// Abandons an upload and deletes its bytes. `Ok(false)` when there was no such upload.
    pub async fn cancel_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<bool, StorageError> {
        self.backend.delete(&layout::upload_dir(repo, id)).await
    }
}
