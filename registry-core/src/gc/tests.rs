//! One test per rule of the mark, on small hand-built repositories.

use std::collections::HashSet;

use super::*;
use crate::digest::{Algorithm, Digest};

const NOW: u64 = 1_700_000_000;
const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

fn d(name: &str) -> Digest {
    Digest::of(Algorithm::Sha256, name.as_bytes())
}

fn digests(names: &[&str]) -> Vec<Digest> {
    let mut v: Vec<Digest> = names.iter().map(|n| d(n)).collect();
    v.sort_unstable();
    v
}

/// A repository built by name: every digest is the hash of its name, every
/// time an age before `NOW`.
#[derive(Default)]
struct Repo(RepoSnapshot);

impl Repo {
    fn manifest(mut self, name: &str, age: u64, refs: ManifestRefs) -> Repo {
        for blob in &refs.blobs {
            self.0.layers.insert(blob.clone(), NOW - age);
        }
        let info = ManifestInfo {
            pushed: NOW - age,
            refs: Some(refs),
        };
        self.0.manifests.insert(d(name), info);
        self
    }

    /// An image whose config and layers are linked when it is pushed.
    fn image(self, name: &str, age: u64, blobs: &[&str]) -> Repo {
        let refs = ManifestRefs {
            blobs: blobs.iter().map(|b| d(b)).collect(),
            ..ManifestRefs::default()
        };
        self.manifest(name, age, refs)
    }

    fn index(self, name: &str, age: u64, children: &[&str]) -> Repo {
        let refs = ManifestRefs {
            children: children.iter().map(|c| d(c)).collect(),
            ..ManifestRefs::default()
        };
        self.manifest(name, age, refs)
    }

    fn referrer(self, name: &str, age: u64, subject: &str, blobs: &[&str]) -> Repo {
        let refs = ManifestRefs {
            blobs: blobs.iter().map(|b| d(b)).collect(),
            subject: Some(d(subject)),
            ..ManifestRefs::default()
        };
        self.manifest(name, age, refs)
    }

    fn unreadable(mut self, name: &str, age: u64) -> Repo {
        let info = ManifestInfo {
            pushed: NOW - age,
            refs: None,
        };
        self.0.manifests.insert(d(name), info);
        self
    }

    fn tag(mut self, tag: &str, target: &str, age: u64) -> Repo {
        let info = TagInfo {
            digest: d(target),
            pushed: NOW - age,
        };
        self.0.tags.insert(tag.to_owned(), info);
        self
    }

    fn link(mut self, blob: &str, age: u64) -> Repo {
        self.0.layers.insert(d(blob), NOW - age);
        self
    }

    fn plan(&self, policy: Option<&Policy>, delay: u64, delete_untagged_all: bool) -> Sweep {
        match plan(&self.0, policy, &params(delay, delete_untagged_all)) {
            RepoPlan::Sweep(sweep) => sweep,
            blocked => panic!("unexpected {blocked:?}"),
        }
    }
}

fn params(delay: u64, delete_untagged_all: bool) -> PassParams {
    PassParams {
        now: NOW,
        delay,
        delete_untagged_all,
    }
}

/// Policies from JSON, the shape the YAML config has, durations in seconds.
fn policies(json: &str) -> RetentionPolicies {
    let configs: Vec<PolicyConfig> = serde_json::from_str(json).unwrap();
    RetentionPolicies::new(&configs, |s| *s).unwrap()
}

fn policy(json: &str) -> Policy {
    let all = policies(&format!("[{{\"repositories\":[\"**\"],{json}}}]"));
    all.for_repository("any").unwrap().clone()
}

fn policy_error(json: &str) -> PolicyError {
    let configs: Vec<PolicyConfig> = serde_json::from_str(json).unwrap();
    RetentionPolicies::new(&configs, |s| *s).unwrap_err()
}

fn tags(sweep: &Sweep) -> Vec<&str> {
    sweep.tags().iter().map(String::as_str).collect()
}

/// Ten tags `t0`..`t9`, `tN` pushed N hours ago, each on its own image.
fn ten_tags() -> Repo {
    (0..10).fold(Repo::default(), |r, i| {
        let name = format!("img{i}");
        r.image(&name, 100 * DAY, &[&format!("layer{i}")]).tag(
            &format!("t{i}"),
            &name,
            (i + 1) * HOUR,
        )
    })
}

