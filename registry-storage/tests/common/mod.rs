//! A memory backend with hooks before `get` and `delete`, for tests that make storage
//! fail or change at one precise step (a crash part way, a client racing a pass).
//! Everything else goes straight to the memory backend.

use std::time::SystemTime;

use bytes::Bytes;
use registry_storage::backend::{ObjectEntry, ObjectMeta};
use registry_storage::{Backend, BackendWriter, ByteStream, MemoryBackend, StorageError};

/// What a test does before the inner backend answers.
pub trait Hooks: Send + Sync + std::fmt::Debug + 'static {
    /// Before a `get` of `key` (may change `inner` first).
    fn before_get(&self, _key: &str, _inner: &MemoryBackend) -> Result<(), StorageError> {
        Ok(())
    }
    /// Before a `delete` of `key`; an error is the delete's answer.
    fn before_delete(&self, _key: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

/// [`MemoryBackend`] with [`Hooks`].
#[derive(Debug)]
pub struct Hooked<H> {
    pub inner: MemoryBackend,
    pub hooks: H,
}

#[async_trait::async_trait]
impl<H: Hooks> Backend for Hooked<H> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        self.hooks.before_get(key, &self.inner)?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, value).await
    }
    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        self.inner.stat(key).await
    }
    async fn read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.inner.read(key, offset, len).await
    }
    async fn append(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        self.inner.append(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.inner.rename(from, to).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        self.hooks.before_delete(key)?;
        self.inner.delete(key).await
    }
    async fn list_objects(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectEntry>, StorageError> {
        self.inner.list_objects(prefix, start_after, limit).await
    }
    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.touch(key).await
    }
    async fn delete_if_older(&self, key: &str, cutoff: SystemTime) -> Result<bool, StorageError> {
        self.inner.delete_if_older(key, cutoff).await
    }
}
