//! One repository's mark: which tags and manifests go, which blobs are
//! live, which layer links can be swept.

use std::collections::{HashMap, HashSet};

use crate::digest::Digest;
use crate::manifest::Manifest;

use super::retention::{within, Policy};

/// A tag as the storage walk found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The manifest it points to.
    pub digest: Digest,
    /// When it was last pushed (its link's time), in the pass's time unit.
    pub pushed: u64,
}

/// What a manifest references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestRefs {
    /// Child manifests (an index's `manifests`).
    pub children: Vec<Digest>,
    /// Blobs: the config and the layers.
    pub blobs: Vec<Digest>,
    /// The manifest this one refers to (`subject`).
    pub subject: Option<Digest>,
}

impl From<&Manifest> for ManifestRefs {
    fn from(m: &Manifest) -> ManifestRefs {
        ManifestRefs {
            children: m.manifests.iter().map(|d| d.digest.clone()).collect(),
            blobs: m
                .config
                .iter()
                .chain(&m.layers)
                .map(|d| d.digest.clone())
                .collect(),
            subject: m.subject.as_ref().map(|d| d.digest.clone()),
        }
    }
}

/// A manifest revision as the storage walk found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// When it was pushed (its revision link's time), in the pass's time unit.
    pub pushed: u64,
    /// What it references; `None` when it could not be read or parsed,
    /// which blocks every sweep (see [`RepoPlan::Blocked`]).
    pub refs: Option<ManifestRefs>,
}

/// Everything the mark needs to know about one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoSnapshot {
    /// Tags by name.
    pub tags: HashMap<String, TagInfo>,
    /// Manifest revisions by digest.
    pub manifests: HashMap<Digest, ManifestInfo>,
    /// Layer links (config and layer blobs) by digest, with their link time.
    pub layers: HashMap<Digest, u64>,
}

/// The settings of one pass, the same for every repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassParams {
    /// The pass's clock, since the epoch, in the unit of every time here (the
    /// storage walk uses milliseconds); read once by the caller.
    pub now: u64,
    /// Grace period, in the same unit: nothing pushed or linked within it is deleted.
    pub delay: u64,
    /// `--delete-untagged`: untagged manifests go whatever their age
    /// (still never within `delay`, never under a protecting policy).
    pub delete_untagged_all: bool,
}

/// The outcome of the mark for one repository. `#[must_use]`, and the
/// sweep lists are only reachable through the `Sweep` arm.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPlan {
    /// Every manifest was read: the lists in [`Sweep`] are safe to apply.
    Sweep(Sweep),
    /// Some manifest could not be read, so what it references is unknown:
    /// nothing in this repository may be deleted, and no blob data in this
    /// whole pass ([`super::PassLiveSet`] refuses to give a blob sweep).
    Blocked {
        /// The unreadable manifests, sorted.
        unreadable: Vec<Digest>,
    },
}

/// What one repository may lose. Every list is sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    tags: Vec<String>,
    manifests: Vec<Digest>,
    layer_links: Vec<Digest>,
    live_blobs: HashSet<Digest>,
    recent_links: Vec<Digest>,
}

impl Sweep {
    /// Tags retention deletes.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Manifest revisions to delete (untagged, old enough, allowed by policy).
    pub fn manifests(&self) -> &[Digest] {
        &self.manifests
    }

    /// Layer links to delete: not live and linked before `now - delay`.
    pub fn layer_links(&self) -> &[Digest] {
        &self.layer_links
    }

    /// Every blob a kept manifest references: its own bytes, config,
    /// layers, and those of its children and referrers, recursively.
    pub fn live_blobs(&self) -> &HashSet<Digest> {
        &self.live_blobs
    }

    /// Layer links kept only because they are younger than `delay`: a push
    /// in progress. Their blob data must stay too.
    pub fn recent_links(&self) -> &[Digest] {
        &self.recent_links
    }
}

/// Walks from `roots` to every manifest they keep: an index keeps its
/// children, a manifest keeps its referrers (when `referrers` is given).
/// Returns the kept manifests (including digests with no revision here)
/// and the blobs they reference, their own digests included.
fn mark<'a>(
    snapshot: &'a RepoSnapshot,
    roots: impl IntoIterator<Item = &'a Digest>,
    referrers: Option<&HashMap<&'a Digest, Vec<&'a Digest>>>,
) -> (HashSet<&'a Digest>, HashSet<Digest>) {
    let mut kept: HashSet<&Digest> = HashSet::new();
    let mut live: HashSet<Digest> = HashSet::new();
    let mut queue: Vec<&Digest> = roots.into_iter().collect();
    while let Some(digest) = queue.pop() {
        if !kept.insert(digest) {
            continue;
        }
        live.insert(digest.clone());
        if let Some(refs) = snapshot.manifests.get(digest).and_then(|m| m.refs.as_ref()) {
            live.extend(refs.blobs.iter().cloned());
            queue.extend(refs.children.iter().filter(|c| !kept.contains(c)));
        }
        if let Some(found) = referrers.and_then(|r| r.get(digest)) {
            queue.extend(found.iter().filter(|r| !kept.contains(*r)));
        }
    }
    (kept, live)
}

