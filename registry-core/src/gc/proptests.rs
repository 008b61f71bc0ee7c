//! Properties of the mark over random repositories: manifests, indexes
//! (with cycles and missing children), referrers (with missing subjects),
//! tags, layer links, unreadable manifests and policies.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::digest::{Algorithm, Digest};

const NOW: u64 = 1_000;

fn d(name: &str) -> Digest {
    Digest::of(Algorithm::Sha256, name.as_bytes())
}

fn manifest(i: usize) -> Digest {
    d(&format!("m{i}"))
}

fn blob(i: usize) -> Digest {
    d(&format!("b{i}"))
}

#[derive(Debug, Clone)]
struct ManifestSpec {
    age: u64,
    readable: bool,
    blobs: Vec<usize>,
    children: Vec<usize>,
    subject: Option<usize>,
}

#[derive(Debug, Clone)]
struct Case {
    manifests: Vec<ManifestSpec>,
    tags: Vec<(String, usize, u64)>,
    links: Vec<(usize, u64)>,
    policy: Option<PolicyConfig>,
    delay: u64,
    delete_untagged_all: bool,
}

fn manifest_spec() -> impl Strategy<Value = ManifestSpec> {
    // Indices up to 30 while at most 24 manifests exist: some children,
    // subjects and tag targets were never pushed.
    (
        0..200u64,
        prop::bool::weighted(0.97),
        prop::collection::vec(0..12usize, 0..3),
        prop::collection::vec(0..30usize, 0..3),
        prop::option::weighted(0.3, 0..30usize),
    )
        .prop_map(|(age, readable, blobs, children, subject)| ManifestSpec {
            age,
            readable,
            blobs,
            children,
            subject,
        })
}

fn keep_rule() -> impl Strategy<Value = KeepTagsConfig> {
    let patterns = prop::collection::vec(
        prop::sample::select(vec!["t*", "v?", "rc-*", "latest", "*", "t1"]),
        1..3,
    );
    (
        prop::option::of(patterns),
        prop::option::of(1..4usize),
        prop::option::of(0..200u64),
    )
        .prop_map(|(patterns, most_recent, within)| KeepTagsConfig {
            patterns: patterns.map(|p| p.into_iter().map(String::from).collect()),
            mostrecentlypushed: most_recent,
            pushedwithin: within,
        })
        // An entry needs at least one condition.
        .prop_map(|mut rule| {
            if rule.patterns.is_none() && rule.pushedwithin.is_none() {
                rule.mostrecentlypushed.get_or_insert(1);
            }
            rule
        })
}

fn policy() -> impl Strategy<Value = Option<PolicyConfig>> {
    prop::option::weighted(
        0.7,
        (
            prop::option::of(0..200u64),
            prop::option::of(prop::collection::vec(keep_rule(), 1..3)),
        )
            .prop_map(|(deleteuntagged, keeptags)| PolicyConfig {
                repositories: vec!["**".into()],
                deleteuntagged,
                keeptags,
            }),
    )
}

fn case() -> impl Strategy<Value = Case> {
    let tag_name = prop::sample::select(vec!["t0", "t1", "t2", "v1", "v2", "rc-1", "latest", "x"]);
    (
        prop::collection::vec(manifest_spec(), 0..24),
        prop::collection::vec((tag_name, 0..26usize, 0..200u64), 0..8),
        prop::collection::vec((0..14usize, 0..200u64), 0..8),
        policy(),
        0..60u64,
        any::<bool>(),
    )
        .prop_map(
            |(manifests, tags, links, policy, delay, delete_untagged_all)| Case {
                manifests,
                tags: tags
                    .into_iter()
                    .map(|(n, t, a)| (n.to_owned(), t, a))
                    .collect(),
                links,
                policy,
                delay,
                delete_untagged_all,
            },
        )
}

