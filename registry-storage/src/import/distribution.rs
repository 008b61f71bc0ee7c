//! Reading CNCF Distribution's filesystem layout (the standard `registry:2`), read-only.
//!
//! ```text
//! <rootdirectory>/docker/registry/v2/
//! ├── blobs/<alg>/<first 2 hex>/<hex>/data           blob bytes, manifests included
//! └── repositories/<name...>/                        one directory per name component
//!     ├── _layers/<alg>/<hex>/link                   "<alg>:<hex>": blob linked here
//!     ├── _manifests/revisions/<alg>/<hex>/link      "<alg>:<hex>": manifest in the repo
//!     ├── _manifests/tags/<tag>/current/link         "<alg>:<hex>": what the tag points at
//!     ├── _manifests/tags/<tag>/index/<alg>/<hex>/link   the tag's history (not imported)
//!     └── _uploads/<id>/...                          unfinished uploads (not imported)
//! ```
//!
//! Distribution deletes a link file, not always its directory, so a directory without a
//! `link` is an entry that was deleted: it is passed over, not reported. A link whose
//! content does not name the digest of its own path, a repository directory whose name is
//! not a valid repository name, and a tag name that is not a valid tag are reported as
//! [`Unreadable`] and left out.
//!
//! The layout is read through an [`FsBackend`] rooted at `docker/registry/v2`, so keys get
//! the same checks as our own and nothing outside that directory is ever read.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use registry_core::{Digest, RepoName, Tag};

use crate::backend::{Backend, ByteStream};
use crate::error::StorageError;
use crate::fs::FsBackend;

/// Link files read at once while scanning.
const CONCURRENT_READS: usize = 16;

/// Where Distribution's filesystem driver keeps everything, under its `rootdirectory`.
pub const V2: &str = "docker/registry/v2";

/// An entry of the foreign layout that cannot be imported as it is, with the key it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The key under `docker/registry/v2`.
    pub key: String,
    /// Why it is left out.
    pub why: String,
}

/// Distribution's storage under `<rootdirectory>/docker/registry/v2`.
#[derive(Debug, Clone)]
pub struct Distribution {
    dir: PathBuf,
    backend: FsBackend,
}

