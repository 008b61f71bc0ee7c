//! Importing a CNCF Distribution filesystem storage (the standard registry's) into a
//! [`Store`], once, with the old registry stopped or read-only.
//!
//! Everything the old registry served comes across: every repository, every manifest
//! revision (tagged or not), every tag and every blob linked into a repository. Nothing
//! is trusted on the way: each blob is hashed as it is copied (or, hard-linked, hashed
//! once in place) and committed only when it matches its digest; each manifest is hashed
//! and validated as a push would be. What does not verify is left out and reported
//! ([`Skip`]), never imported.
//!
//! ```text
//! scan      repositories, their _layers, revisions, tags; distinct blobs and sizes
//! blobs     each distinct blob once: present already? else copy/link + hash + commit
//! per repo  blob links  ->  manifests (+ referrers)  ->  tags
//! ```
//!
//! The order keeps the store's rule that data comes before the links to it: blobs before
//! their links, a manifest only when every blob it needs is linked in its repository (as
//! the manifest push checks), a tag only when its manifest is in. So an import killed at
//! any point (even SIGKILL) leaves a consistent store, and running it again continues:
//! blobs already in the store are not read again (only verified bytes are ever stored),
//! links, manifests and tags already written are counted as present, and a run after a
//! complete import writes nothing ([`Summary::wrote_nothing`]).
//!
//! This module never reads the clock: upload ids come from the caller ([`Options::mint`])
//! and so does any timing of the run.
//!
//! # Layout
//! - this file: [`import`] and its phases.
//! - `distribution.rs`: reading the source layout.
//! - `blobs.rs`: one blob, copied or hard-linked, verified.
//! - `manifests.rs`: one manifest (and its referrers entry), one tag.
//! - `report.rs`: [`Progress`], [`Skip`], [`Summary`].
//! - `error.rs`: [`ImportError`].

mod blobs;
mod distribution;
mod error;
mod manifests;
mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use registry_core::{Digest, RepoName, Tag, UploadId};

pub use blobs::Transfer;
pub use distribution::{Distribution, Linked, Unreadable, V2};
pub use error::ImportError;
pub use report::{Count, Progress, ProgressSnapshot, Skip, SkipReason, Summary};

use crate::error::StorageError;
use crate::store::Store;
use manifests::Small;

/// Small objects (links, manifests, tags) written or looked up at once: each is a synced
/// write or a round trip, so a few in flight keep the disk busy.
const CONCURRENT_SMALL: usize = 16;

/// How to run an import.
pub struct Options<'a> {
    /// Copy blobs, or hard-link them.
    pub transfer: Transfer,
    /// Ids for the uploads blobs come in through; `UploadId::mint` of the clock and
    /// random bits, so the registry's purge of stale uploads knows their age.
    pub mint: &'a (dyn Fn() -> UploadId + Send + Sync),
    /// Blobs moved at once (each hashes on one core).
    pub concurrency: usize,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("transfer", &self.transfer)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// One repository of the source, as scanned.
struct RepoPlan {
    name: RepoName,
    layers: Vec<Digest>,
    revisions: Vec<Digest>,
    tags: Vec<(Tag, Digest)>,
}

/// Imports everything `source` holds into `store`; see the module docs. Damaged or
/// unacceptable objects are skipped and listed in the summary; an error means the run
/// stopped (it can be run again to continue).
pub async fn import(
    store: &Store,
    source: &Distribution,
    options: &Options<'_>,
    progress: &Progress,
) -> Result<Summary, ImportError> {
    if let Transfer::HardLink(fs) = &options.transfer {
        check_one_file_system(source.dir(), fs.root())?;
    }
    let mut summary = Summary::default();
    let plans = scan(source, &mut summary).await?;
    summary.repositories = plans.len() as u64;

    // Each distinct blob once, through the first repository that links it.
    let mut firsts: BTreeMap<&Digest, &RepoName> = BTreeMap::new();
    for plan in &plans {
        for digest in &plan.layers {
            firsts.entry(digest).or_insert(&plan.name);
        }
    }
    let mut blobs = Vec::with_capacity(firsts.len());
    let mut total_bytes = 0;
    let mut sizes = futures::stream::iter(firsts)
        .map(|(digest, repo)| async move {
            let size = source.blob_size(digest).await;
            size.map(|size| (digest, repo, size))
        })
        .buffered(CONCURRENT_SMALL);
    while let Some((digest, repo, size)) = sizes.try_next().await.map_err(ImportError::Source)? {
        match size {
            Some(size) => {
                total_bytes += size;
                blobs.push((digest, repo, size));
            }
            None => summary
                .skipped
                .push(skip_blob(digest, SkipReason::BlobMissing)),
        }
    }
    let small: usize = plans
        .iter()
        .map(|p| p.layers.len() + p.revisions.len() + p.tags.len())
        .sum();
    progress.set_totals(total_bytes, (blobs.len() + small) as u64);

    let fresh = import_blobs(store, source, options, progress, &blobs, &mut summary).await?;
    for plan in &plans {
        import_repository(store, source, plan, &fresh, progress, &mut summary).await?;
    }
    Ok(summary)
}

/// Hard links need the source and the store on one file system.
fn check_one_file_system(from: &Path, to: &Path) -> Result<(), ImportError> {
    use std::os::unix::fs::MetadataExt;
    let device = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.dev())
            .map_err(|e| StorageError::io(path.display().to_string(), e))
    };
    let from_dev = device(from).map_err(ImportError::Source)?;
    let to_dev = device(to).map_err(ImportError::Target)?;
    if from_dev == to_dev {
        Ok(())
    } else {
        Err(ImportError::CrossDevice {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        })
    }
}

