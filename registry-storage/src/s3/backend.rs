//! `S3Backend`: the [`Backend`] trait over an S3 bucket.
//!
//! Small objects are whole GETs and PUTs (a PUT is atomic on S3), reads are ranged GETs
//! streamed as they arrive, listings page through ListObjectsV2, uploads are multipart
//! uploads ([`super::upload`]). What garbage collection needs maps to one request each:
//! `stat` is a HEAD, `touch` a conditional rewrite of the object's own bytes (a new
//! Last-Modified), and `delete_if_older` a DELETE with `x-amz-delete-if-unmodified-since`,
//! which radosgw checks and applies in one step on the object's own record, so a PUT or
//! touch racing it is never lost. A store that ignores that header cannot run garbage
//! collection safely beside pushes: the start-up probe finds out, and `delete_if_older`
//! then refuses instead of deleting unconditionally.

use std::time::SystemTime;

use bytes::Bytes;

use super::client::{PutCondition, S3Client};
use super::upload::{self, S3UploadWriter};
use crate::backend::{
    check_key, check_prefix, Backend, BackendWriter, ByteStream, ObjectEntry, ObjectMeta,
    UploadStatus, TEMP_PREFIX,
};
use crate::error::StorageError;

/// Most keys one ListObjectsV2 page returns.
const PAGE: usize = 1000;

/// A bucket (and root directory in it) as a [`Backend`]. Clones share the client.
#[derive(Debug, Clone)]
pub struct S3Backend {
    client: S3Client,
    conditional_delete: bool,
}

impl S3Backend {
    /// A backend over `client`, probing whether the store deletes conditionally on
    /// modification time (see the module docs).
    pub async fn new(client: S3Client) -> Result<S3Backend, StorageError> {
        let conditional_delete = client.supports_conditional_delete().await?;
        Ok(S3Backend {
            client,
            conditional_delete,
        })
    }

    /// The client, for presigned URLs and start-up checks.
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    /// Whether garbage collection can run beside pushes on this store.
    pub fn deletes_conditionally(&self) -> bool {
        self.conditional_delete
    }
}

/// True for a key with a hidden (`.tmp-`) component: the backend's own objects.
fn hidden(key: &str) -> bool {
    key.split('/').any(|c| c.starts_with(TEMP_PREFIX))
}