impl RepoSnapshot {
    /// Blobs a pull of every tag moves (manifests, children, configs,
    /// layers; referrers are not pulled), for `registry du`.
    pub fn pulled_by_tags(&self) -> HashSet<Digest> {
        mark(self, self.tags.values().map(|t| &t.digest), None).1
    }

    fn unreadable(&self) -> Vec<Digest> {
        let mut found: Vec<Digest> = self
            .manifests
            .iter()
            .filter(|(_, m)| m.refs.is_none())
            .map(|(d, _)| d.clone())
            .collect();
        found.sort_unstable();
        found
    }
}

/// The mark for one repository under its policy (`None`: no policy
/// matches, every tag is kept). The rule and why it is safe are in the
/// [module documentation](super).
pub fn plan(snapshot: &RepoSnapshot, policy: Option<&Policy>, params: &PassParams) -> RepoPlan {
    plan_evicting(snapshot, policy, None, params)
}

/// [`plan`], and with `evict_after` (a window in the pass's time unit) the
/// eviction of a pull-through cache's repository: what was not pulled within
/// the window goes (rule 5 of the [module documentation](super)).
pub fn plan_evicting(
    snapshot: &RepoSnapshot,
    policy: Option<&Policy>,
    evict_after: Option<u64>,
    params: &PassParams,
) -> RepoPlan {
    let unreadable = snapshot.unreadable();
    if !unreadable.is_empty() {
        return RepoPlan::Blocked { unreadable };
    }
    let PassParams { now, delay, .. } = *params;
    let young = |pushed: u64| within(pushed, now, delay);

    let by_policy = policy.and_then(|p| p.kept_tags(&snapshot.tags, now));
    let pulled_lately = |at: u64| evict_after.is_none_or(|window| within(at, now, window));
    let tag_kept = |name: &str, tag: &TagInfo| {
        let last_pull = snapshot
            .manifests
            .get(&tag.digest)
            .map_or(tag.pushed, |m| m.pushed.max(tag.pushed));
        young(tag.pushed)
            || (by_policy.as_ref().is_none_or(|k| k.contains(name)) && pulled_lately(last_pull))
    };
    let mut deleted_tags: Vec<String> = Vec::new();
    let mut roots: Vec<&Digest> = Vec::new();
    for (name, tag) in &snapshot.tags {
        if tag_kept(name, tag) {
            roots.push(&tag.digest);
        } else {
            deleted_tags.push(name.clone());
        }
    }

    // Past which age an untagged manifest may go.
    let untagged_age = match policy {
        Some(p) if p.protects_everything() => None,
        _ if params.delete_untagged_all => Some(0),
        Some(p) => p.delete_untagged(),
        None => None,
    };
    let deletable = |pushed: u64| {
        !young(pushed)
            && (untagged_age.is_some_and(|age| !within(pushed, now, age)) || !pulled_lately(pushed))
    };
    roots.extend(
        snapshot
            .manifests
            .iter()
            .filter(|(_, m)| !deletable(m.pushed))
            .map(|(d, _)| d),
    );

    let mut referrers: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for (digest, m) in &snapshot.manifests {
        if let Some(subject) = m.refs.as_ref().and_then(|r| r.subject.as_ref()) {
            referrers.entry(subject).or_default().push(digest);
        }
    }
    let (kept, live_blobs) = mark(snapshot, roots, Some(&referrers));

    let mut manifests: Vec<Digest> = snapshot
        .manifests
        .keys()
        .filter(|d| !kept.contains(d))
        .cloned()
        .collect();
    let (mut layer_links, mut recent_links) = (Vec::new(), Vec::new());
    for (digest, &linked) in &snapshot.layers {
        if live_blobs.contains(digest) {
            continue;
        }
        if young(linked) {
            recent_links.push(digest.clone());
        } else {
            layer_links.push(digest.clone());
        }
    }
    deleted_tags.sort_unstable();
    manifests.sort_unstable();
    layer_links.sort_unstable();
    recent_links.sort_unstable();
    RepoPlan::Sweep(Sweep {
        tags: deleted_tags,
        manifests,
        layer_links,
        live_blobs,
        recent_links,
    })
}
