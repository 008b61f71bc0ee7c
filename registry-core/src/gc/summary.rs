//! What a plan would do, for logs and `--dry-run` output.

use std::fmt;

use serde::Serialize;

use crate::digest::Digest;

use super::plan::RepoPlan;

/// One repository's plan as counts and names; `Display` prints a line of
/// counts followed by one indented line per item, `Serialize` gives JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSummary {
    /// The repository.
    pub repository: String,
    /// Unreadable manifests; when not empty nothing else is listed, as
    /// nothing in the repository is deleted.
    pub unreadable: Vec<Digest>,
    /// Tags retention deletes.
    pub deleted_tags: Vec<String>,
    /// Manifest revisions deleted.
    pub deleted_manifests: Vec<Digest>,
    /// Layer links swept.
    pub swept_layer_links: Vec<Digest>,
    /// Distinct blobs still referenced by the repository's kept manifests.
    pub live_blobs: usize,
}

impl RepoPlan {
    /// The plan as a summary for `repository`.
    pub fn summary(&self, repository: &str) -> RepoSummary {
        let mut summary = RepoSummary {
            repository: repository.to_owned(),
            unreadable: Vec::new(),
            deleted_tags: Vec::new(),
            deleted_manifests: Vec::new(),
            swept_layer_links: Vec::new(),
            live_blobs: 0,
        };
        match self {
            RepoPlan::Blocked { unreadable } => summary.unreadable = unreadable.clone(),
            RepoPlan::Sweep(sweep) => {
                summary.deleted_tags = sweep.tags().to_vec();
                summary.deleted_manifests = sweep.manifests().to_vec();
                summary.swept_layer_links = sweep.layer_links().to_vec();
                summary.live_blobs = sweep.live_blobs().len();
            }
        }
        summary
    }
}

impl fmt::Display for RepoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.unreadable.is_empty() {
            writeln!(
                f,
                "{}: blocked by {} unreadable manifest(s): nothing deleted here, no blob data deleted this pass",
                self.repository,
                self.unreadable.len()
            )?;
            return self
                .unreadable
                .iter()
                .try_for_each(|d| writeln!(f, "  unreadable manifest {d}"));
        }
        writeln!(
            f,
            "{}: {} tag(s), {} manifest(s), {} layer link(s) to delete; {} live blob(s)",
            self.repository,
            self.deleted_tags.len(),
            self.deleted_manifests.len(),
            self.swept_layer_links.len(),
            self.live_blobs
        )?;
        self.deleted_tags
            .iter()
            .try_for_each(|t| writeln!(f, "  tag {t}"))?;
        self.deleted_manifests
            .iter()
            .try_for_each(|d| writeln!(f, "  manifest {d}"))?;
        self.swept_layer_links
            .iter()
            .try_for_each(|d| writeln!(f, "  layer link {d}"))
    }
}
