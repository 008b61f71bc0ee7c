//! Upload sessions: bytes received so far in `_uploads/<id>`, moved into the shared blob
//! store once the caller has verified their digest.
//!
//! ```text
//! create_upload ──► upload_writer ──► write* ──► commit ──┐   (repeat per PATCH)
//!                        ▲                                │
//!                        └────────────────────────────────┘
//!                                     │
//!        commit_upload(verified digest)   or   cancel_upload
//!                 │                                │
//!     renamed to the blob, linked              deleted
//! ```
//!
//! An upload's start time is in its id ([`UploadId::minted_unix_secs`]), not in a file.
//!
//! The store does not serialise operations on one upload; the server does (one request per
//! upload session at a time), as the spec requires of clients anyway.

use registry_core::{Digest, RepoName, UploadId};

use super::Store;
use crate::backend::{BackendWriter, ByteStream, UploadStatus};
use crate::error::StorageError;
use crate::layout;

impl Store {
    /// Starts an upload: an empty object, not synced
    /// ([`Backend::put_unsynced`](crate::Backend::put_unsynced)): a crash may lose an upload
    /// that has no bytes yet, and its client then starts over; the bytes themselves are
    /// synced by every `commit` of the writer. `id` should come from [`UploadId::mint`], so
    /// that [`Store::purge_uploads`] knows its age.
    pub async fn create_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), StorageError> {
        self.backend
            .upload_start(&layout::upload_data(repo, id))
            .await
    }

    /// Bytes received so far; `None` for an unknown (or finished) upload.
    pub async fn upload_size(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<Option<u64>, StorageError> {
        let status = self.upload_status(repo, id).await?;
        Ok(status.map(|s| s.size))
    }

    /// Bytes received so far and the checkpoint saved with them; `None` for an unknown
    /// (or finished) upload.
    pub async fn upload_status(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<Option<UploadStatus>, StorageError> {
        self.backend
            .upload_status(&layout::upload_data(repo, id))
            .await
    }

    /// Removes every upload that started before `cutoff_unix` (or whose start time is
    /// unknown: an id not minted by [`UploadId::mint`], such as an older version's upload),
    /// with its data. Returns what was removed.
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
                let started = id.minted_unix_secs();
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
        let names = self.backend.upload_list(&layout::uploads_dir(repo)).await?;
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
            .upload_read(&layout::upload_data(repo, id), 0, None)
            .await
    }

    /// At most `len` of the upload's bytes from `offset` (cut at its end), for a reader
    /// that follows an upload while another task writes it: the pull-through cache
    /// serves a blob to clients while fetching it. `Err(NotFound)` once the upload has
    /// been committed or cancelled.
    pub async fn read_upload_range(
        &self,
        repo: &RepoName,
        id: &UploadId,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream, StorageError> {
        self.backend
            .upload_read(&layout::upload_data(repo, id), offset, Some(len))
            .await
    }

    /// Finishes an upload whose bytes the caller verified to hash to `digest`: moves them to
    /// the blob (which ends the upload) and links the blob into `repo`. `Err(NotFound)` for
    /// an unknown upload.
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
            .upload_finish(&layout::upload_data(repo, id), &layout::blob_data(digest))
            .await?;
        self.link_blob(repo, digest).await
    }

    /// Abandons an upload and deletes its bytes. `Ok(false)` when there was no such upload.
    pub async fn cancel_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<bool, StorageError> {
        self.backend
            .upload_cancel(&layout::upload_data(repo, id))
            .await
    }
}
