//! One manifest revision, with its referrers entry, and one tag: checked and written as
//! the manifest push and tag update would.

use registry_core::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use registry_core::{Digest, RepoName, Tag};

use super::distribution::Distribution;
use super::error::ImportError;
use super::report::{Count, Skip, SkipReason};
use crate::error::StorageError;
use crate::store::Store;

/// What became of one small object (link, manifest, referrers entry, tag).
pub(super) enum Small {
    /// Written by this run.
    Imported,
    /// Already in the store.
    Present,
    /// Nothing to write and nothing to report: no referrers entry for a manifest without
    /// a subject, no link for a blob that was skipped (and reported) itself.
    Nothing,
    /// Left out, and why.
    Skipped(Skip),
}

impl Small {
    /// Adds this outcome to its kind's count, or to the skips.
    pub(super) fn count(self, count: &mut Count, skipped: &mut Vec<Skip>) {
        match self {
            Small::Imported => count.imported += 1,
            Small::Present => count.present += 1,
            Small::Nothing => {}
            Small::Skipped(skip) => skipped.push(skip),
        }
    }
}

/// Imports the manifest `digest` of `repo`: its bytes verified against the digest, then
/// validated, its blobs checked to be linked in `repo`, then stored with its referrers
/// entry. Returns the manifest's outcome and its referrers entry's.
pub(super) async fn import_manifest(
    store: &Store,
    source: &Distribution,
    repo: &RepoName,
    digest: &Digest,
) -> Result<(Small, Small), ImportError> {
    let target = ImportError::Target;
    let skip = |reason| {
        Ok((
            Small::Skipped(Skip {
                kind: "manifest",
                object: digest.to_string(),
                repo: Some(repo.clone()),
                reason,
            }),
            Small::Nothing,
        ))
    };
    if let Some(stored) = store.get_manifest(repo, digest).await.map_err(target)? {
        // In already; a run killed between the manifest and its referrers entry left
        // the entry to write.
        let mut referrer = Small::Nothing;
        if let Ok(parsed) = manifest::validate(Some(&stored.media_type), &stored.bytes) {
            if let Some(subject) = &parsed.subject {
                referrer = if store
                    .has_referrer(repo, &subject.digest, digest)
                    .await
                    .map_err(target)?
                {
                    Small::Present
                } else {
                    store
                        .put_validated_manifest(repo, digest, &parsed, stored.bytes)
                        .await
                        .map_err(target)?;
                    Small::Imported
                };
            }
        }
        return Ok((Small::Present, referrer));
    }
    let size = source
        .blob_size(digest)
        .await
        .map_err(ImportError::Source)?;
    match size {
        None => return skip(SkipReason::ManifestMissing),
        Some(size) if size > MAX_MANIFEST_BYTES as u64 => {
            return skip(SkipReason::ManifestTooLarge { size })
        }
        Some(_) => {}
    }
    let Some(bytes) = source.get_blob(digest).await.map_err(ImportError::Source)? else {
        return skip(SkipReason::ManifestMissing);
    };
    let actual = Digest::of(digest.algorithm(), &bytes);
    if &actual != digest {
        return skip(SkipReason::ManifestCorrupt { actual });
    }
    // No content type: the media type comes from the manifest's `mediaType`, or from its
    // shape, exactly as for a push with a generic content type.
    let parsed: Manifest = match manifest::validate(None, &bytes) {
        Ok(parsed) => parsed,
        Err(e) => return skip(SkipReason::ManifestInvalid { message: e.message }),
    };
    let missing = missing_blobs(store, repo, &parsed).await?;
    if !missing.is_empty() {
        return skip(SkipReason::ManifestNeedsBlobs { missing });
    }
    // As a push does: the children an index names are claimed, so a garbage collection
    // pass running meanwhile cannot take them for untagged leftovers.
    let children = parsed.manifests.iter().map(|m| &m.digest);
    store
        .claim_manifests(repo, children)
        .await
        .map_err(target)?;
    store
        .put_validated_manifest(repo, digest, &parsed, bytes)
        .await
        .map_err(target)?;
    let referrer = if parsed.subject.is_some() {
        Small::Imported
    } else {
        Small::Nothing
    };
    Ok((Small::Imported, referrer))
}

/// The blobs `parsed` needs that are not linked in `repo`, every one. Those found are
/// claimed ([`Store::repo_blob_size`]), as the push's check claims them.
async fn missing_blobs(
    store: &Store,
    repo: &RepoName,
    parsed: &Manifest,
) -> Result<Vec<Digest>, ImportError> {
    let mut missing = Vec::new();
    for blob in parsed.required_blobs() {
        let size = store
            .repo_blob_size(repo, &blob.digest)
            .await
            .map_err(ImportError::Target)?;
        if size.is_none() {
            missing.push(blob.digest.clone());
        }
    }
    Ok(missing)
}

/// Points `tag` at `digest` in `repo`, once that manifest is in the store.
pub(super) async fn import_tag(
    store: &Store,
    repo: &RepoName,
    tag: &Tag,
    digest: &Digest,
) -> Result<Small, ImportError> {
    let target = ImportError::Target;
    if !store.has_manifest(repo, digest).await.map_err(target)? {
        return Ok(Small::Skipped(Skip {
            kind: "tag",
            object: tag.as_str().to_owned(),
            repo: Some(repo.clone()),
            reason: SkipReason::TagTargetMissing {
                target: digest.clone(),
            },
        }));
    }
    match store.resolve_tag(repo, tag).await {
        Ok(Some(current)) if &current == digest => return Ok(Small::Present),
        // Another target, none, or a tag file that does not hold a digest: (re)write it.
        Ok(_) | Err(StorageError::Corrupt { .. }) => {}
        Err(e) => return Err(target(e)),
    }
    store.put_tag(repo, tag, digest).await.map_err(target)?;
    Ok(Small::Imported)
}