impl Distribution {
    /// The storage at `rootdirectory` (the value of Distribution's
    /// `storage.filesystem.rootdirectory`). Fails when `docker/registry/v2` is not there.
    pub fn open(rootdirectory: &Path) -> Result<Distribution, StorageError> {
        let dir = rootdirectory.join(V2);
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(Distribution {
                backend: FsBackend::new(dir.clone()),
                dir,
            }),
            Ok(_) => Err(StorageError::io(
                dir.display().to_string(),
                std::io::Error::other("not a directory"),
            )),
            Err(e) => Err(StorageError::io(dir.display().to_string(), e)),
        }
    }

    /// The `docker/registry/v2` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every repository, sorted by name, and the directories that look like repositories
    /// but whose names are not valid. A directory is a repository when it has `_layers`
    /// or `_manifests`; other directories not starting with `_` are name components.
    pub async fn repositories(&self) -> Result<(Vec<RepoName>, Vec<Unreadable>), StorageError> {
        let (mut found, mut bad) = (Vec::new(), Vec::new());
        let mut pending = vec![String::new()];
        while let Some(name) = pending.pop() {
            let key = repo_key(&name);
            let children = self.backend.list(&key).await?;
            let is_repo = children.iter().any(|c| c == "_layers" || c == "_manifests");
            if is_repo && !name.is_empty() {
                match name.parse::<RepoName>() {
                    Ok(repo) => found.push(repo),
                    Err(e) => bad.push(Unreadable {
                        key: key.clone(),
                        why: format!("not a valid repository name: {e}"),
                    }),
                }
            }
            for child in children.into_iter().filter(|c| !c.starts_with('_')) {
                pending.push(if name.is_empty() {
                    child
                } else {
                    format!("{name}/{child}")
                });
            }
        }
        found.sort();
        Ok((found, bad))
    }

    /// Blobs linked into `repo` (`_layers`), sorted.
    pub async fn layers(&self, repo: &RepoName) -> Result<Linked, StorageError> {
        self.links(&format!("{}/_layers", repo_key(repo.as_str())))
            .await
    }

    /// Manifests of `repo` (`_manifests/revisions`), tagged or not, sorted.
    pub async fn revisions(&self, repo: &RepoName) -> Result<Linked, StorageError> {
        self.links(&format!("{}/_manifests/revisions", repo_key(repo.as_str())))
            .await
    }

    /// Tags of `repo` and the digests they currently point at, sorted by tag.
    pub async fn tags(
        &self,
        repo: &RepoName,
    ) -> Result<(Vec<(Tag, Digest)>, Vec<Unreadable>), StorageError> {
        let dir = format!("{}/_manifests/tags", repo_key(repo.as_str()));
        let (mut tags, mut bad) = (Vec::new(), Vec::new());
        for name in self.backend.list(&dir).await? {
            let key = format!("{dir}/{name}/current/link");
            let Ok(tag) = name.parse::<Tag>() else {
                bad.push(Unreadable {
                    key,
                    why: format!("{name:?} is not a valid tag"),
                });
                continue;
            };
            match self.read_link(&key).await? {
                None => {} // deleted
                Some(Ok(digest)) => tags.push((tag, digest)),
                Some(Err(why)) => bad.push(Unreadable { key, why }),
            }
        }
        Ok((tags, bad))
    }

    /// The key of a blob's bytes.
    pub fn blob_key(digest: &Digest) -> String {
        let hex = digest.hex();
        let fanout = hex.get(..2).unwrap_or(hex);
        format!("blobs/{}/{fanout}/{hex}/data", digest.algorithm().as_str())
    }

    /// The file holding a blob's bytes (for hard links).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(Self::blob_key(digest))
    }

    /// Size of a blob's bytes; `None` when its data file is missing.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        let meta = self.backend.stat(&Self::blob_key(digest)).await?;
        Ok(meta.map(|m| m.size))
    }

    /// A blob's bytes, streamed.
    pub async fn read_blob(&self, digest: &Digest) -> Result<ByteStream, StorageError> {
        // Copied, not mapped: a source file truncated under a mapping would kill the
        // process (SIGBUS) instead of failing one read.
        self.backend.read(&Self::blob_key(digest), 0, None).await
    }

    /// A small blob (a manifest) whole; `None` when its data file is missing.
    pub async fn get_blob(&self, digest: &Digest) -> Result<Option<Bytes>, StorageError> {
        self.backend.get(&Self::blob_key(digest)).await
    }

    /// The `<alg>/<hex>/link` entries under `dir`.
    async fn links(&self, dir: &str) -> Result<Linked, StorageError> {
        let mut linked = Linked::default();
        let mut entries = Vec::new();
        for alg in self.backend.list(dir).await? {
            for hex in self.backend.list(&format!("{dir}/{alg}")).await? {
                let key = format!("{dir}/{alg}/{hex}/link");
                match format!("{alg}:{hex}").parse::<Digest>() {
                    Ok(digest) => entries.push((key, digest)),
                    Err(_) => linked.unreadable.push(Unreadable {
                        key,
                        why: format!("{alg}/{hex} is not a digest"),
                    }),
                }
            }
        }
        // One small read each: several at once, or a large store takes long to scan.
        let mut reads = futures::stream::iter(entries)
            .map(|(key, digest)| async move {
                let link = self.read_link(&key).await?;
                Ok::<_, StorageError>((key, digest, link))
            })
            .buffered(CONCURRENT_READS);
        while let Some((key, digest, link)) = reads.try_next().await? {
            match link {
                None => {} // deleted
                Some(Ok(target)) if target == digest => linked.digests.push(digest),
                Some(Ok(target)) => linked.unreadable.push(Unreadable {
                    key,
                    why: format!("links to {target}, not to {digest}"),
                }),
                Some(Err(why)) => linked.unreadable.push(Unreadable { key, why }),
            }
        }
        linked.digests.sort();
        Ok(linked)
    }

    /// A link file's digest: `None` when there is no link file, `Some(Err)` when it does
    /// not hold a digest.
    async fn read_link(&self, key: &str) -> Result<Option<Result<Digest, String>>, StorageError> {
        let Some(bytes) = self.backend.get(key).await? else {
            return Ok(None);
        };
        let digest = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse::<Digest>().ok())
            .ok_or_else(|| "the link does not hold a digest".to_owned());
        Ok(Some(digest))
    }
}

/// Digests found under a link directory, and the entries that could not be read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The linked digests, sorted.
    pub digests: Vec<Digest>,
    /// Link entries left out.
    pub unreadable: Vec<Unreadable>,
}

/// `repositories/<name>`, or `repositories` for the empty name.
fn repo_key(name: &str) -> String {
    if name.is_empty() {
        "repositories".to_owned()
    } else {
        format!("repositories/{name}")
    }
}
