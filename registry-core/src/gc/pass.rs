//! The whole pass: blob data may only be swept once every repository has
//! been accounted for.

use std::collections::HashSet;

use crate::digest::Digest;

use super::plan::{PassParams, RepoPlan};
use super::retention::within;

/// The blobs every repository still needs, gathered plan by plan. The only
/// way to a [`BlobSweep`] is [`PassLiveSet::blob_sweep`], which refuses when
/// any repository was blocked or could not be walked.
#[derive(Debug, Default)]
pub struct PassLiveSet {
    live: HashSet<Digest>,
    unaccounted: Vec<String>,
}

/// Blob data must not be swept in this pass: these repositories were not
/// fully accounted for (an unreadable manifest, or a walk that failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no blob data swept this pass: repositories not accounted for: {}", .repositories.join(", "))]
pub struct SweepForbidden {
    /// The repositories, in the order they were reported.
    pub repositories: Vec<String>,
}

impl PassLiveSet {
    /// An empty set.
    pub fn new() -> PassLiveSet {
        PassLiveSet::default()
    }

    /// Adds one repository's plan: its live blobs and recent links, or the
    /// fact that it is blocked.
    pub fn add(&mut self, repository: &str, plan: &RepoPlan) {
        match plan {
            RepoPlan::Sweep(sweep) => {
                self.live.extend(sweep.live_blobs().iter().cloned());
                self.live.extend(sweep.recent_links().iter().cloned());
            }
            RepoPlan::Blocked { .. } => self.unaccounted.push(repository.to_owned()),
        }
    }

    /// Records a repository the walk could not read (an IO error): what it
    /// references is unknown, so no blob data may go this pass.
    pub fn unaccounted(&mut self, repository: &str) {
        self.unaccounted.push(repository.to_owned());
    }

    /// The blob sweep, when every repository was accounted for.
    pub fn blob_sweep(self, params: &PassParams) -> Result<BlobSweep, SweepForbidden> {
        if self.unaccounted.is_empty() {
            Ok(BlobSweep {
                live: self.live,
                now: params.now,
                delay: params.delay,
            })
        } else {
            Err(SweepForbidden {
                repositories: self.unaccounted,
            })
        }
    }
}

/// Decides, blob by blob, whether its data may be deleted.
#[derive(Debug)]
pub struct BlobSweep {
    live: HashSet<Digest>,
    now: u64,
    delay: u64,
}

impl BlobSweep {
    /// Whether the data of `digest`, last written at `written` (unix
    /// time units), may be deleted: no repository needs it and it is older
    /// than the grace period (an upload just committed has no link yet).
    ///
    /// The walk cannot see a link made after it (a mount or re-push of an
    /// old blob while the pass runs), so `written` should be read just
    /// before deleting, from a time storage refreshes whenever it links
    /// the blob.
    pub fn may_delete(&self, digest: &Digest, written: u64) -> bool {
        !self.live.contains(digest) && !within(written, self.now, self.delay)
    }

    /// How many distinct blobs some repository needs.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }
}
