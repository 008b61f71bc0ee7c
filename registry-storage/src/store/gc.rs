//! Garbage collection over storage, while the registry serves: the walk that builds each
//! repository's [`RepoSnapshot`], the deletions its [`RepoPlan`] allows, and the sweep of
//! blob data no repository links any more. What is live is decided in
//! `registry_core::gc`; this module only reads and deletes.
//!
//! # The rule that keeps pushes in progress safe
//!
//! Nothing is deleted by a plain `delete`: every deletion is
//! [`Backend::delete_if_older`](crate::Backend::delete_if_older) with a cutoff of
//! `now - (delay + refresh)`, which cannot remove an object written or touched after the
//! cutoff, whatever process or replica wrote it. Every request that relies on an object
//! staying makes it new first, in storage, where every pass can see it:
//! - an upload's commit renames its bytes into place (new), then links them (new);
//! - a manifest push touches or rewrites its own bytes, rewrites its revision link, and
//!   claims ([`Store::repo_blob_size`], [`Store::claim_manifests`]) every blob and child
//!   it names;
//! - a blob `HEAD` or `GET` answered 200, and the source of a mount, claim the link;
//! - a claim touches a link older than `refresh` (a quarter of the delay), so a claimed
//!   link is at most `refresh` old when the claim answers, and no pass can delete it
//!   within `delay` after.
//!
//! A claim that finds the link gone answers "unknown" (the client uploads again), never
//! 200. Blob data goes only when no layer link names it in a walk made *after* this
//! pass's link deletions (a link a claim kept is seen) and it is older than the cutoff
//! (a commit or manifest push that lands meanwhile makes it new). So a client that was
//! told a blob exists within `delay` finds it when its manifest arrives, in this process
//! or another. An unreadable manifest stops its repository's deletions and the whole blob
//! sweep (`registry_core::gc::SweepForbidden`). A pass killed at any point leaves links
//! deleted before the data they name, never after, and the next pass finishes the job.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use registry_core::gc::{
    self, ManifestInfo, ManifestRefs, PassLiveSet, PassParams, RepoBlobs, RepoPlan, RepoSnapshot,
    RetentionPolicies, Sweep, TagInfo, Usage,
};
use registry_core::{manifest, Digest, RepoName};
use serde::Serialize;

use super::pace::Turn;
use super::Store;
use crate::backend::{ObjectEntry, ObjectMeta};
use crate::error::StorageError;
use crate::layout;

/// Manifests read in one batch during the walk of one repository ([`Backend::get_many`]):
/// the file system reads a batch in one blocking task. Their bytes are parsed and dropped
/// batch by batch, so memory holds a few batches, whatever the repository's size.
///
/// [`Backend::get_many`]: crate::Backend::get_many
const READ_BATCH: usize = 128;

/// Batches of reads in flight at once, in one repository; also the referrer entries
/// read at once.
const CONCURRENT_READS: usize = 4;

/// Repositories walked (and their deletions made) at once: each one's work is a chain of
/// small calls that wait on the storage, so many overlap (8 → 32 took a 10,000-manifest
/// pass from 4.5 to 3.7 s on the file system).
const CONCURRENT_REPOSITORIES: usize = 32;

/// Deletions handed to the backend in one call ([`Backend::delete_many_if_older`]): the
/// file system does a batch in one blocking task instead of a thread hand-off per file
/// (the hand-offs took about a third of a pass's CPU).
///
/// [`Backend::delete_many_if_older`]: crate::Backend::delete_many_if_older
const DELETE_BATCH: usize = 8;

/// Batches of deletions in flight at once, in one repository and in the blob sweep: a
/// file deletion waits on the disk (on a file system mounted with `discard`, each freed
/// file and directory is a discard request), so many overlap. Deletions are made
/// durable together afterwards (`sync_deletions`), so this overlaps no disk flushes.
const CONCURRENT_BATCHES: usize = 64;

/// How long after its last claim a link is touched again: a quarter of the grace period.
/// The sweep keeps everything younger than `delay + refresh`, so a claim protects what it
/// answered for a whole `delay`.
pub fn claim_refresh(delay: Duration) -> Duration {
    delay / 4
}

