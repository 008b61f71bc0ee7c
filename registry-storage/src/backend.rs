//! The `Backend` trait: storage-shaped, with no HTTP types and no registry semantics.
//!
//! A dozen operations that a local disk, memory or an object store can all implement:
//! whole small objects (`get`/`put`), a ranged reader, an appending writer that is durable
//! only after `commit`, `stat`, `list`, `rename` and `delete`, and what garbage collection
//! needs to be safe while the registry serves: modification times (`stat`, the paged
//! `list_objects`), `touch`, and `delete_if_older`, which cannot remove an object written
//! or touched after the cutoff, whatever process or replica wrote it. What a blob, tag or
//! upload is lives in [`crate::store`]; where they live lives in [`crate::layout`].
//!
//! Keys are `/`-separated relative strings such as `v1/blobs/sha256/ab/ab12.../data`.
//! Objects are leaves; "directories" are only key prefixes. A prefix exists while some
//! object under it exists, so deleting the last object under a prefix makes the prefix
//! vanish from `list` (the filesystem backend removes emptied directories to match).

use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::error::StorageError;

/// A stream of an object's bytes, read in large chunks so memory stays bounded by the
/// chunk size, never by the object size.
pub type ByteStream = Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Names starting with this prefix are a backend's temporary files: never valid key
/// components, and hidden from [`Backend::list`].
pub const TEMP_PREFIX: &str = ".tmp-";

/// Calls in flight at once for the default [`Backend::delete_many_if_older`] and
/// [`Backend::get_many`]: an object store's round trips overlap, a batch stays bounded.
const CONCURRENT_IN_BATCH: usize = 4;

/// What a backend knows of an object besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, renamed into place or touched: the clock garbage
    /// collection's grace period runs on.
    pub modified: SystemTime,
}

/// One object found by [`Backend::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The object's full key.
    pub key: String,
    /// Its size and modification time.
    pub meta: ObjectMeta,
}

/// What is stored of an upload ([`Backend::upload_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    /// Bytes appended and committed so far.
    pub size: u64,
    /// What the last commit saved with them ([`BackendWriter::set_checkpoint`]), when
    /// the backend keeps it.
    pub checkpoint: Option<Bytes>,
}

