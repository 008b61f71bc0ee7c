//! `MemoryBackend`: objects in a sorted map, for tests and for embedders that need no disk.
//!
//! Prefixes are derived from keys, so a prefix vanishes with its last object, as the
//! filesystem backend's emptied directories do. The lock is a `std` one held only for map
//! operations, never across an `.await`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use crate::backend::{
    check_key, check_prefix, read_window, Backend, BackendWriter, ByteStream, ObjectEntry,
    ObjectMeta, TEMP_PREFIX,
};
use crate::error::StorageError;

/// Size of the chunks a read yields, so consumers see the same framing as from disk.
const READ_CHUNK: usize = 1024 * 1024;

/// An object: its bytes and when they were last written or touched.
#[derive(Clone)]
struct Obj {
    bytes: Bytes,
    modified: SystemTime,
}

impl Obj {
    fn new(bytes: Bytes) -> Obj {
        Obj {
            bytes,
            modified: SystemTime::now(),
        }
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.bytes.len() as u64,
            modified: self.modified,
        }
    }
}

type Map = BTreeMap<String, Obj>;

/// An in-memory backend. Clones share the same objects.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    objects: Arc<RwLock<Map>>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("objects", &self.read_map().len())
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    // A panic while holding the lock cannot leave the map half-updated (every update is
    // one map call), so a poisoned lock is still safe to use.
    fn read_map(&self) -> RwLockReadGuard<'_, Map> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_map(&self) -> RwLockWriteGuard<'_, Map> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keys strictly under `prefix` (`prefix/...`), or all keys for the empty prefix.
fn under<'a>(map: &'a Map, prefix: &str) -> impl Iterator<Item = &'a String> {
    let start = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    map.range(start.clone()..)
        .map(|(k, _)| k)
        .take_while(move |k| k.starts_with(&start))
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        check_key(key)?;
        Ok(self.read_map().get(key).map(|o| o.bytes.clone()))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        check_key(key)?;
        self.write_map().insert(key.to_owned(), Obj::new(value));
        Ok(())
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        check_key(key)?;
        Ok(self.read_map().get(key).map(Obj::meta))
    }

    async fn read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        let value = self
            .read_map()
            .get(key)
            .map(|o| o.bytes.clone())
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })?;
        let (start, end) = read_window(value.len() as u64, offset, len);
        // Both are at most value.len(), a usize.
        let (start, end) = (start as usize, end as usize);
        let chunks: Vec<std::io::Result<Bytes>> = (start..end)
            .step_by(READ_CHUNK)
            .map(|at| Ok(value.slice(at..end.min(at + READ_CHUNK))))
            .collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }

    async fn append(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        check_key(key)?;
        Ok(Box::new(MemoryWriter {
            backend: self.clone(),
            key: key.to_owned(),
            chunks: Vec::new(),
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        check_prefix(prefix)?;
        let map = self.read_map();
        let skip = if prefix.is_empty() {
            0
        } else {
            prefix.len() + 1
        };
        // A set: "a/b-c" sorts between "a/b" and "a/b/d", so equal first components are
        // not always adjacent in key order.
        let names: BTreeSet<&str> = under(&map, prefix)
            .filter_map(|k| k.get(skip..)?.split('/').next())
            .filter(|name| !name.starts_with(TEMP_PREFIX))
            .collect();
        Ok(names.into_iter().map(str::to_owned).collect())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        check_key(from)?;
        check_key(to)?;
        let mut map = self.write_map();
        let value = map.remove(from).ok_or_else(|| StorageError::NotFound {
            key: from.to_owned(),
        })?;
        map.insert(to.to_owned(), Obj::new(value.bytes));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        let mut map = self.write_map();
        let nested: Vec<String> = under(&map, key).cloned().collect();
        let mut found = map.remove(key).is_some();
        for k in nested {
            found |= map.remove(&k).is_some();
        }
        Ok(found)
    }

    async fn list_objects(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectEntry>, StorageError> {
        check_prefix(prefix)?;
        let map = self.read_map();
        let start = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        // Start the range at the later of the prefix and `start_after`: a page costs its
        // own length, not a scan of every key before it.
        let lower = match start_after {
            Some(after) if after >= start.as_str() => Bound::Excluded(after.to_owned()),
            _ => Bound::Included(start.clone()),
        };
        Ok(map
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&start))
            .filter(|(k, _)| !k.split('/').any(|c| c.starts_with(TEMP_PREFIX)))
            .take(limit)
            .map(|(k, obj)| ObjectEntry {
                key: k.clone(),
                meta: obj.meta(),
            })
            .collect())
    }

    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        let mut map = self.write_map();
        let Some(obj) = map.get_mut(key) else {
            return Ok(false);
        };
        obj.modified = SystemTime::now();
        Ok(true)
    }

    async fn delete_if_older(&self, key: &str, cutoff: SystemTime) -> Result<bool, StorageError> {
        check_key(key)?;
        // One lock for the look and the removal: nothing can write the key in between.
        let mut map = self.write_map();
        match map.get(key) {
            Some(obj) if obj.modified < cutoff => Ok(map.remove(key).is_some()),
            _ => Ok(false),
        }
    }
}

/// Keeps the appended chunks and adds them to the object in one step on commit or flush, so
/// bytes neither committed nor flushed are never visible.
struct MemoryWriter {
    backend: MemoryBackend,
    key: String,
    chunks: Vec<Bytes>,
}

impl fmt::Debug for MemoryWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryWriter")
            .field("key", &self.key)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl MemoryWriter {
    /// Adds the chunks written so far to the object in one step; returns its size.
    fn append_chunks(&mut self) -> u64 {
        let mut map = self.backend.write_map();
        let old = map
            .get(&self.key)
            .map(|o| o.bytes.clone())
            .unwrap_or_default();
        let total = old.len() + self.chunks.iter().map(Bytes::len).sum::<usize>();
        let mut joined = BytesMut::with_capacity(total);
        joined.extend_from_slice(&old);
        for chunk in self.chunks.drain(..) {
            joined.extend_from_slice(&chunk);
        }
        map.insert(self.key.clone(), Obj::new(joined.freeze()));
        total as u64
    }
}

#[async_trait::async_trait]
impl BackendWriter for MemoryWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        if !bytes.is_empty() {
            self.chunks.push(bytes);
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        Ok(self.append_chunks())
    }

    async fn flush(&mut self) -> Result<bool, StorageError> {
        self.append_chunks();
        Ok(true)
    }

    async fn cancel(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}
