//! `Store`: the registry's storage semantics, written once over any [`Backend`].
//!
//! What the store guarantees, whatever the backend:
//! - Blob bytes are shared by all repositories, but a blob is visible in a repository only
//!   once linked there (`_layers`), so one repository cannot read another's blobs by digest.
//! - Links are written after the data they point at, so a crash leaves at worst unlinked
//!   data (for garbage collection), never a link to nothing.
//! - Manifests are kept as the exact bytes received, under their digest.
//! - Everything read back is re-validated: a tag file that does not hold a digest is
//!   [`StorageError::Corrupt`], never trusted.
//!
//! The store does not hash: its callers verify digests as bytes arrive and pass only
//! verified digests here. It does not delete blob data either; that is garbage collection.
//!
//! # Layout
//! - this file: `Store`, `StoredManifest`, blobs.
//! - `uploads.rs`: upload sessions: create, append, commit into a blob, cancel.
//! - `manifests.rs`: manifests and referrers.
//! - `tags.rs`: tags, repository existence and the catalog.
//! - `cache.rs`: the optional in-memory cache of tags and manifests.
//! - `gc.rs`: garbage collection and usage walks; `pace.rs`: how they yield to requests.

mod cache;
mod gc;
mod manifests;
mod pace;
mod tags;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use registry_core::{Digest, RepoName, UploadId};

use crate::backend::{Backend, ByteStream};
use crate::error::StorageError;
use crate::layout;
pub use cache::CacheConfig;
pub use gc::{claim_refresh, Eviction, GcOptions, GcReport};
pub use pace::{Pace, Turn};
pub use tags::TagInfo;

/// How many objects one `list_objects` page asks for, as an object store's list does.
const PAGE: usize = 1000;

/// The grace period of garbage collection when none is configured.
pub const DEFAULT_GC_DELAY: Duration = Duration::from_secs(3600);
use cache::MetaCache;

/// Registry semantics over a backend. Cheap to clone: clones share the backend and the
/// metadata cache, if any.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    cache: Option<Arc<MetaCache>>,
    /// Links older than this are touched when a request relies on them (see `gc.rs`).
    claim_refresh: Duration,
    /// What gives garbage collection and usage walks their turns (see `store/pace.rs`).
    pace: Option<Arc<dyn Pace>>,
}

/// A manifest as stored: its media type and the exact bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// The media type recorded when the manifest was pushed.
    pub media_type: String,
    /// The manifest bytes, exactly as received (their digest is the manifest's digest).
    pub bytes: Bytes,
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            cache: None,
            claim_refresh: claim_refresh(DEFAULT_GC_DELAY),
            pace: None,
        }
    }

    /// The same store with tags and manifests cached in memory (see `store/cache.rs`):
    /// exact for writes made through this store, `config.ttl` stale at most for writes
    /// made by other processes sharing the storage.
    pub fn with_cache(self, config: CacheConfig) -> Store {
        Store {
            cache: Some(Arc::new(MetaCache::new(config))),
            ..self
        }
    }

    /// The same store for a deployment whose garbage collection keeps `delay` as its grace
    /// period (`storage.gc.delay`, default one hour): links requests rely on are refreshed
    /// often enough that no pass can delete them within `delay` (see `store/gc.rs`).
    pub fn with_gc_delay(self, delay: Duration) -> Store {
        Store {
            claim_refresh: claim_refresh(delay),
            ..self
        }
    }

    /// The same store whose garbage collection passes and usage walks take a turn from
    /// `pace` for each batch of storage calls (requests never do).
    pub fn with_pace(self, pace: Arc<dyn Pace>) -> Store {
        Store {
            pace: Some(pace),
            ..self
        }
    }

    /// The backend, for callers that need a raw operation (tests, maintenance jobs).
    /// Writes made through it bypass the metadata cache.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Size of the blob's data, in any repository; `None` when no such blob is stored.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        let meta = self.backend.stat(&layout::blob_data(digest)).await?;
        Ok(meta.map(|m| m.size))
    }

    /// Size of the blob if it is linked into `repo` and its data exists; `None` otherwise.
    ///
    /// Every caller relies on the answer (a `HEAD` a client skips its upload on, a
    /// manifest that names the blob, the source of a mount), so this claims the link: one
    /// older than the claim refresh is touched, and garbage collection cannot delete it
    /// within its grace period (see `store/gc.rs`). A link deleted meanwhile is `None`.
    pub async fn repo_blob_size(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>, StorageError> {
        if !self.claim(&layout::layer_link(repo, digest)).await? {
            return Ok(None);
        }
        self.blob_size(digest).await
    }

    /// The blob's bytes from `offset`, at most `len` of them. The caller checks that the
    /// blob is linked into the requesting repository first ([`Store::repo_blob_size`]).
    pub async fn read_blob(
        &self,
        digest: &Digest,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.backend
            .read_immutable(&layout::blob_data(digest), offset, len)
            .await
    }

    /// A URL the storage itself serves the blob's bytes from for `expires`, or `None`
    /// when it serves none (see [`Backend::presigned_get`]). The caller checks that the
    /// blob is linked into the requesting repository first.
    pub fn blob_url(&self, digest: &Digest, expires: Duration) -> Option<String> {
        self.backend
            .presigned_get(&layout::blob_data(digest), expires)
    }

    /// Makes an existing blob visible in `repo` (cross-repository mount, manifest blobs).
    pub async fn link_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), StorageError> {
        let link = Bytes::from(digest.to_string());
        self.backend
            .put(&layout::layer_link(repo, digest), link)
            .await
    }

    /// Checks that storage is reachable and writable: writes, reads back and
    /// deletes a probe object named by `nonce` (readiness checks).
    pub async fn check_writable(&self, nonce: &UploadId) -> Result<(), StorageError> {
        let key = layout::probe(nonce);
        let value = Bytes::from_static(b"ok");
        self.backend.put(&key, value.clone()).await?;
        let read = self.backend.get(&key).await;
        self.backend.delete(&key).await?;
        match read? {
            Some(v) if v == value => Ok(()),
            _ => Err(StorageError::Corrupt { key }),
        }
    }

    /// Removes the blob's link from `repo` only; the data stays for other repositories until
    /// garbage collection. `Ok(false)` when it was not linked.
    pub async fn unlink_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        self.backend.delete(&layout::layer_link(repo, digest)).await
    }
}

impl Store {
    /// Drops a tag from the metadata cache after a write that bypassed `put_tag`.
    fn forget_cached_tag(&self, key: &str) {
        if let Some(cache) = &self.cache {
            cache.forget_tag(key);
        }
    }

    /// Drops a manifest, and the repository's tags, from the metadata cache.
    fn forget_cached_manifest(&self, repo: &RepoName, key: &str) {
        if let Some(cache) = &self.cache {
            cache.forget_manifest(key);
            cache.forget_tags_under(&layout::tags_dir(repo));
        }
    }
}

/// Reads back a digest the store wrote (tag files): anything unparsable is corruption.
fn parse_stored_digest(key: &str, bytes: &[u8]) -> Result<Digest, StorageError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<Digest>().ok())
        .ok_or_else(|| StorageError::Corrupt {
            key: key.to_owned(),
        })
}