/// A place to keep objects by key.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Whole small object (manifests, links, tags); `Ok(None)` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError>;

    /// Atomically creates or replaces a small object: readers see the old or the new value,
    /// never a part of it (fs: temp file in the same dir, write, fsync, rename, fsync dir).
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError>;

    /// Like [`Backend::put`] (atomic: the old or the new value, never a part), but not
    /// necessarily durable when it returns: for bookkeeping a crash may lose without harm,
    /// such as the files that open an upload (a lost upload is answered 404 and the client
    /// starts a new one). It spares the fs backend two fsyncs. The default is `put`.
    async fn put_unsynced(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        self.put(key, value).await
    }

    /// How finely [`ObjectMeta::modified`] and [`Backend::delete_if_older`] tell times
    /// apart: exact by default; a second on S3, whose `Last-Modified` is in whole seconds
    /// and whose conditional delete compares seconds. Garbage collection's "delete only
    /// the version the walk saw" allows this much.
    fn time_resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }

    /// A URL from which a client reads the object at `key` itself, without credentials,
    /// for `expires` from now; `None` when this storage serves no such URLs (files, memory).
    /// What `storage.redirect` answers blob GETs with.
    fn presigned_get(&self, _key: &str, _expires: std::time::Duration) -> Option<String> {
        None
    }

    /// Size and modification time of an object; `Ok(None)` when absent (a prefix is not an
    /// object).
    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError>;

    /// Stream of the object's bytes from `offset`, at most `len` bytes (`None`: to the end).
    /// A range past the end is cut at the end. `Err(NotFound)` when absent.
    async fn read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError>;

    /// Like [`Backend::read`], for an object that is never truncated or rewritten in place
    /// once written, only replaced whole or deleted: blobs. A backend may then serve the
    /// bytes without copying them first (fs: mapped from the page cache). The default is
    /// `read`.
    async fn read_immutable(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.read(key, offset, len).await
    }

    /// A writer that appends to `key`, creating it (and its parents) if absent. The bytes
    /// are durable only after [`BackendWriter::commit`].
    async fn append(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError>;

    /// Like [`Backend::append`], for an object that must exist: `Err(NotFound)` when it
    /// does not, so a writer never brings back an object deleted meanwhile (a cancelled
    /// upload). The default checks first; a backend that can refuse in the same step
    /// spares that round trip.
    async fn append_existing(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        if self.stat(key).await?.is_none() {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        }
        self.append(key).await
    }

    // Uploads: objects built by appending, possibly over many requests that land on
    // different processes or replicas, then moved into place once complete. The
    // defaults keep an upload as one object grown in place (`append_existing`, `rename`);
    // an object store, which can neither append nor rename, keeps a multipart upload
    // and a small state object instead, and overrides all of them. An upload's key
    // is read and written only through these methods.

    /// Starts an empty upload at `key`, not necessarily durable (a lost upload is
    /// answered 404 and its client starts over). The default is an empty
    /// [`Backend::put_unsynced`].
    async fn upload_start(&self, key: &str) -> Result<(), StorageError> {
        self.put_unsynced(key, Bytes::new()).await
    }

    /// The upload's committed size and checkpoint; `Ok(None)` when there is no such
    /// upload. The default is [`Backend::stat`], without a checkpoint.
    async fn upload_status(&self, key: &str) -> Result<Option<UploadStatus>, StorageError> {
        Ok(self.stat(key).await?.map(|meta| UploadStatus {
            size: meta.size,
            checkpoint: None,
        }))
    }

    /// The upload's committed bytes from `offset`, at most `len` (as [`Backend::read`]).
    async fn upload_read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.read(key, offset, len).await
    }

    /// Ends the upload by making its bytes the object `to` (as [`Backend::rename`]:
    /// replacing, new to garbage collection, `Err(NotFound)` for an unknown upload).
    async fn upload_finish(&self, key: &str, to: &str) -> Result<(), StorageError> {
        self.rename(key, to).await
    }

    /// Abandons the upload and its bytes; `Ok(false)` when there was none.
    async fn upload_cancel(&self, key: &str) -> Result<bool, StorageError> {
        self.delete(key).await
    }

    /// Names of the uploads under `prefix` (as [`Backend::list`]).
    async fn upload_list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.list(prefix).await
    }

    /// Names of the immediate children under `prefix` (objects and prefixes), sorted by
    /// bytes, excluding temporary files. `Ok(empty)` when the prefix does not exist.
    /// The empty prefix lists the root.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Atomically moves an object to `to`, replacing any object there. Two clients that
    /// move identical content to the same key at once must both succeed: that is how two
    /// concurrent pushes of one blob finish. `Err(NotFound)` when `from` is absent.
    ///
    /// The moved object's modification time is the time of the move: a blob committed
    /// from an upload whose last bytes came long ago is as new, to garbage collection, as
    /// the push that made it.
    ///
    /// Unlike `delete`, a rename may leave `from`'s prefix behind, empty (the fs backend
    /// keeps the directory): it is where the next upload of the repository goes, and
    /// removing and recreating it per push cost the file system an inode each time.
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError>;

    /// Deletes an object or a whole prefix, recursively. `Ok(false)` when nothing was there.
    async fn delete(&self, key: &str) -> Result<bool, StorageError>;

    /// Every object under `prefix` at any depth (the empty prefix: all), in byte order of
    /// their keys, starting after `start_after`, at most `limit` of them, temporary files
    /// excluded. A page, as an object store lists: walking a large store costs memory for
    /// one page, and the next page starts after the last key of this one.
    async fn list_objects(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectEntry>, StorageError>;

    /// Makes the object's modification time now, without changing its bytes.
    /// `Ok(false)`, creating nothing, when the object is absent. Atomic with respect to
    /// [`Backend::delete_if_older`]: a touch that returns `true` either happened before
    /// the delete looked (which then keeps the object) or the object was not yet deleted.
    async fn touch(&self, key: &str) -> Result<bool, StorageError>;

    /// Deletes the object only if it was last modified before `cutoff`; `Ok(true)` when it
    /// did. A `put`, `rename` or `touch` of the key that lands while this runs either
    /// keeps the object (it looks new) or recreates it after the delete: an object written
    /// or touched after `cutoff` is never lost. This is what lets garbage collection run
    /// beside pushes in other processes and replicas without a lock.
    ///
    /// The deletion is atomic but may not be durable until [`Backend::sync_deletions`]:
    /// garbage collection deletes thousands of objects and makes them durable in one step
    /// where its order matters (links before the data they name).
    async fn delete_if_older(&self, key: &str, cutoff: SystemTime) -> Result<bool, StorageError>;

    /// [`Backend::delete_if_older`] for each `(key, cutoff)`; whether each went, in order.
    /// Garbage collection deletes in batches: a backend that pays per call (the file
    /// system: a hand-off to a blocking thread and back) does a batch in one. The default
    /// runs the deletions a few at a time.
    async fn delete_many_if_older(
        &self,
        batch: Vec<(String, SystemTime)>,
    ) -> Result<Vec<bool>, StorageError> {
        futures::stream::iter(batch)
            .map(|(key, cutoff)| async move { self.delete_if_older(&key, cutoff).await })
            .buffered(CONCURRENT_IN_BATCH)
            .try_collect()
            .await
    }

    /// [`Backend::get`] for each key, in order: whole small objects read in one call
    /// where the backend can (the file system), a few at a time by default.
    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<Bytes>>, StorageError> {
        futures::stream::iter(keys)
            .map(|key| async move { self.get(&key).await })
            .buffered(CONCURRENT_IN_BATCH)
            .try_collect()
            .await
    }

    /// Makes every `delete_if_older` deletion made so far durable. The default does
    /// nothing, for backends whose deletions are durable when they return.
    async fn sync_deletions(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// An appending writer from [`Backend::append`].
///
/// Dropping a writer without `commit` or `cancel` leaves the object holding its old bytes
/// plus an unspecified prefix of the new ones (a disk cannot undo a flushed write from
/// `Drop`); callers that care end every writer explicitly.
#[async_trait::async_trait]
pub trait BackendWriter: Send + std::fmt::Debug {
    /// Appends bytes. Takes `Bytes` so a backend can keep them without copying.
    async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError>;

    /// Flushes and syncs; returns the object's total size.
    async fn commit(self: Box<Self>) -> Result<u64, StorageError>;

    /// Flushes without waiting for the bytes to be durable; returns the object's total
    /// size. The next `commit` of a writer on the same object makes them durable or fails
    /// if they could not be, so an upload's middle chunks end with this and its last
    /// chunk with `commit`. Backends without a cheaper way simply commit.
    async fn commit_unsynced(self: Box<Self>) -> Result<u64, StorageError> {
        self.commit().await
    }

    /// Gives the writer what its `commit` should save with the bytes: the upload's hash
    /// state ([`UploadStatus::checkpoint`]), so that another process or replica can take
    /// the next chunk without reading the upload again. Backends whose uploads are served
    /// by one process (the default) ignore it.
    fn set_checkpoint(&mut self, checkpoint: Bytes) {
        let _ = checkpoint;
    }

    /// Makes every byte written so far readable through [`Backend::read`] of the object,
    /// without waiting for it to be durable; the writer stays open. For a reader that
    /// follows a writer: the pull-through cache serves a blob while fetching it, and one
    /// writer with a flush per segment costs neither a reopen nor a sync per segment.
    /// Whether the bytes are readable now: backends that cannot show part of an object
    /// before its commit (an object store's multipart upload) do nothing and say `false`.
    async fn flush(&mut self) -> Result<bool, StorageError> {
        Ok(false)
    }

    /// Discards what this writer appended: the object returns to the size it had when the
    /// writer was opened. For a request body that failed half way.
    async fn cancel(self: Box<Self>) -> Result<(), StorageError>;
}

/// Checks that `key` is a relative `/`-separated key whose components are all normal:
/// not empty, not `.` or `..`, no backslash or NUL, and not a reserved temporary name.
/// Every backend calls this first, so no key can reach outside its root.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && !c.starts_with(TEMP_PREFIX)
            && !c.contains(['\\', '\0'])
    };
    if key.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// Like [`check_key`], but the empty prefix (the root) is allowed: for `list`.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        Ok(())
    } else {
        check_key(prefix)
    }
}

