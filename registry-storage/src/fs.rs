//! `FsBackend`: objects as files under a root directory.
//!
//! Key `a/b/c` is the file `<root>/a/b/c`; keys are checked first ([`check_key`]), so no
//! key reaches outside the root. How each operation stays safe on a crash or a race:
//! - `put` writes a temp file (`.tmp-<uuid>`) in the target's directory, fsyncs it, renames
//!   it over the target and fsyncs the directory: readers see the old or the new object.
//!   Directories created on the way are fsynced in their parents too (`put`, `rename`,
//!   `append` + `commit`), so a synced object never hangs off a directory entry a crash
//!   could lose.
//! - `rename` is one `rename(2)`, atomic and replacing, so two pushes of one blob that move
//!   identical bytes to the same path both succeed.
//! - `delete` removes the file or tree, then the directories it left empty (up to the
//!   root), so a prefix exists exactly while it holds objects, as in the memory backend.
//!   Operations that create files retry when such a cleanup removes their fresh directory.
//! - `append` buffers about 1 MiB before each `writev`, writes while the caller receives
//!   the next frames, starts each batch's write to the disk at once (`sync_file_range`,
//!   not waiting) and fsyncs on `commit`.
//!   `commit_unsynced` leaves its last sync running; the next writer of that file takes
//!   it over, and a `rename` of the file waits for it.
//!
//! All file IO runs on tokio's blocking pool, never on an async worker.
//!
//! # Layout
//! - this file: `FsBackend` and the `Backend` impl.
//! - `blocking.rs`: the synchronous file operations.
//! - `aging.rs`: what garbage collection needs: times, the paged walk, touch, and
//!   `delete_if_older`, exact against writers in other processes.
//! - `reader.rs`: the chunked read stream, copied or (for blobs) mapped.
//! - `writer.rs`: the buffered appending writer.
//! - `syncs.rs`: the background syncs left running by `commit_unsynced`.

mod aging;
mod blocking;
mod reader;
mod syncs;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use self::reader::Chunks;
use crate::backend::{
    check_key, check_prefix, Backend, BackendWriter, ByteStream, ObjectEntry, ObjectMeta,
};
use crate::error::StorageError;

/// Directory syncs of [`Backend::sync_deletions`] in flight at once.
const CONCURRENT_SYNCS: usize = 16;

/// A backend storing objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: Arc<Path>,
    syncs: Arc<syncs::PendingSyncs>,
    /// Directories of `delete_if_older` removals not yet synced (`sync_deletions`).
    unsynced_deletions: Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

impl FsBackend {
    /// A backend rooted at `root`, without touching the disk; directories are created as
    /// objects are written. Use [`FsBackend::open`] to check the root at startup.
    pub fn new(root: impl Into<PathBuf>) -> FsBackend {
        FsBackend {
            root: Arc::from(root.into()),
            syncs: Arc::default(),
            unsynced_deletions: Arc::default(),
        }
    }

    /// Creates `root` if needed and checks that it is a writable directory, so a bad
    /// configuration fails at startup rather than on the first push.
    pub async fn open(root: impl Into<PathBuf>) -> Result<FsBackend, StorageError> {
        let backend = FsBackend::new(root);
        let root = backend.root.clone();
        run_blocking(&root.display().to_string(), move || {
            blocking::check_root(&root)
        })
        .await?;
        Ok(backend)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the file `source`, outside the root, the new object `key` by a hard link: no
    /// byte is copied and both names share the file from then on. For imports from
    /// another storage on the same file system; `key` must not exist yet. Fails with the
    /// system's error, `EXDEV` across file systems.
    pub async fn hard_link_from(&self, source: &Path, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let source = source.to_path_buf();
        run_blocking(key, move || blocking::hard_link(&source, &path)).await
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn open_writer(
        &self,
        key: &str,
        create: bool,
    ) -> Result<Box<dyn BackendWriter>, StorageError> {
        let path = self.path(key)?;
        let (root, syncs) = (self.root.clone(), self.syncs.clone());
        let writer = writer::FsWriter::open(key, root, path, syncs, create).await?;
        Ok(Box::new(writer))
    }
}

/// Runs blocking file IO on tokio's blocking pool; errors carry `key`.
pub(crate) async fn run_blocking<T, F>(key: &str, f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StorageError::io(key, e)),
        Err(join) => Err(StorageError::io(key, io::Error::other(join))),
    }
}

/// Runs `op` on each item, in order, in one blocking task (a hand-off to the blocking
/// pool per file cost more than the file operation), stopping at the first error: the
/// items back, the results before the error, and the error.
async fn run_batch<I, T, F>(
    items: Vec<I>,
    op: F,
) -> Result<(Vec<I>, Vec<T>, Option<io::Error>), StorageError>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(&I) -> io::Result<T> + Send + 'static,
{
    let done = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            match op(item) {
                Ok(value) => out.push(value),
                Err(e) => return (items, out, Some(e)),
            }
        }
        (items, out, None)
    })
    .await;
    done.map_err(|join| StorageError::io("a batch of file operations", io::Error::other(join)))
}