/// `time` without its fraction of a second.
fn whole_seconds(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// `prefix/`, or nothing for the root.
fn dir(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

#[async_trait::async_trait]
impl Backend for S3Backend {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        check_key(key)?;
        Ok(self.client.get(key).await?.map(|(bytes, _)| bytes))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        check_key(key)?;
        self.client.put(key, value, PutCondition::None).await?;
        Ok(())
    }

    fn time_resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn presigned_get(&self, key: &str, expires: std::time::Duration) -> Option<String> {
        check_key(key).ok()?;
        Some(self.client.presign_get(key, expires).to_string())
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        check_key(key)?;
        Ok(self.client.head(key).await?.map(|info| ObjectMeta {
            size: info.size,
            modified: info.modified,
        }))
    }

    async fn read(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        // One ranged GET: S3 cuts a range at the end of the object, and the client turns
        // a range starting at or past the end (416) into an empty stream (an empty window
        // costs a HEAD, so absence is still reported).
        let end = len.map(|len| offset.saturating_add(len));
        self.client
            .get_range(key, offset, end)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                key: key.to_owned(),
            })
    }

    async fn append(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        check_key(key)?;
        if upload::load(&self.client, key).await?.is_none() {
            upload::start(&self.client, key).await?;
        }
        self.append_existing(key).await
    }

    async fn append_existing(&self, key: &str) -> Result<Box<dyn BackendWriter>, StorageError> {
        check_key(key)?;
        Ok(Box::new(
            S3UploadWriter::open(self.client.clone(), key).await?,
        ))
    }

    async fn upload_start(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        upload::start(&self.client, key).await
    }

    async fn upload_status(&self, key: &str) -> Result<Option<UploadStatus>, StorageError> {
        check_key(key)?;
        Ok(upload::load(&self.client, key)
            .await?
            .map(|(state, _)| state.status()))
    }

    async fn upload_read(
        &self,
        key: &str,
        _offset: u64,
        _len: Option<u64>,
    ) -> Result<ByteStream, StorageError> {
        check_key(key)?;
        // The parts of a multipart upload cannot be read before it completes; uploads
        // here keep their hash checkpoint instead, so nothing needs to read them.
        Err(StorageError::Unavailable {
            key: key.to_owned(),
            reason: "an upload in progress cannot be read back from object storage".into(),
        })
    }

    async fn upload_finish(&self, key: &str, to: &str) -> Result<(), StorageError> {
        check_key(key)?;
        check_key(to)?;
        upload::finish(&self.client, key, to).await
    }

    async fn upload_cancel(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        upload::cancel(&self.client, key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        check_prefix(prefix)?;
        let start = dir(prefix);
        let mut names = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .client
                .list(&start, true, None, continuation.as_deref(), PAGE)
                .await?;
            let objects = page.objects.into_iter().map(|(key, _, _)| key);
            for key in objects.chain(page.prefixes) {
                if let Some(name) = key.strip_prefix(&start) {
                    let name = name.trim_end_matches('/');
                    if !name.is_empty() && !name.starts_with(TEMP_PREFIX) {
                        names.push(name.to_owned());
                    }
                }
            }
            match page.next {
                Some(next) => continuation = Some(next),
                None => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        check_key(from)?;
        check_key(to)?;
        let info = self
            .client
            .head(from)
            .await?
            .ok_or_else(|| StorageError::NotFound {
                key: from.to_owned(),
            })?;
        self.client.copy(from, to, info.size).await?;
        self.client.delete(from).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        let mut found = false;
        if self.client.head(key).await?.is_some() {
            self.client.delete(key).await?;
            found = true;
        }
        // Everything under the prefix too, hidden objects included (an upload's parts).
        let start = dir(key);
        loop {
            let page = self.client.list(&start, false, None, None, PAGE).await?;
            if page.objects.is_empty() {
                break;
            }
            let keys: Vec<String> = page.objects.into_iter().map(|(k, _, _)| k).collect();
            self.client.delete_many(&keys).await?;
            found = true;
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
        let start = dir(prefix);
        let mut entries = Vec::new();
        let mut after = start_after.map(str::to_owned);
        // Hidden objects are skipped, so a page may need more than one request.
        while entries.len() < limit {
            let want = (limit - entries.len()).min(PAGE);
            let page = self
                .client
                .list(&start, false, after.as_deref(), None, want)
                .await?;
            let more = page.next.is_some();
            let mut last = None;
            for (key, size, modified) in page.objects {
                last = Some(key.clone());
                if !hidden(&key) {
                    // Listings carry milliseconds, HEAD whole seconds: the backend says
                    // seconds everywhere, so a time read twice compares equal.
                    let modified = whole_seconds(modified);
                    entries.push(ObjectEntry {
                        key,
                        meta: ObjectMeta { size, modified },
                    });
                }
            }
            match last {
                Some(key) if more => after = Some(key),
                _ => break,
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }

    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        // The object is written again with its own bytes, on the condition that it is
        // still the version just read (If-Match). A copy onto itself would be one request,
        // but it can land after a delete that raced it and bring the object back after
        // the delete reported it gone (seen in the conformance race). Only small objects
        // are touched: links and manifests.
        for _ in 0..2 {
            let Some((bytes, info)) = self.client.get(key).await? else {
                return Ok(false);
            };
            let written = self
                .client
                .put(key, bytes, PutCondition::IfMatch(info.etag))
                .await?;
            if written.is_some() {
                return Ok(true);
            }
            // Changed or deleted meanwhile: look again.
        }
        Ok(false)
    }

    async fn delete_if_older(&self, key: &str, cutoff: SystemTime) -> Result<bool, StorageError> {
        check_key(key)?;
        if !self.conditional_delete {
            return Err(StorageError::Unavailable {
                key: key.to_owned(),
                reason: "this object store ignores x-amz-delete-if-unmodified-since, so \
                         garbage collection cannot delete safely beside pushes"
                    .into(),
            });
        }
        // S3 answers a DELETE of an absent object with success: ask first, so that the
        // answer says whether this call deleted it. An object created between the two
        // requests is newer than the cutoff, which the DELETE itself checks.
        if self.client.head(key).await?.is_none() {
            return Ok(false);
        }
        // radosgw compares whole seconds, deleting when the object's second is not after
        // the cutoff's: an object written in the cutoff's own second, after it, would go.
        // A second earlier, it deletes only objects from before the cutoff's second: at
        // most a second more conservative than asked.
        let cutoff = cutoff
            .checked_sub(std::time::Duration::from_secs(1))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.client.delete_if_unmodified_since(key, cutoff).await
    }
}