/// The `[start, end)` window of an object of `size` bytes that a read of `offset`/`len`
/// covers, cut at the end of the object.
pub(crate) fn read_window(size: u64, offset: u64, len: Option<u64>) -> (u64, u64) {
    let start = offset.min(size);
    let end = match len {
        Some(len) => start.saturating_add(len).min(size),
        None => size,
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_refused() {
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a\\b", "a/.tmp-x", "\0",
        ] {
            assert_eq!(
                check_key(bad),
                Err(StorageError::InvalidKey { key: bad.into() }),
                "{bad:?}"
            );
        }
        for good in [
            "a",
            "v1/blobs/sha256/ab/abcd/data",
            "_uploads/x-y_z",
            ".hidden",
        ] {
            assert_eq!(check_key(good), Ok(()), "{good:?}");
        }
        assert_eq!(check_prefix(""), Ok(()));
    }

    #[test]
    fn read_window_cuts_at_the_end() {
        assert_eq!(read_window(10, 0, None), (0, 10));
        assert_eq!(read_window(10, 3, Some(4)), (3, 7));
        assert_eq!(read_window(10, 8, Some(100)), (8, 10));
        assert_eq!(read_window(10, 20, None), (10, 10));
        assert_eq!(read_window(10, 2, Some(u64::MAX)), (2, 10));
    }
}
