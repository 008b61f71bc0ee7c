//! Syncs that outlive the writer that started them.
//!
//! An upload's middle chunks need not be durable before their `202`: only the last one
//! must be, and its `fdatasync` covers every byte of the file. So a chunk ends with
//! [`BackendWriter::commit_unsynced`](crate::BackendWriter::commit_unsynced), which starts
//! the chunk's sync in the background and returns; the disk writes while the client sends
//! the next chunk, and the final sync finds little left to do.
//!
//! A sync's outcome must not be lost: once an `fdatasync` has reported a writeback error,
//! Linux does not report it again through a file opened after that, such as the next
//! chunk's writer, so the last chunk would "succeed" over bytes that never reached the
//! disk. Every background sync is therefore kept here, by path, until the next writer of
//! that file takes it over (and waits for it when that writer ends, so the sync still
//! overlaps the next chunk's bytes; a writer dropped unfinished hands it back) or a
//! rename of the file waits for it. Deleting the
//! file forgets its sync.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::FutureExt;
use tokio::task::JoinHandle;

/// A background sync, or the error of one that failed and was not yet reported.
#[derive(Debug)]
enum Outcome {
    Running(JoinHandle<io::Result<()>>),
    Failed(io::Error),
}

/// The background syncs of one backend, by file path.
#[derive(Debug, Default)]
pub(super) struct PendingSyncs {
    by_path: Mutex<HashMap<PathBuf, Outcome>>,
}

impl PendingSyncs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Outcome>> {
        self.by_path.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `task`, the sync of `path` (whose earlier sync the caller waited for).
    /// Syncs that finished well are forgotten on the way, so the table only holds
    /// running syncs and unreported failures.
    pub(super) fn insert(&self, path: PathBuf, task: JoinHandle<io::Result<()>>) {
        let mut map = self.map();
        map.retain(|_, outcome| {
            let Outcome::Running(task) = outcome else {
                return true;
            };
            if !task.is_finished() {
                return true;
            }
            match task.now_or_never() {
                Some(Ok(Ok(()))) => false,
                Some(Ok(Err(e))) => {
                    *outcome = Outcome::Failed(e);
                    true
                }
                Some(Err(join)) => {
                    *outcome = Outcome::Failed(io::Error::other(join));
                    true
                }
                None => true,
            }
        });
        map.insert(path, Outcome::Running(task));
    }

    /// Takes the sync of `path` over: the running one, if any, or the error of one that
    /// failed (returned once).
    pub(super) fn take(&self, path: &Path) -> io::Result<Option<JoinHandle<io::Result<()>>>> {
        match self.map().remove(path) {
            None => Ok(None),
            Some(Outcome::Running(task)) => Ok(Some(task)),
            Some(Outcome::Failed(e)) => Err(e),
        }
    }

    /// Waits for the sync of `path`, if one is pending, and returns its error once.
    pub(super) async fn wait(&self, path: &Path) -> io::Result<()> {
        match self.take(path)? {
            Some(task) => task.await.unwrap_or_else(|j| Err(io::Error::other(j))),
            None => Ok(()),
        }
    }

    /// Forgets the syncs of `path` and of every file under it: they were deleted, so
    /// whether their bytes reached the disk no longer matters.
    pub(super) fn forget(&self, path: &Path) {
        self.map().retain(|p, _| !p.starts_with(path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync_result(result: io::Result<()>) -> JoinHandle<io::Result<()>> {
        tokio::task::spawn_blocking(move || result)
    }

    #[tokio::test]
    async fn a_failed_sync_is_reported_once_even_after_a_sweep() {
        let syncs = PendingSyncs::default();
        let failing = sync_result(Err(io::Error::other("EIO")));
        while !failing.is_finished() {
            tokio::task::yield_now().await;
        }
        syncs.insert(PathBuf::from("/r/a"), failing);
        // A second insert sweeps finished syncs: the failure must survive it.
        syncs.insert(PathBuf::from("/r/b"), sync_result(Ok(())));
        syncs.insert(PathBuf::from("/r/c"), sync_result(Ok(())));
        assert_eq!(
            syncs
                .wait(Path::new("/r/a"))
                .await
                .map_err(|e| e.to_string()),
            Err("EIO".to_owned())
        );
        assert!(syncs.wait(Path::new("/r/a")).await.is_ok());
        assert!(syncs.wait(Path::new("/r/b")).await.is_ok());
    }

    #[tokio::test]
    async fn deleting_a_tree_forgets_its_syncs() {
        let syncs = PendingSyncs::default();
        syncs.insert(
            PathBuf::from("/r/up/1/data"),
            sync_result(Err(io::Error::other("EIO"))),
        );
        syncs.insert(
            PathBuf::from("/r/upx"),
            sync_result(Err(io::Error::other("EIO"))),
        );
        syncs.forget(Path::new("/r/up"));
        assert!(syncs.wait(Path::new("/r/up/1/data")).await.is_ok());
        assert!(syncs.wait(Path::new("/r/upx")).await.is_err());
    }
}
