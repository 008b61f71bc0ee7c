//! Upload sessions kept between requests.
//!
//! The running hash of an upload lives in memory so a `PATCH` never re-reads
//! earlier chunks. Storage stays the source of truth: when the process
//! restarted, or a request broke off, or another replica took a chunk, the
//! session's offset differs from the stored size. The hash then continues from
//! the checkpoint stored with the upload when the backend keeps one (object
//! storage, where every chunk may land on another replica: no re-read at all),
//! and is otherwise rebuilt by reading the stored bytes once. Each session has its own async lock, so two
//! requests on one upload cannot interleave their bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use registry_core::upload::UploadSession;
use registry_core::{Algorithm, RepoName, UploadId};
use registry_storage::{StorageError, Store, UploadStatus};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A locked slot: `None` until the session is loaded.
pub type SessionSlot = OwnedMutexGuard<Option<UploadSession>>;

/// All sessions this process has seen, by upload id.
#[derive(Debug, Default)]
pub struct SessionTable {
    slots: Mutex<HashMap<UploadId, Arc<AsyncMutex<Option<UploadSession>>>>>,
}

impl SessionTable {
    /// Locks the slot of `id`, creating an empty one if needed.
    pub async fn lock(&self, id: &UploadId) -> SessionSlot {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(slots.entry(id.clone()).or_default())
        };
        slot.lock_owned().await
    }

    /// Number of uploads this process has open.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no upload is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every upload that started before `cutoff_unix` (or at an unknown time):
    /// the purge of stale uploads removes them from storage, and an upload finished on
    /// another replica sharing the storage is never removed here otherwise.
    pub fn forget_started_before(&self, cutoff_unix: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|id, _| id.minted_unix_secs().is_some_and(|t| t >= cutoff_unix));
    }

    /// Forgets a finished or cancelled upload.
    pub fn remove(&self, id: &UploadId) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(id);
    }
}

/// Returns a session whose offset equals the stored size of the upload and
/// whose algorithm is `algorithm` (or the session's own when `None`): the
/// cached one, else the stored checkpoint, else re-hashing the stored bytes.
pub async fn resync(
    slot: &mut SessionSlot,
    store: &Store,
    repo: &RepoName,
    id: &UploadId,
    stored: UploadStatus,
    algorithm: Option<Algorithm>,
) -> Result<(), StorageError> {
    let fits = |s: &UploadSession| {
        s.offset() == stored.size && algorithm.is_none_or(|a| a == s.algorithm())
    };
    if slot.as_ref().is_some_and(fits) {
        return Ok(());
    }
    let restored = stored
        .checkpoint
        .as_deref()
        .and_then(|c| UploadSession::restore(c).ok())
        .filter(fits);
    if let Some(session) = restored {
        **slot = Some(session);
        return Ok(());
    }
    let algorithm = algorithm
        .or_else(|| slot.as_ref().map(UploadSession::algorithm))
        .unwrap_or(Algorithm::Sha256);
    let mut session = UploadSession::new(algorithm);
    if stored.size == 0 {
        // Nothing to read (and an object store could not read it anyway).
        **slot = Some(session);
        return Ok(());
    }
    let mut stream = store.read_upload(repo, id).await?;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| StorageError::io(id.as_str(), e))?
    {
        session.absorb(&chunk);
    }
    **slot = Some(session);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_of_uploads_older_than_the_cutoff_are_forgotten() {
        let table = SessionTable::default();
        let old = UploadId::mint(1_000_000, [1; 10]);
        let new = UploadId::mint(5_000_000, [2; 10]);
        let unknown = UploadId::parse("not-minted").expect("valid id");
        for id in [&old, &new, &unknown] {
            drop(table.lock(id).await);
        }
        assert_eq!(table.len(), 3);
        table.forget_started_before(2_000);
        assert_eq!(
            table.len(),
            1,
            "only the upload started after the cutoff stays"
        );
        table.remove(&new);
        assert!(table.is_empty());
    }
}