#[test]
fn most_recently_pushed_keeps_exactly_n() {
    let sweep = ten_tags().plan(
        Some(&policy(r#""keeptags":[{"mostrecentlypushed":3}]"#)),
        MIN,
        false,
    );
    assert_eq!(tags(&sweep), ["t3", "t4", "t5", "t6", "t7", "t8", "t9"]);
    // Without deleteuntagged, the images the tags left stay.
    assert!(sweep.manifests().is_empty());
}

#[test]
fn equal_push_times_are_ordered_by_name() {
    // Twenty tags pushed in the same second: the ten first by name stay,
    // whatever order the map yields them in.
    let repo = (0..20).fold(Repo::default().image("i", 100 * DAY, &[]), |r, n| {
        r.tag(&format!("tag{n:02}"), "i", DAY)
    });
    let sweep = repo.plan(
        Some(&policy(r#""keeptags":[{"mostrecentlypushed":10}]"#)),
        MIN,
        false,
    );
    let expected: Vec<String> = (10..20).map(|n| format!("tag{n:02}")).collect();
    assert_eq!(sweep.tags(), expected);
}

#[test]
fn patterns_keep_every_matching_tag() {
    let repo = Repo::default()
        .image("i", 100 * DAY, &[])
        .tag("v1.0", "i", 90 * DAY)
        .tag("v2.0", "i", 2 * DAY)
        .tag("latest", "i", DAY)
        .tag("latest-dev", "i", DAY)
        .tag("dev", "i", DAY);
    let sweep = repo.plan(
        Some(&policy(r#""keeptags":[{"patterns":["v*","latest"]}]"#)),
        MIN,
        false,
    );
    assert_eq!(tags(&sweep), ["dev", "latest-dev"]);
}

#[test]
fn pushed_within_keeps_recent_tags() {
    let repo = Repo::default()
        .image("i", 100 * DAY, &[])
        .tag("new", "i", 10 * DAY)
        .tag("edge", "i", 30 * DAY)
        .tag("old", "i", 30 * DAY + 1);
    let sweep = repo.plan(
        Some(&policy(r#""keeptags":[{"pushedwithin":2592000}]"#)),
        MIN,
        false,
    );
    assert_eq!(tags(&sweep), ["old"]);
}

#[test]
fn one_entry_keeps_the_intersection_of_its_conditions() {
    let repo = Repo::default()
        .image("i", 100 * DAY, &[])
        .tag("rc-1", "i", 40 * DAY)
        .tag("rc-2", "i", 20 * DAY)
        .tag("rc-3", "i", 10 * DAY)
        .tag("rc-4", "i", 5 * DAY)
        .tag("other", "i", HOUR);
    // rc-* AND pushed within 30 days, then the 2 most recent of those.
    let sweep = repo.plan(
        Some(&policy(
            r#""keeptags":[{"patterns":["rc-*"],"pushedwithin":2592000,"mostrecentlypushed":2}]"#,
        )),
        MIN,
        false,
    );
    assert_eq!(tags(&sweep), ["other", "rc-1", "rc-2"]);
}

#[test]
fn entries_keep_the_union() {
    let keep = r#""keeptags":[{"patterns":["v*"]},{"mostrecentlypushed":2},{"pushedwithin":7200}]"#;
    let repo = ten_tags().tag("v0", "img9", 50 * DAY);
    let sweep = repo.plan(Some(&policy(keep)), MIN, false);
    // v0 by pattern; t0, t1 the most recent (also within 2h).
    assert_eq!(
        tags(&sweep),
        ["t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"]
    );
}

#[test]
fn first_matching_policy_applies() {
    let all = policies(
        r#"[{"repositories":["prod/*"]},
            {"repositories":["ci/**","tmp/*"],"deleteuntagged":3600},
            {"repositories":["**"],"keeptags":[{"mostrecentlypushed":1}]}]"#,
    );
    let index = |name: &str| all.for_repository(name).map(Policy::index);
    assert_eq!(index("prod/app"), Some(0));
    assert_eq!(index("prod/a/b"), Some(2));
    assert_eq!(index("ci"), Some(1));
    assert_eq!(index("ci/x/y"), Some(1));
    assert_eq!(index("tmp/x"), Some(1));
    assert_eq!(index("tmp/x/y"), Some(2));
    assert_eq!(index("tmp"), Some(2));
    assert!(all
        .for_repository("prod/app")
        .unwrap()
        .protects_everything());
    let some = policies(r#"[{"repositories":["tmp/*"],"deleteuntagged":0}]"#);
    assert!(some.for_repository("tmp/a/b").is_none());
    assert!(RetentionPolicies::default().for_repository("x").is_none());
}

#[test]
fn a_deleted_tag_leaves_its_manifest_untagged() {
    let repo = Repo::default()
        .image("old", 30 * DAY, &["base", "old-layer"])
        .image("new", 2 * DAY, &["base", "new-layer"])
        .tag("old", "old", 30 * DAY)
        .tag("new", "new", 2 * DAY);
    let p = policy(r#""deleteuntagged":86400,"keeptags":[{"mostrecentlypushed":1}]"#);
    let sweep = repo.plan(Some(&p), HOUR, false);
    assert_eq!(tags(&sweep), ["old"]);
    assert_eq!(sweep.manifests(), digests(&["old"]));
    assert_eq!(sweep.layer_links(), digests(&["old-layer"]));
    let live: HashSet<Digest> = digests(&["new", "base", "new-layer"]).into_iter().collect();
    assert_eq!(sweep.live_blobs(), &live);
}

#[test]
fn untagged_manifests_go_only_past_deleteuntagged() {
    let repo = Repo::default()
        .image("young", 2 * DAY, &["a"])
        .image("old", 8 * DAY, &["b"]);
    let p = policy(r#""deleteuntagged":604800"#);
    let sweep = repo.plan(Some(&p), HOUR, false);
    assert_eq!(sweep.manifests(), digests(&["old"]));
    assert_eq!(sweep.layer_links(), digests(&["b"]));
    // Without deleteuntagged (keeptags only) they stay.
    let sweep = repo.plan(
        Some(&policy(r#""keeptags":[{"patterns":["x"]}]"#)),
        HOUR,
        false,
    );
    assert!(sweep.manifests().is_empty());
}

#[test]
fn delete_untagged_all_never_touches_what_a_kept_tag_reaches() {
    let repo = Repo::default()
        .index("idx", 50 * DAY, &["amd64", "arm64"])
        .image("amd64", 50 * DAY, &["l1"])
        .image("arm64", 50 * DAY, &["l2"])
        .image("loose", 50 * DAY, &["l3"])
        .tag("latest", "idx", 50 * DAY);
    let sweep = repo.plan(None, HOUR, true);
    assert!(sweep.tags().is_empty());
    assert_eq!(sweep.manifests(), digests(&["loose"]));
    assert_eq!(sweep.layer_links(), digests(&["l3"]));
    for kept in ["idx", "amd64", "arm64", "l1", "l2"] {
        assert!(sweep.live_blobs().contains(&d(kept)), "{kept}");
    }
}

#[test]
fn a_policy_with_no_rules_protects_even_from_delete_untagged_all() {
    let repo = Repo::default()
        .image("loose", 50 * DAY, &["l"])
        .link("orphan", 50 * DAY);
    let p = policies(r#"[{"repositories":["prod/*"]}]"#);
    let sweep = repo.plan(p.for_repository("prod/app"), HOUR, true);
    assert!(sweep.manifests().is_empty());
    // An orphan layer link is no content anyone can pull by tag: it goes.
    assert_eq!(sweep.layer_links(), digests(&["orphan"]));
}

#[test]
fn a_signed_image_keeps_its_signature_chain() {
    let repo = Repo::default()
        .image("app", 50 * DAY, &["layer"])
        .referrer("sig", 40 * DAY, "app", &["sig-blob"])
        .referrer("sig-of-sig", 30 * DAY, "sig", &["sig2-blob"])
        .referrer("sbom", 40 * DAY, "app", &["sbom-blob"])
        .image("unsigned-old", 50 * DAY, &["x"])
        .referrer("stale-sig", 40 * DAY, "unsigned-old", &["stale-blob"])
        .referrer("orphan-sig", 40 * DAY, "never-pushed", &["o"])
        .tag("v1", "app", 50 * DAY);
    let sweep = repo.plan(None, HOUR, true);
    assert_eq!(
        sweep.manifests(),
        digests(&["unsigned-old", "stale-sig", "orphan-sig"])
    );
    assert_eq!(sweep.layer_links(), digests(&["x", "stale-blob", "o"]));
    for kept in [
        "sig",
        "sig-blob",
        "sig-of-sig",
        "sig2-blob",
        "sbom",
        "sbom-blob",
    ] {
        assert!(sweep.live_blobs().contains(&d(kept)), "{kept}");
    }
}

#[test]
fn an_index_keeps_its_children_and_their_referrers() {
    let repo = Repo::default()
        .index("idx", 50 * DAY, &["child", "nested"])
        .index("nested", 50 * DAY, &["grandchild"])
        .image("child", 50 * DAY, &["c"])
        .image("grandchild", 50 * DAY, &["g"])
        .referrer("child-sig", 50 * DAY, "grandchild", &["s"])
        .tag("latest", "idx", DAY);
    let sweep = repo.plan(None, HOUR, true);
    assert!(sweep.manifests().is_empty());
    assert!(sweep.layer_links().is_empty());
    // An untagged index older than the grace period goes, children too.
    let repo = Repo(RepoSnapshot {
        tags: Default::default(),
        ..repo.0
    });
    let sweep = repo.plan(None, HOUR, true);
    assert_eq!(
        sweep.manifests(),
        digests(&["idx", "nested", "child", "grandchild", "child-sig"])
    );
}

#[test]
fn nothing_within_the_grace_period_is_deleted() {
    let repo = Repo::default()
        .image("pushing", 10 * MIN, &["fresh"])
        .index("fresh-index", 10 * MIN, &["old-child"])
        .image("old-child", 50 * DAY, &["oc"])
        .image("old", 50 * DAY, &["stale"])
        .image("tagged", 50 * DAY, &[])
        .link("uploading", 5 * MIN)
        .link("abandoned", 2 * HOUR)
        .tag("just-pushed", "tagged", 10 * MIN)
        .tag("old-tag", "tagged", 50 * DAY);
    let p = policy(r#""deleteuntagged":0,"keeptags":[{"patterns":["release-*"]}]"#);
    let sweep = repo.plan(Some(&p), HOUR, true);
    assert_eq!(tags(&sweep), ["old-tag"]);
    assert_eq!(sweep.manifests(), digests(&["old"]));
    assert_eq!(sweep.layer_links(), digests(&["abandoned", "stale"]));
    assert_eq!(sweep.recent_links(), digests(&["uploading"]));
    assert!(sweep.live_blobs().contains(&d("oc")));
}

#[test]
fn with_no_policy_everything_is_kept_but_orphan_links() {
    let repo = Repo::default()
        .image("a", 50 * DAY, &["l"])
        .referrer("s", 50 * DAY, "gone", &[])
        .link("orphan", 50 * DAY)
        .tag("x", "a", 50 * DAY);
    let sweep = repo.plan(None, HOUR, false);
    assert!(sweep.tags().is_empty() && sweep.manifests().is_empty());
    assert_eq!(sweep.layer_links(), digests(&["orphan"]));
}

#[test]
fn missing_references_are_kept_not_fixed() {
    let mut repo = Repo::default()
        .index("idx", 50 * DAY, &["never-pushed"])
        .image("img", 50 * DAY, &["unlinked"])
        .tag("a", "idx", 50 * DAY)
        .tag("b", "no-such-manifest", 50 * DAY)
        .tag("c", "img", DAY);
    // img references a blob that has no link in this repository.
    repo.0.layers.remove(&d("unlinked"));
    let sweep = repo.plan(None, HOUR, true);
    assert!(sweep.manifests().is_empty() && sweep.tags().is_empty());
    for live in ["never-pushed", "no-such-manifest", "unlinked"] {
        assert!(sweep.live_blobs().contains(&d(live)), "{live}");
    }
}

#[test]
fn an_unreadable_manifest_blocks_the_repository_and_the_blob_sweep() {
    let repo = Repo::default()
        .image("old", 50 * DAY, &["stale"])
        .unreadable("broken", 50 * DAY)
        .tag("t", "old", 50 * DAY);
    let p = policy(r#""deleteuntagged":0,"keeptags":[{"patterns":["none"]}]"#);
    let planned = plan(&repo.0, Some(&p), &params(HOUR, true));
    assert_eq!(
        planned,
        RepoPlan::Blocked {
            unreadable: digests(&["broken"])
        }
    );
    let summary = planned.summary("team/app");
    assert_eq!(summary.unreadable, digests(&["broken"]));
    assert!(summary
        .to_string()
        .starts_with("team/app: blocked by 1 unreadable manifest(s)"));

    let healthy = Repo::default().image("x", 50 * DAY, &["y"]);
    let mut pass = PassLiveSet::new();
    pass.add("other", &plan(&healthy.0, None, &params(HOUR, true)));
    pass.add("team/app", &planned);
    assert_eq!(
        pass.blob_sweep(&params(HOUR, true)).unwrap_err(),
        SweepForbidden {
            repositories: vec!["team/app".into()]
        }
    );
    let mut pass = PassLiveSet::new();
    pass.unaccounted("walk/failed");
    assert!(pass.blob_sweep(&params(HOUR, true)).is_err());
}

#[test]
fn blob_data_goes_only_when_no_repository_keeps_it() {
    // "shared" is deleted in a/ but kept by b/; "pushing" is a recent link.
    let a = Repo::default()
        .image("m1", 50 * DAY, &["shared", "only-a"])
        .link("pushing", MIN);
    let b = Repo::default()
        .image("m2", 50 * DAY, &["shared"])
        .tag("t", "m2", 50 * DAY);
    let p = params(HOUR, true);
    let mut pass = PassLiveSet::new();
    pass.add("a", &plan(&a.0, None, &p));
    pass.add("b", &plan(&b.0, None, &p));
    let sweep = pass.blob_sweep(&p).unwrap();
    let old = NOW - DAY;
    assert!(!sweep.may_delete(&d("shared"), old));
    assert!(!sweep.may_delete(&d("m2"), old));
    assert!(!sweep.may_delete(&d("pushing"), old));
    assert!(sweep.may_delete(&d("only-a"), old));
    assert!(sweep.may_delete(&d("m1"), old));
    assert!(
        !sweep.may_delete(&d("only-a"), NOW - MIN),
        "within the grace period"
    );
    assert_eq!(sweep.live_count(), 3);
}

#[test]
fn summary_lists_what_goes() {
    let repo = Repo::default()
        .image("old", 50 * DAY, &["l"])
        .image("kept", 50 * DAY, &[])
        .tag("gone", "old", 50 * DAY)
        .tag("v1", "kept", 50 * DAY);
    let p = policy(r#""deleteuntagged":0,"keeptags":[{"patterns":["v*"]}]"#);
    let summary = plan(&repo.0, Some(&p), &params(HOUR, false)).summary("ci/app");
    let text = summary.to_string();
    let expected = format!(
        "ci/app: 1 tag(s), 1 manifest(s), 1 layer link(s) to delete; 1 live blob(s)\n  tag gone\n  manifest {}\n  layer link {}\n",
        d("old"),
        d("l")
    );
    assert_eq!(text, expected);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["deleted_tags"], serde_json::json!(["gone"]));
    assert_eq!(json["live_blobs"], 1);
}

#[test]
fn pulled_by_tags_follows_children_not_referrers() {
    let repo = Repo::default()
        .index("idx", DAY, &["child"])
        .image("child", DAY, &["layer"])
        .referrer("sig", DAY, "idx", &["sig-blob"])
        .image("untagged", DAY, &["u"])
        .tag("latest", "idx", DAY);
    let pulled = repo.0.pulled_by_tags();
    let expected: HashSet<Digest> = digests(&["idx", "child", "layer"]).into_iter().collect();
    assert_eq!(pulled, expected);
}

#[test]
fn manifest_refs_come_from_a_validated_manifest() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":3}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":4}}}}"#,
        d("config"),
        d("layer"),
        d("subject")
    );
    let manifest = crate::manifest::validate(None, body.as_bytes()).unwrap();
    let refs = ManifestRefs::from(&manifest);
    assert_eq!(refs.blobs, vec![d("config"), d("layer")]);
    assert_eq!(refs.subject, Some(d("subject")));
    assert!(refs.children.is_empty());
}

#[test]
fn invalid_policies_name_the_policy_and_field() {
    let e = policy_error(
        r#"[{"repositories":["ok/*"]},{"repositories":["**"],"keeptags":[{"patterns":["v*"]},{"mostrecentlypushed":0}]}]"#,
    );
    assert_eq!(
        e,
        PolicyError {
            policy: 1,
            field: "keeptags[1].mostrecentlypushed".into(),
            kind: PolicyErrorKind::ZeroCount
        }
    );
    assert_eq!(
        e.to_string(),
        "retention[1].keeptags[1].mostrecentlypushed: must be at least 1"
    );
    let e = policy_error(r#"[{"repositories":["ok","Bad/*"]}]"#);
    assert_eq!((e.policy, e.field.as_str()), (0, "repositories[1]"));
    assert_eq!(
        e.kind,
        PolicyErrorKind::Glob {
            pattern: "Bad/*".into(),
            error: GlobError::InvalidChar('B')
        }
    );
    let e = policy_error(r#"[{"repositories":["a"],"keeptags":[{"patterns":["v/1"]}]}]"#);
    assert_eq!(e.field, "keeptags[0].patterns[0]");
    let e = policy_error(r#"[{"repositories":["a"],"keeptags":[{"patterns":[]}]}]"#);
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("keeptags[0].patterns", PolicyErrorKind::EmptyList)
    );
    let e = policy_error(r#"[{"repositories":["a"],"keeptags":[]}]"#);
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("keeptags", PolicyErrorKind::EmptyList)
    );
    let e = policy_error(r#"[{"repositories":[]}]"#);
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("repositories", PolicyErrorKind::EmptyList)
    );
    let e = policy_error(r#"[{"repositories":["a"],"keeptags":[{}]}]"#);
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("keeptags[0]", PolicyErrorKind::NoCondition)
    );
    // Keys are the lower-case ones; anything else is refused by serde.
    assert!(
        serde_json::from_str::<PolicyConfig>(r#"{"repositories":["a"],"deleteUntagged":1}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<KeepTagsConfig>(r#"{"mostRecentlyPushed":1}"#).is_err());
}

#[test]
fn the_documented_yaml_shape_deserializes_with_the_callers_durations() {
    /// Stands in for the server's duration type: whole hours, `168h`.
    #[derive(Debug)]
    struct Hours(u64);
    impl<'de> serde::Deserialize<'de> for Hours {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hours, D::Error> {
            let s = String::deserialize(d)?;
            let h = s.strip_suffix('h').and_then(|h| h.parse().ok());
            h.map(Hours)
                .ok_or_else(|| serde::de::Error::custom("not hours"))
        }
    }
    let yaml = r#"
- repositories: ["ci/**", "tmp/*"]
  deleteuntagged: 168h
  keeptags:
    - patterns: ["v*", "latest"]
    - mostrecentlypushed: 20
    - patterns: ["rc-*"]
      mostrecentlypushed: 5
    - pushedwithin: 720h
- repositories: ["prod/*"]
"#;
    let configs: Vec<PolicyConfig<Hours>> = serde_yaml_ng::from_str(yaml).unwrap();
    let all = RetentionPolicies::new(&configs, |h| h.0 * HOUR).unwrap();
    let ci = all.for_repository("ci/app").unwrap();
    assert_eq!(ci.index(), 0);
    assert!(all
        .for_repository("prod/app")
        .unwrap()
        .protects_everything());

    // 25 rc tags a day apart (newest rc-24) and two old untagged images.
    let repo = (0..25).fold(Repo::default().image("i", 200 * DAY, &[]), |r, n| {
        r.tag(&format!("rc-{n}"), "i", 100 * DAY - n * DAY)
    });
    let repo = repo
        .tag("v1", "i", 300 * DAY)
        .image("week-old", 6 * DAY, &[])
        .image("older", 8 * DAY, &[]);
    let sweep = repo.plan(Some(ci), HOUR, false);
    // Twenty most recent: rc-5..rc-24 (the 5 most recent rc are among them).
    let expected: Vec<String> = ["rc-0", "rc-1", "rc-2", "rc-3", "rc-4"]
        .map(String::from)
        .into();
    assert_eq!(sweep.tags(), expected);
    assert_eq!(sweep.manifests(), digests(&["older"]));
}

#[test]
fn a_hundred_thousand_manifests_plan_quickly() {
    // Digests by number, not by hashing: the plan is what is timed here.
    let n = |kind: u8, i: u64| -> Digest { format!("sha256:{kind:02x}{i:062x}").parse().unwrap() };
    let mut s = RepoSnapshot::default();
    for i in 0..100_000u64 {
        let pushed = NOW - 10 * DAY - i;
        let blobs = vec![n(1, i), n(2, i % 5_000)];
        for b in &blobs {
            s.layers.insert(b.clone(), pushed);
        }
        let refs = ManifestRefs {
            blobs,
            ..ManifestRefs::default()
        };
        let info = ManifestInfo {
            pushed,
            refs: Some(refs),
        };
        s.manifests.insert(n(0, i), info);
        if i % 2 == 0 {
            let tag = TagInfo {
                digest: n(0, i),
                pushed,
            };
            s.tags.insert(format!("t{i}"), tag);
        }
    }
    let p = policy(r#""deleteuntagged":0,"keeptags":[{"mostrecentlypushed":1000}]"#);
    let started = std::time::Instant::now();
    let sweep = Repo(s).plan(Some(&p), HOUR, false);
    let took = started.elapsed();
    // The 1000 most recent tags are t0, t2, .. t1998: 1000 images, each
    // with its config and one of 5000 shared layers (all reached by them).
    assert_eq!(sweep.tags().len(), 49_000);
    assert_eq!(sweep.manifests().len(), 99_000);
    assert_eq!(sweep.layer_links().len(), 99_000 + 4_000);
    assert_eq!(sweep.live_blobs().len(), 1_000 + 1_000 + 1_000);
    // Generous for a debug build on a loaded machine; a release build
    // takes a fraction of a second.
    assert!(took.as_secs() < 20, "{took:?}");
}

#[test]
fn eviction_takes_what_was_not_pulled_within_the_window() {
    // `pulled` was fetched long ago and its manifest pulled yesterday; `idle` was
    // fetched and last pulled 40 days ago; the index of `multi` was pulled today and
    // keeps its children, of which only one was pulled; `fresh` is within the delay.
    let repo = Repo::default()
        .image("pulled-img", DAY, &["p"])
        .tag("pulled", "pulled-img", 60 * DAY)
        .image("idle-img", 40 * DAY, &["i"])
        .tag("idle", "idle-img", 40 * DAY)
        .index("multi-idx", HOUR, &["amd64", "arm64"])
        .image("amd64", DAY, &["a"])
        .image("arm64", 50 * DAY, &["b"])
        .tag("multi", "multi-idx", 50 * DAY)
        .image("by-digest-old", 31 * DAY, &["o"])
        .image("by-digest-new", 2 * DAY, &["n"])
        .image("fresh-img", 10 * MIN, &["f"])
        .tag("fresh", "fresh-img", 10 * MIN);
    let window = 30 * DAY;
    let evicting = |policy: Option<&Policy>| match plan_evicting(
        &repo.0,
        policy,
        Some(window),
        &params(HOUR, false),
    ) {
        RepoPlan::Sweep(sweep) => sweep,
        blocked => panic!("unexpected {blocked:?}"),
    };
    let sweep = evicting(None);
    assert_eq!(tags(&sweep), ["idle"]);
    assert_eq!(sweep.manifests(), digests(&["by-digest-old", "idle-img"]));
    assert_eq!(sweep.layer_links(), digests(&["i", "o"]));
    for kept in ["p", "a", "b", "n", "f"] {
        assert!(sweep.live_blobs().contains(&d(kept)), "{kept}");
    }
    // A policy that keeps every tag does not keep them from eviction; without a window
    // the same repository loses nothing.
    let p = policy(r#""keeptags":[{"patterns":["*"]}]"#);
    assert_eq!(tags(&evicting(Some(&p))), ["idle"]);
    let sweep = repo.plan(None, HOUR, false);
    assert!(sweep.tags().is_empty() && sweep.manifests().is_empty());
}
