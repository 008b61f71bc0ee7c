//! A manifest delete cut off part way (a crash, a failing disk) must not
//! leave a tag pointing at a manifest that is gone. Found by the crash test
//! (`registry-bin/tests/crash.rs`): SIGKILL during `DELETE /manifests/<digest>`
//! left `tags/list` naming a tag whose manifest answered 404.

use std::sync::Arc;

use bytes::Bytes;
use registry_core::{Algorithm, Digest, RepoName, Tag};
use registry_storage::backend::{ObjectEntry, ObjectMeta};
use registry_storage::{Backend, BackendWriter, ByteStream, MemoryBackend, StorageError, Store};

/// Delegates to memory, but every delete of a key containing `fail` fails,
/// as if the process died there.
#[derive(Debug)]
struct DiesOnDelete {
    inner: MemoryBackend,
    fail: &'static str,
}

#[async_trait::async_trait]
impl Backend for DiesOnDelete {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
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
        if key.contains(self.fail) {
            return Err(StorageError::io(key, std::io::Error::other("died here")));
        }
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
    async fn delete_if_older(
        &self,
        key: &str,
        cutoff: std::time::SystemTime,
    ) -> Result<bool, StorageError> {
        self.inner.delete_if_older(key, cutoff).await
    }
}

#[tokio::test]
async fn a_delete_cut_off_at_the_tags_leaves_every_tag_readable() {
    let store = Store::new(Arc::new(DiesOnDelete {
        inner: MemoryBackend::new(),
        fail: "/_manifests/tags/",
    }));
    let repo: RepoName = "team/app".parse().unwrap();
    let tag: Tag = "v1".parse().unwrap();
    let body = Bytes::from_static(br#"{"schemaVersion":2}"#);
    let digest = Digest::of(Algorithm::Sha256, &body);
    store
        .put_manifest(
            &repo,
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            body,
        )
        .await
        .unwrap();
    store.put_tag(&repo, &tag, &digest).await.unwrap();

    assert!(store.delete_manifest(&repo, &digest, None).await.is_err());

    // Whatever the delete managed, the tag still leads to a manifest.
    let tagged = store.resolve_tag(&repo, &tag).await.unwrap();
    assert_eq!(tagged.as_ref(), Some(&digest));
    assert!(store.get_manifest(&repo, &digest).await.unwrap().is_some());
}
