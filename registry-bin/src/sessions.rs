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