/// What one pass does.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// The grace period: nothing written, linked, mounted or claimed within it is deleted.
    pub delay: Duration,
    /// Which tags and untagged manifests each repository keeps.
    pub retention: RetentionPolicies,
    /// Untagged manifests go whatever their age and policy (`--delete-untagged`), never
    /// within the delay nor under a policy that protects its repositories.
    pub delete_untagged: bool,
    /// Decide and report, delete nothing.
    pub dry_run: bool,
    /// Pull-through caches' eviction rules: what was not pulled within a window goes.
    pub evict: Vec<Eviction>,
}

/// A pull-through cache's eviction rule: in the repositories under `prefix`, a tag whose
/// manifest was not pulled within `after`, and an untagged manifest not pulled within
/// it, go (then the blobs nothing else keeps). A pull records itself with
/// [`Store::record_pull`]; deletions follow the same safety rule as every other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The repository prefix (whole name components): `docker.io` covers
    /// `docker.io/library/alpine`, not `docker.iox/a`.
    pub prefix: String,
    /// The window.
    pub after: Duration,
}

impl Eviction {
    /// How stale a pull record may get before a pull refreshes it: an eighth of the
    /// window, so most pulls cost no write and eviction comes at most that late.
    pub fn refresh(after: Duration) -> Duration {
        after / 8
    }
}

