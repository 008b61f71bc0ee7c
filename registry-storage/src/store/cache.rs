//! The metadata cache: tags and manifests kept in memory, so pulling a manifest by tag
//! (what every node does when a deployment rolls out) reads no file.
//!
//! Entries are keyed by their storage key (`layout::tag_link`, `layout::revision_link`)
//! and are exact within this process:
//! - every write of the store that can change a cached value removes it after the
//!   backend write (put/delete tag, put/delete manifest, which also drops the
//!   repository's tags);
//! - a read fills the cache only if no such write happened since the read began
//!   (a generation counter), so a slow read cannot put back a value a write replaced.
//!
//! Writes by other processes sharing the storage (replicas, maintenance jobs) and raw
//! [`Store::backend`](super::Store::backend) writes are not seen: entries expire after a
//! short TTL for that. Only present values are cached, never "not found". Memory is
//! bounded by an entry count and a byte budget for manifest bodies.
//!
//! The TTL is measured with tokio's clock, so tests pause and advance it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use registry_core::Digest;
use tokio::time::Instant;

use super::StoredManifest;

/// Settings of the metadata cache ([`Store::with_cache`](super::Store::with_cache)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry is trusted: how stale a read may be after another process
    /// changed a tag or deleted a manifest. Writes in this process are seen at once.
    pub ttl: Duration,
    /// Most tags and most manifests kept (each).
    pub max_entries: usize,
    /// Most bytes of manifest bodies kept.
    pub max_manifest_bytes: usize,
}

impl Default for CacheConfig {
    /// 5 s, 16384 entries, 16 MiB of manifests.
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(5),
            max_entries: 16 * 1024,
            max_manifest_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A value and when it stops being trusted.
struct Timed<T> {
    value: T,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    tags: HashMap<String, Timed<Digest>>,
    manifests: HashMap<String, Timed<StoredManifest>>,
    manifest_bytes: usize,
}

/// The cache shared by the clones of one [`Store`](super::Store).
pub(crate) struct MetaCache {
    config: CacheConfig,
    inner: Mutex<Inner>,
}

/// What a read saw before going to the backend; pass it back to fill the cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl MetaCache {
    pub(crate) fn new(config: CacheConfig) -> MetaCache {
        MetaCache {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain map operations: consistent even after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached tag target, or a ticket to fill it after reading the backend.
    pub(crate) fn tag(&self, key: &str) -> Result<Digest, Ticket> {
        let inner = self.lock();
        match inner.tags.get(key) {
            Some(t) if Instant::now() < t.expires => Ok(t.value.clone()),
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// The cached manifest, or a ticket to fill it after reading the backend.
    pub(crate) fn manifest(&self, key: &str) -> Result<StoredManifest, Ticket> {
        let inner = self.lock();
        match inner.manifests.get(key) {
            Some(t) if Instant::now() < t.expires => Ok(t.value.clone()),
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// Caches a tag read from the backend, unless a write intervened.
    pub(crate) fn fill_tag(&self, ticket: Ticket, key: &str, digest: &Digest) {
        let expires = Instant::now() + self.config.ttl;
        let mut inner = self.lock();
        if inner.generation != ticket.0 || self.config.max_entries == 0 {
            return;
        }
        if inner.tags.len() >= self.config.max_entries {
            let now = Instant::now();
            inner.tags.retain(|_, t| t.expires > now);
            if inner.tags.len() >= self.config.max_entries {
                inner.tags.clear();
            }
        }
        let value = digest.clone();
        inner.tags.insert(key.to_owned(), Timed { value, expires });
    }

    /// Caches a manifest read from the backend, unless a write intervened or it
    /// does not fit the budget.
    pub(crate) fn fill_manifest(&self, ticket: Ticket, key: &str, manifest: &StoredManifest) {
        let size = manifest.bytes.len() + manifest.media_type.len();
        if size > self.config.max_manifest_bytes / 4 {
            return; // a few huge manifests must not evict all the others
        }
        let expires = Instant::now() + self.config.ttl;
        let mut inner = self.lock();
        if inner.generation != ticket.0 || self.config.max_entries == 0 {
            return;
        }
        let full = |i: &Inner| {
            i.manifests.len() >= self.config.max_entries
                || i.manifest_bytes + size > self.config.max_manifest_bytes
        };
        if full(&inner) {
            let now = Instant::now();
            inner.manifests.retain(|_, t| t.expires > now);
            if full(&inner) {
                inner.manifests.clear();
            }
            inner.manifest_bytes = inner.manifests.values().map(|t| entry_size(&t.value)).sum();
        }
        let value = manifest.clone();
        if let Some(old) = inner
            .manifests
            .insert(key.to_owned(), Timed { value, expires })
        {
            inner.manifest_bytes -= entry_size(&old.value);
        }
        inner.manifest_bytes += size;
    }

    /// Forgets a tag after a write to it.
    pub(crate) fn forget_tag(&self, key: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tags.remove(key);
    }

    /// Forgets a manifest after a write to it.
    pub(crate) fn forget_manifest(&self, key: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        if let Some(old) = inner.manifests.remove(key) {
            inner.manifest_bytes -= entry_size(&old.value);
        }
    }

    /// Forgets every tag under `prefix` (a repository's tags directory).
    pub(crate) fn forget_tags_under(&self, prefix: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .tags
            .retain(|k, _| !k.strip_prefix(prefix).is_some_and(|r| r.starts_with('/')));
    }
}

fn entry_size(m: &StoredManifest) -> usize {
    m.bytes.len() + m.media_type.len()
}

impl fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MetaCache")
            .field("config", &self.config)
            .field("tags", &inner.tags.len())
            .field("manifests", &inner.manifests.len())
            .field("manifest_bytes", &inner.manifest_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests;
