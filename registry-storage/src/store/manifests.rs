//! Manifests and referrers.
//!
//! A manifest is stored as a blob (its exact bytes under its digest, so it can also be
//! fetched through the blob endpoint, as the spec allows) plus a revision link in the
//! repository recording its media type. Referrers are one small entry per
//! (subject, referrer) pair holding the referrer's descriptor JSON, so listing the referrers
//! of a subject is one `list` and no manifest parsing.

use bytes::Bytes;
use registry_core::manifest::Manifest;
use registry_core::{Digest, RepoName};
use serde::{Deserialize, Serialize};

use super::{parse_stored_digest, Store, StoredManifest};
use crate::error::StorageError;
use crate::layout;

/// Content of a revision link.
#[derive(Serialize, Deserialize)]
struct RevisionLink {
    #[serde(rename = "mediaType")]
    media_type: String,
}

impl Store {
    /// Stores a manifest: its bytes as a blob (the caller computed `digest` from these exact
    /// bytes), a `_layers` link so it can be fetched as a blob, then the revision link with
    /// its media type. Data first, links last, so a crash never leaves a dangling link.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        let blob = layout::blob_data(digest);
        // Content-addressed: an object of the same size under this digest is these bytes.
        // It is touched rather than rewritten: to garbage collection it is then as new as
        // this push, so a pass that found it unreferenced a moment ago cannot delete it
        // under the links written next (`Backend::delete_if_older`).
        let len = bytes.len() as u64;
        let same = self.backend.stat(&blob).await?.map(|m| m.size) == Some(len);
        if !(same && self.backend.touch(&blob).await?) {
            self.backend.put(&blob, bytes).await?;
        }
        let key = layout::revision_link(repo, digest);
        let link = serde_json::to_vec(&RevisionLink {
            media_type: media_type.to_owned(),
        })
        .map_err(|_| StorageError::Corrupt { key: key.clone() })?;
        // Both links point at the data written above and not at each other: write them
        // at once (each is still durable before this returns).
        let result = futures::future::try_join(
            self.link_blob(repo, digest),
            self.backend.put(&key, Bytes::from(link)),
        )
        .await
        .map(drop);
        if let Some(cache) = &self.cache {
            cache.forget_manifest(&key);
        }
        result
    }

    /// Stores a manifest `registry_core::manifest::validate` accepted, as a manifest push
    /// does: [`Store::put_manifest`], then, when it has a `subject`, its referrers entry
    /// (after the manifest it describes, like every link).
    pub async fn put_validated_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        manifest: &Manifest,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        let size = bytes.len() as u64;
        self.put_manifest(repo, digest, manifest.media_type, bytes)
            .await?;
        let Some(subject) = &manifest.subject else {
            return Ok(());
        };
        let descriptor = manifest.referrer_descriptor(digest.clone(), size);
        let json = serde_json::to_vec(&descriptor).map_err(|e| {
            StorageError::io(
                layout::referrer_link(repo, &subject.digest, digest),
                std::io::Error::other(e),
            )
        })?;
        self.add_referrer(repo, &subject.digest, digest, json.into())
            .await
    }

    /// Whether `referrer` is recorded as a referrer of `subject` in `repo`.
    pub async fn has_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<bool, StorageError> {
        let key = layout::referrer_link(repo, subject, referrer);
        Ok(self.backend.stat(&key).await?.is_some())
    }

    /// The manifest if `repo` has it (revision link present) and its bytes exist.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>, StorageError> {
        let key = layout::revision_link(repo, digest);
        let ticket = match self.cache.as_ref().map(|c| c.manifest(&key)) {
            Some(Ok(manifest)) => return Ok(Some(manifest)),
            Some(Err(ticket)) => Some(ticket),
            None => None,
        };
        let Some(manifest) = self.get_manifest_uncached(repo, digest).await? else {
            return Ok(None);
        };
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            cache.fill_manifest(ticket, &key, &manifest);
        }
        Ok(Some(manifest))
    }

    /// [`Store::get_manifest`] from storage, never from the cache (garbage collection
    /// must see what other processes wrote).
    pub(super) async fn get_manifest_uncached(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>, StorageError> {
        let mut read = self
            .get_manifests_uncached(repo, std::slice::from_ref(digest))
            .await?;
        read.pop().unwrap_or(Ok(None))
    }

    /// [`Store::get_manifest_uncached`] for several revisions of one repository, read in
    /// two batches (links, then bytes): for each digest, in order, `None` when its
    /// revision link or its bytes are absent, `Corrupt` when its link does not parse.
    pub(super) async fn get_manifests_uncached(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> Result<Vec<Result<Option<StoredManifest>, StorageError>>, StorageError> {
        let links = self
            .backend
            .get_many(
                digests
                    .iter()
                    .map(|d| layout::revision_link(repo, d))
                    .collect(),
            )
            .await?;
        let media_types: Vec<Result<Option<String>, StorageError>> = digests
            .iter()
            .zip(links)
            .map(|(digest, link)| match link {
                None => Ok(None),
                Some(link) => serde_json::from_slice::<RevisionLink>(&link)
                    .map(|link| Some(link.media_type))
                    .map_err(|_| StorageError::Corrupt {
                        key: layout::revision_link(repo, digest),
                    }),
            })
            .collect();
        let linked = digests
            .iter()
            .zip(&media_types)
            .filter(|(_, media_type)| matches!(media_type, Ok(Some(_))))
            .map(|(digest, _)| layout::blob_data(digest))
            .collect();
        let mut bytes = self.backend.get_many(linked).await?.into_iter();
        Ok(media_types
            .into_iter()
            .map(|media_type| match media_type {
                Ok(Some(media_type)) => Ok(bytes
                    .next()
                    .flatten()
                    .map(|bytes| StoredManifest { media_type, bytes })),
                other => other.map(|_| None),
            })
            .collect())
    }

    /// Whether `repo` has the manifest (revision link present and its bytes exist).
    pub async fn has_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        let linked = self
            .backend
            .stat(&layout::revision_link(repo, digest))
            .await?
            .is_some();
        Ok(linked && self.blob_size(digest).await?.is_some())
    }

    /// Removes the manifest from `repo`: every tag pointing at it, its entry as a referrer
    /// of `subject` (the caller passes the subject the manifest declared), then its revision
    /// link. `Ok(false)` if the repository did not have it.
    ///
    /// The revision link goes last, so a crash part way leaves the manifest in place with
    /// some of its tags gone (the delete was not acknowledged; a retry finishes it), never a
    /// tag or a referrer entry pointing at a manifest that is gone.
    ///
    /// The blob bytes and their `_layers` link stay (garbage collection's job), and so do
    /// the referrers *of* this digest: the spec lets referrers outlive their subject.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool, StorageError> {
        let result = self.delete_manifest_uncached(repo, digest, subject).await;
        if let Some(cache) = &self.cache {
            cache.forget_manifest(&layout::revision_link(repo, digest));
            cache.forget_tags_under(&layout::tags_dir(repo));
        }
        result
    }

    async fn delete_manifest_uncached(
        &self,
        repo: &RepoName,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool, StorageError> {
        let revision = layout::revision_link(repo, digest);
        if self.backend.stat(&revision).await?.is_none() {
            return Ok(false);
        }
        let tags_dir = layout::tags_dir(repo);
        for tag in self.backend.list(&tags_dir).await? {
            let key = format!("{tags_dir}/{tag}");
            let Some(content) = self.backend.get(&key).await? else {
                continue; // deleted meanwhile
            };
            // A corrupt tag points nowhere, so certainly not here: it must not block the
            // deletion (resolve_tag reports it).
            if parse_stored_digest(&key, &content).ok().as_ref() == Some(digest) {
                self.backend.delete(&key).await?;
            }
        }
        if let Some(subject) = subject {
            self.backend
                .delete(&layout::referrer_link(repo, subject, digest))
                .await?;
        }
        // `false` when a concurrent delete of the same manifest got here first.
        self.backend.delete(&revision).await
    }

    /// Records that `referrer` (a manifest in `repo`) refers to `subject`, with the
    /// descriptor the referrers API returns for it (opaque JSON bytes).
    pub async fn add_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: &Digest,
        descriptor_json: Bytes,
    ) -> Result<(), StorageError> {
        self.backend
            .put(
                &layout::referrer_link(repo, subject, referrer),
                descriptor_json,
            )
            .await
    }

    /// The descriptors of the manifests referring to `subject`, sorted by referrer key
    /// (`<alg>-<hex>`); empty when there are none.
    pub async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Bytes>, StorageError> {
        let dir = layout::referrers_dir(repo, subject);
        let mut names = self.backend.list(&dir).await?;
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // Skipped if deleted between list and get.
            if let Some(descriptor) = self.backend.get(&format!("{dir}/{name}")).await? {
                out.push(descriptor);
            }
        }
        Ok(out)
    }
}