#[async_trait::async_trait]
impl Backend for FsBackend {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let path = self.path(key)?;
        let value = run_blocking(key, move || blocking::read_small(&path)).await?;
        Ok(value.map(Bytes::from))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        run_blocking(key, move || {
            blocking::put_atomic(&root, &path, &value, true)
        })
        .await
    }

    async fn put_unsynced(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        run_blocking(key, move || {
            blocking::put_atomic(&root, &path, &value, false)
        })
        .await
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(key)?;
        run_blocking(key, move || aging::stat(&path)).await
    }

    async fn read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        reader::open(key, path, offset, len, Chunks::Copied).await
    }

    async fn read_immutable(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        reader::open(key, path, offset, len, Chunks::Mapped).await
    }

    async fn append(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        self.open_writer(key, true).await
    }

    async fn append_existing(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        self.open_writer(key, false).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        check_prefix(prefix)?;
        let path = self.root.join(prefix);
        run_blocking(prefix, move || blocking::list(&path)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (from_path, to_path) = (self.path(from)?, self.path(to)?);
        self.syncs
            .wait(&from_path)
            .await
            .map_err(|e| StorageError::io(from, e))?;
        let moved = run_blocking(to, move || blocking::rename(&from_path, &to_path)).await?;
        if moved {
            Ok(())
        } else {
            Err(StorageError::NotFound {
                key: from.to_owned(),
            })
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        self.syncs.forget(&path);
        let root = self.root.clone();
        run_blocking(key, move || blocking::delete(&root, &path)).await
    }

    async fn list_objects(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectEntry>, StorageError> {
        check_prefix(prefix)?;
        let path = self.root.join(prefix);
        let (prefix, start_after) = (prefix.to_owned(), start_after.map(str::to_owned));
        run_blocking(&prefix.clone(), move || {
            aging::list_objects(&path, &prefix, start_after.as_deref(), limit)
        })
        .await
    }

    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        run_blocking(key, move || aging::touch(&path)).await
    }

    async fn delete_if_older(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<bool, StorageError> {
        let mut deleted = self
            .delete_many_if_older(vec![(key.to_owned(), cutoff)])
            .await?;
        Ok(deleted.pop().unwrap_or(false))
    }

    async fn delete_many_if_older(
        &self,
        batch: Vec<(String, std::time::SystemTime)>,
    ) -> Result<Vec<bool>, StorageError> {
        let mut paths = Vec::with_capacity(batch.len());
        for (key, cutoff) in &batch {
            let path = self.path(key)?;
            self.syncs.forget(&path);
            paths.push((path, *cutoff));
        }
        let root = self.root.clone();
        // Deletions made before a failure are still recorded for the sync.
        let (paths, deleted, failed) = run_batch(paths, move |(path, cutoff)| {
            aging::delete_if_older(&root, path, *cutoff)
        })
        .await?;
        self.unsynced_deletions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(
                paths
                    .iter()
                    .zip(&deleted)
                    .filter(|(_, went)| **went)
                    .filter_map(|((path, _), _)| path.parent().map(Path::to_path_buf)),
            );
        match failed {
            Some(e) => Err(StorageError::io(&batch[deleted.len()].0, e)),
            None => Ok(deleted),
        }
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<Bytes>>, StorageError> {
        let paths = keys
            .iter()
            .map(|key| self.path(key))
            .collect::<Result<Vec<_>, _>>()?;
        let (_, values, failed) = run_batch(paths, |path| blocking::read_small(path)).await?;
        match failed {
            Some(e) => Err(StorageError::io(&keys[values.len()], e)),
            None => Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect()),
        }
    }

    async fn sync_deletions(&self) -> Result<(), StorageError> {
        let mut dirs: Vec<PathBuf> = std::mem::take(
            &mut *self
                .unsynced_deletions
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
        .into_iter()
        .collect();
        // Sorted, so the directories under one parent (which a pruned directory's sync
        // falls back to) land in one task and that parent is synced once.
        dirs.sort();
        // Each directory sync waits for the disk (a cache flush where the file system has
        // no journal): thousands of them overlap in a few blocking tasks.
        let per_task = dirs.len().div_ceil(CONCURRENT_SYNCS).max(1);
        let syncs = dirs.chunks(per_task).map(|dirs| {
            let (root, dirs) = (self.root.clone(), dirs.to_vec());
            run_blocking("sync of deleted objects' directories", move || {
                aging::sync_deletions(&root, &dirs)
            })
        });
        futures::future::try_join_all(syncs).await?;
        Ok(())
    }
}