/// Lists every repository with its blob links, manifests and tags; unreadable entries
/// go to the summary's skips.
async fn scan(source: &Distribution, summary: &mut Summary) -> Result<Vec<RepoPlan>, ImportError> {
    let src = ImportError::Source;
    let (names, bad) = source.repositories().await.map_err(src)?;
    let unreadable = |repo: Option<&RepoName>, u: Unreadable| Skip {
        kind: "entry",
        object: u.key,
        repo: repo.cloned(),
        reason: SkipReason::Unreadable { why: u.why },
    };
    summary
        .skipped
        .extend(bad.into_iter().map(|u| unreadable(None, u)));
    let mut plans = Vec::with_capacity(names.len());
    for name in names {
        let layers = source.layers(&name).await.map_err(src)?;
        let revisions = source.revisions(&name).await.map_err(src)?;
        let (tags, bad_tags) = source.tags(&name).await.map_err(src)?;
        let bad = layers
            .unreadable
            .into_iter()
            .chain(revisions.unreadable)
            .chain(bad_tags);
        summary
            .skipped
            .extend(bad.map(|u| unreadable(Some(&name), u)));
        plans.push(RepoPlan {
            name,
            layers: layers.digests,
            revisions: revisions.digests,
            tags,
        });
    }
    Ok(plans)
}

fn skip_blob(digest: &Digest, reason: SkipReason) -> Skip {
    Skip {
        kind: "blob",
        object: digest.to_string(),
        repo: None,
        reason,
    }
}

/// Brings every distinct blob into the store, `options.concurrency` at a time. Returns
/// the blobs this run wrote, each with the repository its upload linked it into.
async fn import_blobs<'a>(
    store: &Store,
    source: &Distribution,
    options: &Options<'_>,
    progress: &Progress,
    blobs: &[(&'a Digest, &'a RepoName, u64)],
    summary: &mut Summary,
) -> Result<BTreeMap<&'a Digest, &'a RepoName>, ImportError> {
    let mut fresh = BTreeMap::new();
    let mut results = futures::stream::iter(blobs)
        .map(|&(digest, repo, size)| async move {
            let outcome = if store
                .blob_size(digest)
                .await
                .map_err(ImportError::Target)?
                .is_some()
            {
                progress.add_bytes(size);
                None
            } else {
                let id = (options.mint)();
                let transfer = &options.transfer;
                Some(blobs::import(store, source, transfer, repo, digest, id, progress).await?)
            };
            progress.add_object();
            Ok::<_, ImportError>((digest, repo, outcome))
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some((digest, repo, outcome)) = results.try_next().await? {
        match outcome {
            None => summary.blobs.present += 1,
            Some(blobs::Outcome::Imported(size)) => {
                summary.blobs.imported += 1;
                summary.bytes += size;
                fresh.insert(digest, repo);
            }
            Some(blobs::Outcome::Skipped(reason)) => {
                summary.skipped.push(skip_blob(digest, reason));
            }
        }
    }
    Ok(fresh)
}

/// Runs `each` over `items`, [`CONCURRENT_SMALL`] at a time, advancing the progress.
async fn for_each_small<'a, T: Sync, O, F, Fut>(
    items: &'a [T],
    progress: &'a Progress,
    each: F,
) -> Result<Vec<O>, ImportError>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<O, ImportError>> + 'a,
{
    futures::stream::iter(items)
        .map(|item| {
            let done = each(item);
            async move {
                let outcome = done.await;
                progress.add_object();
                outcome
            }
        })
        .buffer_unordered(CONCURRENT_SMALL)
        .try_collect()
        .await
}

/// A repository's blob links, then its manifests, then its tags.
async fn import_repository(
    store: &Store,
    source: &Distribution,
    plan: &RepoPlan,
    fresh: &BTreeMap<&Digest, &RepoName>,
    progress: &Progress,
    summary: &mut Summary,
) -> Result<(), ImportError> {
    let repo = &plan.name;
    let target = ImportError::Target;
    let links = for_each_small(&plan.layers, progress, |digest| async move {
        if fresh.get(digest) == Some(&repo) {
            Ok(Small::Imported) // linked by the upload that brought the blob in
        } else if store
            .repo_blob_size(repo, digest)
            .await
            .map_err(target)?
            .is_some()
        {
            Ok(Small::Present)
        } else if store.blob_size(digest).await.map_err(target)?.is_some() {
            store.link_blob(repo, digest).await.map_err(target)?;
            Ok(Small::Imported)
        } else {
            Ok(Small::Nothing) // the blob was skipped, and reported
        }
    })
    .await?;
    for outcome in links {
        outcome.count(&mut summary.links, &mut summary.skipped);
    }

    let manifests = for_each_small(&plan.revisions, progress, |digest| async move {
        manifests::import_manifest(store, source, repo, digest).await
    })
    .await?;
    for (outcome, referrer) in manifests {
        outcome.count(&mut summary.manifests, &mut summary.skipped);
        referrer.count(&mut summary.referrers, &mut summary.skipped);
    }

    let tags = for_each_small(&plan.tags, progress, |(tag, digest)| async move {
        manifests::import_tag(store, repo, tag, digest).await
    })
    .await?;
    for outcome in tags {
        outcome.count(&mut summary.tags, &mut summary.skipped);
    }
    Ok(())
}