/// The window of the first rule whose prefix covers `name`, in milliseconds.
fn eviction_window(rules: &[Eviction], name: &str) -> Option<u64> {
    rules
        .iter()
        .find(|rule| {
            name.strip_prefix(rule.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .map(|rule| u64::try_from(rule.after.as_millis()).unwrap_or(u64::MAX))
}

/// What one pass found and did.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// Nothing was deleted: the counts say what a real pass would delete.
    pub dry_run: bool,
    /// When the pass started, unix seconds.
    pub started: u64,
    /// How long it took.
    pub seconds: f64,
    /// Repositories walked.
    pub repositories: usize,
    /// Manifest revisions walked.
    pub manifests: usize,
    /// Blobs (data objects) walked.
    pub blobs: usize,
    /// Tags deleted by retention, as `repository:tag`.
    pub deleted_tags: Vec<String>,
    /// Manifests deleted, as `repository@digest`.
    pub deleted_manifests: Vec<String>,
    /// Layer links deleted.
    pub swept_links: usize,
    /// Blob data objects deleted.
    pub deleted_blobs: usize,
    /// Bytes of blob data deleted.
    pub freed_bytes: u64,
    /// Deletions skipped because the object was written or claimed after the walk.
    pub kept_as_new: usize,
    /// Manifests that could not be read or parsed, as `repository@digest`: their
    /// repositories lost nothing, and no blob data was swept.
    pub unreadable: Vec<String>,
    /// Why blob data was not swept, when it was not.
    pub blob_sweep_skipped: Option<String>,
    /// Storage operations the pass made (list pages, reads, deletes).
    pub storage_ops: u64,
    /// Bytes per repository, after the pass.
    pub usage: Usage,
}

/// One repository as walked: the snapshot the plan reads, and what the deletions need
/// that the snapshot does not keep (exact times, subjects).
struct Scan {
    snapshot: RepoSnapshot,
    tag_times: HashMap<String, SystemTime>,
    revision_times: HashMap<Digest, SystemTime>,
    layer_times: HashMap<Digest, SystemTime>,
}

/// A listed manifest revision, as read.
enum Revision {
    /// What it references; `None` when it could not be read or parsed.
    Read(Option<ManifestRefs>),
    /// Its revision link was deleted between the listing and the read.
    Deleted,
}

/// What the repositories' walks leave for the blob sweep and the usage report.
struct Marks {
    /// What every repository keeps.
    live: PassLiveSet,
    /// What every repository references and links once its plan is applied.
    usage: Vec<RepoBlobs>,
    /// Storage operations the walks made.
    ops: u64,
}

/// Counts storage operations for the report.
#[derive(Default)]
struct Ops(u64);

/// What one repository's part of a pass found and did, merged into the report in
/// catalog order.
struct RepoOutcome {
    name: String,
    plan: RepoPlan,
    manifests: usize,
    usage: RepoBlobs,
    deleted: Deleted,
    ops: u64,
}

/// What one repository lost (or, in a dry run, would lose).
#[derive(Default)]
struct Deleted {
    tags: Vec<String>,
    manifests: Vec<String>,
    swept_links: usize,
    kept_as_new: usize,
}

impl Store {
    /// Runs one garbage collection pass over the whole store at `now`. Safe while this
    /// and other processes serve the same storage (see the module docs).
    pub async fn collect_garbage(
        &self,
        options: &GcOptions,
        now: SystemTime,
    ) -> Result<GcReport, StorageError> {
        let clock = Instant::now();
        let grace = options.delay + claim_refresh(options.delay);
        let cutoff = now.checked_sub(grace).unwrap_or(UNIX_EPOCH);
        // registry_core::gc works in whatever unit it is given: milliseconds here, so a
        // grace period below a second (tests) is exact.
        let params = PassParams {
            now: millis(now),
            delay: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            delete_untagged_all: options.delete_untagged,
        };
        let mut ops = Ops::default();
        let mut report = GcReport {
            dry_run: options.dry_run,
            started: millis(now) / 1000,
            seconds: 0.0,
            repositories: 0,
            manifests: 0,
            blobs: 0,
            deleted_tags: Vec::new(),
            deleted_manifests: Vec::new(),
            swept_links: 0,
            deleted_blobs: 0,
            freed_bytes: 0,
            kept_as_new: 0,
            unreadable: Vec::new(),
            blob_sweep_skipped: None,
            storage_ops: 0,
            usage: gc::usage(&[], &HashMap::new()),
        };

        let mut marks = Marks {
            live: PassLiveSet::new(),
            usage: Vec::new(),
            ops: 0,
        };
        // The blob data walk and the repositories' walks and deletions are independent
        // (a blob goes only if old and unlinked in the walk made after them): at once.
        let mut data_ops = Ops::default();
        let (data, ()) = futures::future::try_join(
            self.walk_blob_data(&mut data_ops),
            self.collect_repositories(options, &params, cutoff, &mut report, &mut marks),
        )
        .await?;
        ops.0 += data_ops.0 + marks.ops;
        report.blobs = data.len();
        if !options.dry_run {
            // Links must be gone for good before the data they named goes: one sync per
            // directory here instead of one per deletion.
            self.backend.sync_deletions().await?;
        }

        match marks.live.blob_sweep(&params) {
            Err(forbidden) => report.blob_sweep_skipped = Some(forbidden.to_string()),
            Ok(sweep) => {
                // Links as they are now, after this pass's deletions: a link a claim kept
                // (or a push made) since the walk keeps its data.
                let linked = if options.dry_run {
                    HashSet::new()
                } else {
                    self.walk_layer_links(&mut ops).await?
                };
                let doomed: Vec<(String, u64)> = data
                    .iter()
                    .filter(|(digest, meta)| {
                        sweep.may_delete(digest, millis(meta.modified)) && !linked.contains(*digest)
                    })
                    .map(|(digest, meta)| (layout::blob_data(digest), meta.size))
                    .collect();
                if options.dry_run {
                    report.deleted_blobs += doomed.len();
                    report.freed_bytes += doomed.iter().map(|(_, size)| size).sum::<u64>();
                } else {
                    let keys: Vec<(String, SystemTime)> = doomed
                        .iter()
                        .map(|(key, _)| (key.clone(), cutoff))
                        .collect();
                    let deleted = self.delete_batched(&keys).await?;
                    ops.0 += deleted.len() as u64;
                    for ((_, size), deleted) in doomed.iter().zip(deleted) {
                        if deleted {
                            report.deleted_blobs += 1;
                            report.freed_bytes += size;
                        } else {
                            report.kept_as_new += 1;
                        }
                    }
                }
            }
        }

        if !options.dry_run {
            self.backend.sync_deletions().await?;
        }
        let sizes: HashMap<Digest, u64> = data.iter().map(|(d, m)| (d.clone(), m.size)).collect();
        report.usage = gc::usage(&marks.usage, &sizes);
        report.storage_ops = ops.0;
        report.seconds = clock.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Walks every repository and makes the deletions its plan allows, several at once,
    /// merging each outcome into the pass's report and marks in catalog order.
    async fn collect_repositories(
        &self,
        options: &GcOptions,
        params: &PassParams,
        cutoff: SystemTime,
        report: &mut GcReport,
        marks: &mut Marks,
    ) -> Result<(), StorageError> {
        let repositories = self
            .list_repositories()
            .await?
            .into_iter()
            .filter_map(|name| Some((name.parse::<RepoName>().ok()?, name)))
            .collect::<Vec<_>>();
        // Repositories are independent until the blob sweep: several are walked and
        // cleaned at once, and merged in catalog order.
        let mut outcomes = futures::stream::iter(repositories)
            .map(|(repo, name)| self.collect_repository(repo, name, options, params, cutoff))
            .buffered(CONCURRENT_REPOSITORIES);
        while let Some(outcome) = outcomes.try_next().await? {
            let name = &outcome.name;
            report.repositories += 1;
            report.manifests += outcome.manifests;
            marks.ops += outcome.ops;
            marks.live.add(name, &outcome.plan);
            if let RepoPlan::Blocked { unreadable } = &outcome.plan {
                report
                    .unreadable
                    .extend(unreadable.iter().map(|d| format!("{name}@{d}")));
            }
            report.deleted_tags.extend(outcome.deleted.tags);
            report.deleted_manifests.extend(outcome.deleted.manifests);
            report.swept_links += outcome.deleted.swept_links;
            report.kept_as_new += outcome.deleted.kept_as_new;
            marks.usage.push(outcome.usage);
        }
        Ok(())
    }

    /// The bytes each repository holds now (`registry du`): a walk like a pass's, with
    /// no decision and no deletion.
    pub async fn usage(&self) -> Result<Usage, StorageError> {
        let mut ops = Ops::default();
        let data = self.walk_blob_data(&mut ops).await?;
        let mut input = Vec::new();
        for name in self.list_repositories().await? {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            let scan = self.scan_repository(&repo, &mut ops).await?;
            input.push(usage_after(&name, &scan.snapshot, None));
        }
        let sizes: HashMap<Digest, u64> = data.iter().map(|(d, m)| (d.clone(), m.size)).collect();
        Ok(gc::usage(&input, &sizes))
    }

    /// Claims the manifests an index names (those this repository has): each revision
    /// link older than the claim refresh is touched, so a pass that found the child
    /// untagged before this push cannot delete it under the index (see the module docs).
    pub async fn claim_manifests(
        &self,
        repo: &RepoName,
        digests: impl IntoIterator<Item = &Digest>,
    ) -> Result<(), StorageError> {
        for digest in digests {
            self.claim(&layout::revision_link(repo, digest)).await?;
        }
        Ok(())
    }

    /// Touches `key` when it is older than the claim refresh; whether it (still) exists.
    pub(super) async fn claim(&self, key: &str) -> Result<bool, StorageError> {
        self.touch_if_older(key, self.claim_refresh).await
    }

    /// Records a pull of a cached manifest for [`Eviction`]: its revision link is touched
    /// when older than `refresh` ([`Eviction::refresh`]), so a pull costs a `stat` and,
    /// once per `refresh`, a touch. Whether the revision (still) exists.
    pub async fn record_pull(
        &self,
        repo: &RepoName,
        digest: &Digest,
        refresh: Duration,
    ) -> Result<bool, StorageError> {
        self.touch_if_older(&layout::revision_link(repo, digest), refresh)
            .await
    }

    /// Touches `key` when it is older than `refresh`; whether it (still) exists.
    async fn touch_if_older(&self, key: &str, refresh: Duration) -> Result<bool, StorageError> {
        let Some(meta) = self.backend.stat(key).await? else {
            return Ok(false);
        };
        let stale = SystemTime::now()
            .duration_since(meta.modified)
            .is_ok_and(|age| age > refresh);
        if stale {
            return self.backend.touch(key).await;
        }
        Ok(true)
    }

    /// One repository's part of a pass: the walk, the plan, and (unless a dry run) the
    /// deletions it allows.
    async fn collect_repository(
        &self,
        repo: RepoName,
        name: String,
        options: &GcOptions,
        params: &PassParams,
        cutoff: SystemTime,
    ) -> Result<RepoOutcome, StorageError> {
        let mut ops = Ops::default();
        let scan = self.scan_repository(&repo, &mut ops).await?;
        let plan = gc::plan_evicting(
            &scan.snapshot,
            options.retention.for_repository(&name),
            eviction_window(&options.evict, &name),
            params,
        );
        let mut deleted = Deleted::default();
        match &plan {
            RepoPlan::Blocked { .. } => {}
            RepoPlan::Sweep(sweep) if options.dry_run => {
                deleted.tags = sweep.tags().iter().map(|t| format!("{name}:{t}")).collect();
                deleted.manifests = sweep
                    .manifests()
                    .iter()
                    .map(|d| format!("{name}@{d}"))
                    .collect();
                deleted.swept_links = sweep.layer_links().len();
            }
            RepoPlan::Sweep(sweep) => {
                self.apply(&repo, &scan, sweep, cutoff, &mut deleted, &mut ops)
                    .await?;
            }
        }
        Ok(RepoOutcome {
            manifests: scan.snapshot.manifests.len(),
            usage: usage_after(&name, &scan.snapshot, Some(&plan)),
            deleted,
            ops: ops.0,
            name,
            plan,
        })
    }

    /// Deletes what one repository's plan allows, each object only if it is still as old
    /// as the walk saw it: tags, then manifests (their referrer entries first), then
    /// layer links, so an interrupted pass never leaves a link to a deleted object.
    /// Within each kind the deletions run in batches.
    async fn apply(
        &self,
        repo: &RepoName,
        scan: &Scan,
        sweep: &Sweep,
        cutoff: SystemTime,
        report: &mut Deleted,
        ops: &mut Ops,
    ) -> Result<(), StorageError> {
        let name = repo.as_str();
        let resolution = self.backend.time_resolution();
        // A tag goes only if not pushed again since the walk read it.
        let tags: Vec<(String, SystemTime)> = sweep
            .tags()
            .iter()
            .map(|tag| {
                let seen = scan.tag_times.get(tag).copied().unwrap_or(UNIX_EPOCH);
                (
                    format!("{}/{tag}", layout::tags_dir(repo)),
                    seen + resolution,
                )
            })
            .collect();
        let deleted = self.delete_batched(&tags).await?;
        ops.0 += deleted.len() as u64;
        for ((tag, (key, _)), deleted) in sweep.tags().iter().zip(&tags).zip(deleted) {
            self.forget_cached_tag(key);
            if deleted {
                report.tags.push(format!("{name}:{tag}"));
            } else {
                report.kept_as_new += 1;
            }
        }

        let manifests = sweep.manifests();
        let referrers: Vec<Option<(String, Bytes)>> = futures::stream::iter(manifests.to_vec())
            .map(|digest| async move { self.take_referrer_entry(repo, scan, &digest).await })
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await?;
        let links: Vec<(String, SystemTime)> = manifests
            .iter()
            .map(|digest| {
                let seen = scan
                    .revision_times
                    .get(digest)
                    .copied()
                    .unwrap_or(UNIX_EPOCH);
                (
                    layout::revision_link(repo, digest),
                    cutoff.min(seen + resolution),
                )
            })
            .collect();
        let deleted = self.delete_batched(&links).await?;
        ops.0 += 2 * deleted.len() as u64;
        let outcomes = manifests
            .iter()
            .zip(&links)
            .zip(deleted.into_iter().zip(referrers));
        for ((digest, (key, _)), (deleted, referrer)) in outcomes {
            self.forget_cached_manifest(repo, key);
            if deleted {
                report.manifests.push(format!("{name}@{digest}"));
                continue;
            }
            report.kept_as_new += 1;
            // Pushed again since the walk: it keeps its place in its subject's list.
            if let Some((entry, descriptor)) = referrer {
                self.backend.put(&entry, descriptor).await?;
            }
        }

        let links: Vec<(String, SystemTime)> = sweep
            .layer_links()
            .iter()
            .map(|digest| {
                let seen = scan.layer_times.get(digest).copied().unwrap_or(UNIX_EPOCH);
                (
                    layout::layer_link(repo, digest),
                    cutoff.min(seen + resolution),
                )
            })
            .collect();
        let deleted = self.delete_batched(&links).await?;
        ops.0 += deleted.len() as u64;
        for deleted in deleted {
            if deleted {
                report.swept_links += 1;
            } else {
                report.kept_as_new += 1;
            }
        }
        Ok(())
    }

    /// Removes a doomed manifest's entry in its subject's referrers list, if it declares
    /// a subject; the entry and what it held, to put back if the manifest stays.
    async fn take_referrer_entry(
        &self,
        repo: &RepoName,
        scan: &Scan,
        digest: &Digest,
    ) -> Result<Option<(String, Bytes)>, StorageError> {
        let subject = scan
            .snapshot
            .manifests
            .get(digest)
            .and_then(|m| m.refs.as_ref())
            .and_then(|r| r.subject.as_ref());
        let Some(subject) = subject else {
            return Ok(None);
        };
        let entry = layout::referrer_link(repo, subject, digest);
        let descriptor = self.backend.get(&entry).await?;
        self.backend.delete(&entry).await?;
        Ok(descriptor.map(|d| (entry, d)))
    }

    /// `delete_if_older` for each `(key, cutoff)`, in batches, several at once; whether
    /// each went, in order.
    async fn delete_batched(
        &self,
        items: &[(String, SystemTime)],
    ) -> Result<Vec<bool>, StorageError> {
        // Owned batches: a future borrowing from the iterator would not be `Send` for every
        // lifetime, which the server's spawned pass needs.
        let batches: Vec<Vec<(String, SystemTime)>> =
            items.chunks(DELETE_BATCH).map(<[_]>::to_vec).collect();
        let batches: Vec<Vec<bool>> = futures::stream::iter(batches)
            .map(|batch| async move {
                let _turn = self.turn().await;
                self.backend.delete_many_if_older(batch).await
            })
            .buffered(CONCURRENT_BATCHES)
            .try_collect()
            .await?;
        Ok(batches.concat())
    }

    /// Walks one repository: tags, manifest revisions (each manifest read and parsed for
    /// what it references) and layer links, each with its time.
    async fn scan_repository(&self, repo: &RepoName, ops: &mut Ops) -> Result<Scan, StorageError> {
        let mut scan = Scan {
            snapshot: RepoSnapshot::default(),
            tag_times: HashMap::new(),
            revision_times: HashMap::new(),
            layer_times: HashMap::new(),
        };
        // A tag that does not hold a digest fails the pass (`StorageError::Corrupt`,
        // naming it): what it pointed at cannot be known, so nothing may go.
        let turn = self.turn().await;
        let tags = self.list_tags_detailed(repo).await?.unwrap_or_default();
        drop(turn);
        ops.0 += 1 + tags.len() as u64;
        for tag in tags {
            scan.tag_times.insert(tag.name.clone(), tag.pushed);
            scan.snapshot.tags.insert(
                tag.name,
                TagInfo {
                    digest: tag.digest,
                    pushed: millis(tag.pushed),
                },
            );
        }

        let revisions = layout::revisions_dir(repo);
        let found: Vec<(Digest, ObjectMeta)> = self
            .list_all(&revisions, ops)
            .await?
            .into_iter()
            .filter_map(|e| Some((digest_of(&e.key, &revisions)?, e.meta)))
            .collect();
        ops.0 += 2 * found.len() as u64;
        let batches: Vec<Vec<(Digest, ObjectMeta)>> =
            found.chunks(READ_BATCH).map(<[_]>::to_vec).collect();
        let read: Vec<Vec<Revision>> = futures::stream::iter(batches)
            .map(|batch| async move { self.read_revisions(repo, &batch).await })
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await?;
        for ((digest, meta), revision) in found.into_iter().zip(read.into_iter().flatten()) {
            let Revision::Read(refs) = revision else {
                continue; // deleted since the listing: no longer in the repository
            };
            scan.revision_times.insert(digest.clone(), meta.modified);
            scan.snapshot.manifests.insert(
                digest,
                ManifestInfo {
                    pushed: millis(meta.modified),
                    refs,
                },
            );
        }

        let layers = format!("{}/{}", layout::repo_dir(repo), layout::LAYERS);
        for entry in self.list_all(&layers, ops).await? {
            if let Some(digest) = digest_of(&entry.key, &layers) {
                scan.layer_times.insert(digest.clone(), entry.meta.modified);
                scan.snapshot
                    .layers
                    .insert(digest, millis(entry.meta.modified));
            }
        }
        Ok(scan)
    }

    /// What listed manifest revisions reference, in order. A revision whose link is gone
    /// by the time it is read was deleted meanwhile (a DELETE racing the walk) and is left
    /// out, as if listed a moment later; one whose link is there but whose bytes cannot be
    /// read or parsed is unreadable (which blocks the sweep: it could reference anything).
    async fn read_revisions(
        &self,
        repo: &RepoName,
        listed: &[(Digest, ObjectMeta)],
    ) -> Result<Vec<Revision>, StorageError> {
        let digests: Vec<Digest> = listed.iter().map(|(digest, _)| digest.clone()).collect();
        let turn = self.turn().await;
        let read = self.get_manifests_uncached(repo, &digests).await?;
        drop(turn);
        let mut out = Vec::with_capacity(read.len());
        for (digest, read) in digests.iter().zip(read) {
            out.push(match read {
                Ok(Some(stored)) => Revision::Read(
                    manifest::validate(Some(&stored.media_type), &stored.bytes)
                        .ok()
                        .map(|m| ManifestRefs::from(&m)),
                ),
                Ok(None) => {
                    let key = layout::revision_link(repo, digest);
                    if self.backend.stat(&key).await?.is_none() {
                        Revision::Deleted
                    } else {
                        Revision::Read(None)
                    }
                }
                Err(StorageError::Corrupt { .. }) => Revision::Read(None),
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// Every blob data object, by digest, with its size and time.
    async fn walk_blob_data(
        &self,
        ops: &mut Ops,
    ) -> Result<HashMap<Digest, ObjectMeta>, StorageError> {
        let mut out = HashMap::new();
        for entry in self.list_all(layout::BLOBS, ops).await? {
            if let Some(digest) = layout::blob_digest(&entry.key) {
                out.insert(digest, entry.meta);
            }
        }
        Ok(out)
    }

    /// Every digest some repository links as a blob, walked now.
    async fn walk_layer_links(&self, ops: &mut Ops) -> Result<HashSet<Digest>, StorageError> {
        let mut out = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_page(layout::REPOSITORIES, after.as_deref(), ops)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for entry in page {
                if let Some(digest) = layout::linked_digest(&entry.key) {
                    out.insert(digest);
                }
            }
        }
        Ok(out)
    }

    /// Every object under `prefix`, page by page.
    async fn list_all(
        &self,
        prefix: &str,
        ops: &mut Ops,
    ) -> Result<Vec<ObjectEntry>, StorageError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(prefix, after.as_deref(), ops).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            out.extend(page);
        }
        Ok(out)
    }

    /// One page of objects under `prefix` after `after`, once the pace allows.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        ops: &mut Ops,
    ) -> Result<Vec<ObjectEntry>, StorageError> {
        let _turn = self.turn().await;
        ops.0 += 1;
        self.backend.list_objects(prefix, after, super::PAGE).await
    }

    /// Waits until the store's [`Pace`](super::Pace), if any, lets the next batch of a
    /// pass's storage calls start; the batch runs while the turn is held.
    async fn turn(&self) -> Turn {
        match &self.pace {
            Some(pace) => pace.turn().await,
            None => Turn::free(),
        }
    }
}

/// The blobs a repository references and links once `plan` (if any) is applied.
fn usage_after(name: &str, snapshot: &RepoSnapshot, plan: Option<&RepoPlan>) -> RepoBlobs {
    let mut linked: HashSet<Digest> = snapshot.layers.keys().cloned().collect();
    linked.extend(snapshot.manifests.keys().cloned());
    if let Some(RepoPlan::Sweep(sweep)) = plan {
        for gone in sweep.layer_links().iter().chain(sweep.manifests()) {
            linked.remove(gone);
        }
    }
    RepoBlobs {
        repository: name.to_owned(),
        referenced: snapshot.pulled_by_tags(),
        linked,
    }
}

/// The digest of a `<prefix>/<alg>/<hex>` key.
fn digest_of(key: &str, prefix: &str) -> Option<Digest> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// Milliseconds since the epoch (0 before it): the unit of every time given to the mark.
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
