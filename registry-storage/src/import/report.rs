//! What an import reports: progress while it runs, the objects it left out and why, and
//! the summary at the end.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use registry_core::{Digest, RepoName};

/// Counters the import advances as it goes, for a progress display to read at any time
/// from another task. Totals are known once the source has been scanned.
#[derive(Debug, Default)]
pub struct Progress {
    total_bytes: AtomicU64,
    total_objects: AtomicU64,
    bytes: AtomicU64,
    objects: AtomicU64,
}

/// One reading of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgressSnapshot {
    /// Bytes of blob data to go through (0 while the source is being scanned).
    pub total_bytes: u64,
    /// Blobs, links, manifests and tags to go through.
    pub total_objects: u64,
    /// Blob bytes verified so far (copied, linked or found already present).
    pub bytes: u64,
    /// Objects done so far, whatever the outcome.
    pub objects: u64,
}

impl Progress {
    /// The current counts.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            total_bytes: self.total_bytes.load(Ordering::Relaxed),
            total_objects: self.total_objects.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            objects: self.objects.load(Ordering::Relaxed),
        }
    }

    pub(super) fn set_totals(&self, bytes: u64, objects: u64) {
        self.total_bytes.store(bytes, Ordering::Relaxed);
        self.total_objects.store(objects, Ordering::Relaxed);
    }

    pub(super) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn add_object(&self) {
        self.objects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why an object of the source was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The blob's data does not hash to its digest.
    BlobCorrupt {
        /// What the data hashes to.
        actual: Digest,
    },
    /// The blob is linked but its data file is missing.
    BlobMissing,
    /// The blob's data could not be read to the end.
    BlobUnreadable {
        /// The read error.
        error: String,
    },
    /// The manifest's bytes do not hash to its digest.
    ManifestCorrupt {
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The manifest is linked but its bytes are missing.
    ManifestMissing,
    /// The manifest is larger than this registry accepts.
    ManifestTooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// The manifest is not one this registry accepts (a schema 1 manifest, say).
    ManifestInvalid {
        /// What the manifest validation said.
        message: String,
    },
    /// Blobs the manifest needs are not in the repository (skipped or never linked).
    ManifestNeedsBlobs {
        /// The blobs missing, every one.
        missing: Vec<Digest>,
    },
    /// The tag points at a manifest that is not in the repository after the import.
    TagTargetMissing {
        /// The digest the tag points at.
        target: Digest,
    },
    /// An entry of the source layout that cannot be read as what its place says it is.
    Unreadable {
        /// What is wrong with it.
        why: String,
    },
}

impl SkipReason {
    /// True when the source's bytes are damaged or gone (as opposed to a manifest this
    /// registry does not accept, or an object left out because another one was).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            SkipReason::BlobCorrupt { .. }
                | SkipReason::BlobMissing
                | SkipReason::BlobUnreadable { .. }
                | SkipReason::ManifestCorrupt { .. }
                | SkipReason::ManifestMissing
                | SkipReason::Unreadable { .. }
        )
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::BlobCorrupt { actual } => write!(f, "corrupt: its data hashes to {actual}"),
            SkipReason::BlobMissing => f.write_str("missing: linked, but its data file is gone"),
            SkipReason::BlobUnreadable { error } => write!(f, "unreadable: {error}"),
            SkipReason::ManifestCorrupt { actual } => {
                write!(f, "corrupt: its bytes hash to {actual}")
            }
            SkipReason::ManifestMissing => f.write_str("missing: linked, but its bytes are gone"),
            SkipReason::ManifestTooLarge { size } => write!(
                f,
                "too large: {size} bytes, over the {} byte limit",
                registry_core::manifest::MAX_MANIFEST_BYTES
            ),
            SkipReason::ManifestInvalid { message } => write!(f, "not accepted: {message}"),
            SkipReason::ManifestNeedsBlobs { missing } => {
                f.write_str("needs blobs not imported:")?;
                for digest in missing {
                    write!(f, " {digest}")?;
                }
                Ok(())
            }
            SkipReason::TagTargetMissing { target } => {
                write!(f, "points at {target}, which was not imported")
            }
            SkipReason::Unreadable { why } => f.write_str(why),
        }
    }
}

/// An object of the source left out of the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// What kind of object: `blob`, `manifest`, `tag` or `entry` (of the layout).
    pub kind: &'static str,
    /// The object: a digest, a tag name or a key of the source layout.
    pub object: String,
    /// The repository, for manifests and tags.
    pub repo: Option<RepoName>,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.object)?;
        if let Some(repo) = &self.repo {
            write!(f, " in {}", repo.as_str())?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How many objects of one kind were written by this run and how many were already
/// there (from an earlier, interrupted run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Written by this run.
    pub imported: u64,
    /// Found already in place.
    pub present: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Repositories found in the source.
    pub repositories: u64,
    /// Distinct blobs (data files).
    pub blobs: Count,
    /// Blob links into repositories.
    pub links: Count,
    /// Manifests, counted once per repository.
    pub manifests: Count,
    /// Tags.
    pub tags: Count,
    /// Referrers entries recorded for manifests with a `subject`.
    pub referrers: Count,
    /// Blob bytes written by this run (copied or hard-linked).
    pub bytes: u64,
    /// Everything left out, in the order found.
    pub skipped: Vec<Skip>,
}

impl Summary {
    /// True when this run wrote nothing: a re-run after a complete import.
    pub fn wrote_nothing(&self) -> bool {
        [
            self.blobs,
            self.links,
            self.manifests,
            self.tags,
            self.referrers,
        ]
        .iter()
        .all(|c| c.imported == 0)
    }

    /// Objects this run went through, written or already present (for objects/s).
    pub fn objects(&self) -> u64 {
        [self.blobs, self.links, self.manifests, self.tags]
            .iter()
            .map(|c| c.imported + c.present)
            .sum()
    }
}
