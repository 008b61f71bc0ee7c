//! Garbage collection, the pure part: retention policies, the mark of one
//! repository, the blob sweep decision of a pass, and storage use.
//!
//! The storage walk builds a [`RepoSnapshot`] per repository (tags,
//! manifest revisions with what each references, layer links, each with
//! the time it was written); [`plan`] turns it into a [`RepoPlan`]; a
//! [`PassLiveSet`] gathers the plans and, only if every repository was
//! accounted for, yields the [`BlobSweep`] that decides blob data. No
//! clock is read here: `now` is in [`PassParams`].
//!
//! # The rule
//!
//! 1. Tags. Without a policy, or with one without `keeptags`, every tag is
//!    kept. Otherwise a tag is kept when some `keeptags` entry keeps it, or
//!    when it was pushed within `delay`.
//! 2. Roots. The manifests of kept tags are kept, and so is every manifest
//!    that may not go even if untagged: one pushed within `delay`, and any
//!    when neither `deleteuntagged` (older than it) nor
//!    [`PassParams::delete_untagged_all`] lets untagged manifests go. A
//!    policy with neither `keeptags` nor `deleteuntagged` protects its
//!    repositories from both.
//! 3. Closure. A kept index keeps its children; a kept manifest keeps its
//!    referrers (a signature, a signature of that signature). What is not
//!    kept is untagged and goes.
//! 4. Live blobs. A kept manifest keeps its own bytes, its config and its
//!    layers, present or not. A layer link that is not live goes when it
//!    is older than `delay`.
//! 5. Eviction ([`plan_evicting`], a pull-through cache's repositories):
//!    a tag whose manifest was not pulled within the window goes, and so
//!    does an untagged manifest not pulled within it, whatever the policy
//!    keeps; still never within `delay`, and the closure of what stays is
//!    kept as in 3. The last pull is the later of the tag's and its
//!    manifest revision's times, which a pull refreshes.
//! 6. Blob data goes when no repository keeps it (live or recently
//!    linked) and it is older than `delay`, and only when no repository
//!    had an unreadable manifest or failed to be walked.
//!
//! # Why it is safe
//!
//! - Nothing written within `delay` is deleted (tags, manifests, links,
//!   data): a push in progress uploads its layers before the manifest
//!   names them, and its links stay until the manifest can protect them.
//! - Deletion follows references only forwards from what is kept: what a
//!   kept manifest reaches is kept, so a pull of any kept tag or kept
//!   digest still finds every byte, missing references aside (they were
//!   missing before the pass and are not ours to fix).
//! - A manifest that could not be read may reference anything, so its
//!   repository is left whole ([`RepoPlan::Blocked`]) and no blob data is
//!   swept ([`PassLiveSet::blob_sweep`] returns [`SweepForbidden`]): the
//!   types make it impossible to get a blob sweep without accounting for
//!   every repository.
//! - What this cannot see: content linked after the walk (a push or a
//!   cross-repository mount of an old blob while the pass runs). The
//!   caller must check storage timestamps again before deleting; the
//!   grace period is what gives it room.
//!
//! Ties in push time are broken by tag name, so a plan never depends on
//! map order. Links (tags, revisions, layers) should be deleted before
//! blob data, so that an interrupted pass leaves no link to missing data.

mod glob;
mod pass;
mod plan;
mod retention;
mod summary;
mod usage;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use glob::{GlobError, RepoGlob, TagGlob};
pub use pass::{BlobSweep, PassLiveSet, SweepForbidden};
pub use plan::{
    plan, plan_evicting, ManifestInfo, ManifestRefs, PassParams, RepoPlan, RepoSnapshot, Sweep,
    TagInfo,
};
pub use retention::{
    KeepTagsConfig, Policy, PolicyConfig, PolicyError, PolicyErrorKind, RetentionPolicies,
};
pub use summary::RepoSummary;
pub use usage::{usage, RepoBlobs, RepoUsage, Usage};
