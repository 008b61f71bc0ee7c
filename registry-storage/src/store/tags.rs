//! Tags, repository existence and the catalog.
//!
//! A tag is an object holding the digest it points at; replacing it is one atomic `put`.
//! A repository exists while it has content (`_manifests` or `_layers`); an upload alone
//! does not make one. The catalog is a walk of `v1/repositories`.

use std::time::SystemTime;

use bytes::Bytes;
use registry_core::{Digest, RepoName, Tag};

use super::{parse_stored_digest, Store};
use crate::backend::ObjectEntry;
use crate::error::StorageError;
use crate::layout;

/// A tag, what it points at, and when it was last pushed (its object's modification time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag.
    pub name: String,
    /// The manifest it points at.
    pub digest: Digest,
    /// When it was last pointed at a manifest.
    pub pushed: SystemTime,
}

impl Store {
    /// Points `tag` at `digest`, replacing any previous target atomically.
    pub async fn put_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let key = layout::tag_link(repo, tag);
        let result = self
            .backend
            .put(&key, Bytes::from(digest.to_string()))
            .await;
        if let Some(cache) = &self.cache {
            cache.forget_tag(&key);
        }
        result
    }

    /// When the tag was last written or touched ([`Store::touch_tag`]); `None` when there
    /// is no such tag. Read from storage every time, so every process sharing it agrees
    /// (the pull-through cache keeps there when it last checked a tag upstream). One stat,
    /// for callers that show a page of tags and should not read every tag of a repository
    /// to get there ([`Store::list_tags_detailed`] does).
    pub async fn tag_modified(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<Option<SystemTime>, StorageError> {
        let meta = self.backend.stat(&layout::tag_link(repo, tag)).await?;
        Ok(meta.map(|m| m.modified))
    }

    /// Sets the tag's modification time to now, its digest unchanged; whether it exists.
    pub async fn touch_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, StorageError> {
        self.backend.touch(&layout::tag_link(repo, tag)).await
    }

    /// The digest `tag` points at; `None` when there is no such tag, `Err(Corrupt)` when
    /// the tag file does not hold a digest.
    pub async fn resolve_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<Option<Digest>, StorageError> {
        let key = layout::tag_link(repo, tag);
        let ticket = match self.cache.as_ref().map(|c| c.tag(&key)) {
            Some(Ok(digest)) => return Ok(Some(digest)),
            Some(Err(ticket)) => Some(ticket),
            None => None,
        };
        let Some(content) = self.backend.get(&key).await? else {
            return Ok(None);
        };
        let digest = parse_stored_digest(&key, &content)?;
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            cache.fill_tag(ticket, &key, &digest);
        }
        Ok(Some(digest))
    }

    /// Removes the tag (not the manifest). `Ok(false)` when there was no such tag.
    pub async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, StorageError> {
        let key = layout::tag_link(repo, tag);
        let result = self.backend.delete(&key).await;
        if let Some(cache) = &self.cache {
            cache.forget_tag(&key);
        }
        result
    }

    /// The repository's tags sorted by bytes; `None` when the repository does not exist.
    pub async fn list_tags(&self, repo: &RepoName) -> Result<Option<Vec<String>>, StorageError> {
        if !self.repository_exists(repo).await? {
            return Ok(None);
        }
        let mut tags = self.backend.list(&layout::tags_dir(repo)).await?;
        tags.sort();
        Ok(Some(tags))
    }

    /// The repository's tags sorted by bytes, each with its digest and push time; `None`
    /// when the repository does not exist. One paged walk of the tags prefix, then one read
    /// per tag; a tag deleted meanwhile is left out, a corrupt one is an error.
    pub async fn list_tags_detailed(
        &self,
        repo: &RepoName,
    ) -> Result<Option<Vec<TagInfo>>, StorageError> {
        if !self.repository_exists(repo).await? {
            return Ok(None);
        }
        let dir = layout::tags_dir(repo);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .backend
                .list_objects(&dir, after.as_deref(), super::PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            let prefix = format!("{dir}/");
            // Tag objects only: a key with more components below the tags is not one.
            let tags: Vec<(&str, &ObjectEntry)> = page
                .iter()
                .filter_map(|entry| Some((entry.key.strip_prefix(&prefix)?, entry)))
                .filter(|(name, _)| !name.contains('/'))
                .collect();
            let contents = self
                .backend
                .get_many(tags.iter().map(|(_, entry)| entry.key.clone()).collect())
                .await?;
            for ((name, entry), content) in tags.into_iter().zip(contents) {
                let Some(content) = content else {
                    continue; // deleted meanwhile
                };
                out.push(TagInfo {
                    name: name.to_owned(),
                    digest: parse_stored_digest(&entry.key, &content)?,
                    pushed: entry.meta.modified,
                });
            }
        }
        Ok(Some(out))
    }

    /// Whether the repository has content: manifests or linked blobs.
    pub async fn repository_exists(&self, repo: &RepoName) -> Result<bool, StorageError> {
        let children = self.backend.list(&layout::repo_dir(repo)).await?;
        Ok(has_content(&children))
    }

    /// Every repository with content, sorted by bytes. Names have any number of
    /// components (`a`, `a/b`, `a/b/c` can all exist at once).
    pub async fn list_repositories(&self) -> Result<Vec<String>, StorageError> {
        self.repositories_where(has_content).await
    }

    /// Every repository name whose prefix holds an in-progress upload, sorted;
    /// such a repository may have no content yet (a first push that stalled).
    pub async fn repositories_with_uploads(&self) -> Result<Vec<String>, StorageError> {
        self.repositories_where(|children| children.iter().any(|c| c == layout::UPLOADS))
            .await
    }

    /// Walks `v1/repositories` and returns the names whose children satisfy `keep`.
    async fn repositories_where(
        &self,
        keep: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, StorageError> {
        let mut found = Vec::new();
        // Explicit stack instead of async recursion: (key prefix, repository name so far).
        let mut stack = vec![(layout::REPOSITORIES.to_owned(), String::new())];
        while let Some((prefix, name)) = stack.pop() {
            let children = self.backend.list(&prefix).await?;
            if !name.is_empty() && keep(&children) && name.parse::<RepoName>().is_ok() {
                found.push(name.clone());
            }
            // Name components start with [a-z0-9]; `_layers`, `_uploads`... are not names.
            for child in children.iter().filter(|c| !c.starts_with(['_', '.'])) {
                let child_name = if name.is_empty() {
                    child.clone()
                } else {
                    format!("{name}/{child}")
                };
                stack.push((format!("{prefix}/{child}"), child_name));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// A repository prefix has content when it holds manifests or blob links.
fn has_content(children: &[String]) -> bool {
    children
        .iter()
        .any(|c| c == layout::MANIFESTS || c == layout::LAYERS)
}