impl Case {
    fn snapshot(&self) -> RepoSnapshot {
        let mut s = RepoSnapshot::default();
        for (i, m) in self.manifests.iter().enumerate() {
            let refs = m.readable.then(|| ManifestRefs {
                children: m.children.iter().map(|&c| manifest(c)).collect(),
                blobs: m.blobs.iter().map(|&b| blob(b)).collect(),
                subject: m.subject.map(manifest),
            });
            for &b in &m.blobs {
                s.layers.insert(blob(b), NOW - m.age);
            }
            s.manifests.insert(
                manifest(i),
                ManifestInfo {
                    pushed: NOW - m.age,
                    refs,
                },
            );
        }
        for &(b, age) in &self.links {
            s.layers.insert(blob(b), NOW - age);
        }
        for (name, target, age) in &self.tags {
            s.tags.insert(
                name.clone(),
                TagInfo {
                    digest: manifest(*target),
                    pushed: NOW - age,
                },
            );
        }
        s
    }

    fn params(&self) -> PassParams {
        PassParams {
            now: NOW,
            delay: self.delay,
            delete_untagged_all: self.delete_untagged_all,
        }
    }

    fn policies(&self) -> RetentionPolicies {
        let configs: Vec<PolicyConfig> = self.policy.iter().cloned().collect();
        RetentionPolicies::new(&configs, |s| *s).unwrap()
    }
}

/// Everything `roots` reach forwards (children, blobs, their own digests),
/// computed naively: the oracle the plan is checked against.
fn reach(s: &RepoSnapshot, roots: impl IntoIterator<Item = Digest>) -> HashSet<Digest> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Digest> = roots.into_iter().collect();
    while let Some(m) = stack.pop() {
        if !seen.insert(m.clone()) {
            continue;
        }
        if let Some(refs) = s.manifests.get(&m).and_then(|i| i.refs.as_ref()) {
            seen.extend(refs.blobs.iter().cloned());
            stack.extend(refs.children.iter().cloned());
        }
    }
    seen
}

fn young(pushed: u64, delay: u64) -> bool {
    NOW - pushed <= delay
}

/// Applies a sweep to the snapshot, as the storage side would.
fn apply(s: &RepoSnapshot, sweep: &Sweep) -> RepoSnapshot {
    let mut s = s.clone();
    for t in sweep.tags() {
        s.tags.remove(t);
    }
    for m in sweep.manifests() {
        s.manifests.remove(m);
    }
    for l in sweep.layer_links() {
        s.layers.remove(l);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_plan_keeps_everything_a_kept_manifest_reaches(case in case()) {
        let s = case.snapshot();
        let policies = case.policies();
        let params = case.params();
        let planned = plan(&s, policies.for_repository("repo"), &params);
        let mut pass = PassLiveSet::new();
        pass.add("repo", &planned);

        // (e) an unreadable manifest forbids all sweeping.
        let any_unreadable = s.manifests.values().any(|m| m.refs.is_none());
        let sweep = match planned {
            RepoPlan::Blocked { unreadable } => {
                prop_assert!(any_unreadable);
                prop_assert!(!unreadable.is_empty());
                prop_assert!(pass.blob_sweep(&params).is_err());
                return Ok(());
            }
            RepoPlan::Sweep(sweep) => sweep,
        };
        prop_assert!(!any_unreadable);
        let blob_sweep = pass.blob_sweep(&params).unwrap();

        let deleted_tags: HashSet<&String> = sweep.tags().iter().collect();
        let deleted: HashSet<&Digest> = sweep.manifests().iter().collect();
        let swept: HashSet<&Digest> = sweep.layer_links().iter().collect();
        let kept_tag_targets: Vec<Digest> = s
            .tags
            .iter()
            .filter(|(n, _)| !deleted_tags.contains(n))
            .map(|(_, t)| t.digest.clone())
            .collect();
        let kept: Vec<Digest> = s
            .manifests
            .keys()
            .filter(|m| !deleted.contains(m))
            .cloned()
            .chain(kept_tag_targets.iter().cloned())
            .collect();
        let reached = reach(&s, kept.iter().cloned());

        // (a) nothing a kept manifest reaches is swept or deleted, and
        // every such blob is live for the pass.
        for r in &reached {
            prop_assert!(!swept.contains(r), "swept {r}");
            prop_assert!(!deleted.contains(r), "deleted {r}");
            prop_assert!(sweep.live_blobs().contains(r), "not live {r}");
            prop_assert!(!blob_sweep.may_delete(r, 0));
        }
        // A kept manifest keeps its referrers.
        for (m, info) in &s.manifests {
            if let Some(subject) = info.refs.as_ref().and_then(|r| r.subject.as_ref()) {
                if !deleted.contains(subject) && s.manifests.contains_key(subject) {
                    prop_assert!(!deleted.contains(m), "referrer {m} of a kept subject deleted");
                }
            }
        }
        // (b) no manifest a kept tag reaches is deleted.
        for r in reach(&s, kept_tag_targets) {
            prop_assert!(!deleted.contains(&r));
        }
        // (c) nothing younger than `delay` is deleted, and everything
        // deleted was there to delete.
        for t in sweep.tags() {
            prop_assert!(!young(s.tags[t].pushed, case.delay));
        }
        for m in sweep.manifests() {
            prop_assert!(!young(s.manifests[m].pushed, case.delay));
        }
        for l in sweep.layer_links() {
            prop_assert!(!young(s.layers[l], case.delay));
        }
        for l in sweep.recent_links() {
            prop_assert!(young(s.layers[l], case.delay));
            prop_assert!(!blob_sweep.may_delete(l, 0));
        }
        // (d) with no policy nothing tagged is deleted; without
        // --delete-untagged either, live is the plain reachability set.
        if case.policy.is_none() {
            prop_assert!(sweep.tags().is_empty());
            if !case.delete_untagged_all {
                prop_assert!(sweep.manifests().is_empty());
                let all = reach(
                    &s,
                    s.manifests.keys().cloned().chain(s.tags.values().map(|t| t.digest.clone())),
                );
                prop_assert_eq!(sweep.live_blobs(), &all);
            }
        }
        // Every swept link is a link that is not live.
        for l in sweep.layer_links() {
            prop_assert!(!sweep.live_blobs().contains(l));
        }

        // A second pass over the result deletes nothing more: a pass can
        // be interrupted and run again.
        let after = apply(&s, &sweep);
        match plan(&after, policies.for_repository("repo"), &params) {
            RepoPlan::Sweep(again) => {
                prop_assert!(again.tags().is_empty(), "{:?}", again.tags());
                prop_assert!(again.manifests().is_empty(), "{:?}", again.manifests());
                prop_assert!(again.layer_links().is_empty());
                prop_assert_eq!(again.live_blobs(), sweep.live_blobs());
            }
            blocked => prop_assert!(false, "{blocked:?}"),
        }
    }

    #[test]
    fn usage_adds_up(
        repos in prop::collection::vec(
            (prop::collection::hash_set(0..10usize, 0..6), prop::collection::hash_set(0..10usize, 0..6)),
            0..5,
        ),
    ) {
        let sizes: HashMap<Digest, u64> = (0..8).map(|i| (blob(i), 1u64 << i)).collect();
        let input: Vec<RepoBlobs> = repos
            .iter()
            .enumerate()
            .map(|(i, (referenced, linked))| RepoBlobs {
                repository: format!("r{i}"),
                referenced: referenced.iter().map(|&b| blob(b)).collect(),
                linked: linked.iter().map(|&b| blob(b)).collect(),
            })
            .collect();
        let u = usage(&input, &sizes);
        let all_linked: HashSet<&Digest> = input.iter().flat_map(|r| &r.linked).collect();
        prop_assert_eq!(u.stored, all_linked.iter().filter_map(|d| sizes.get(*d)).sum::<u64>());
        prop_assert!(u.unique <= u.stored);
        for (r, ru) in input.iter().zip(&u.repositories) {
            let linked_size: u64 = r.linked.iter().filter_map(|d| sizes.get(d)).sum();
            prop_assert!(ru.unique <= linked_size);
        }
    }
}
