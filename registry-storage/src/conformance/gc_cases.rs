//! Garbage collection over the backend under test: what a pass deletes, what it keeps,
//! and that a claim protects what a client was told exists. Runs on its own empty
//! backend ([`super::run_gc_suite`]): the other cases store bytes that are not manifests,
//! which would (rightly) stop every sweep.
//!
//! Time: a pass takes its `now` as a parameter, so "three hours later" needs no
//! sleeping; only the claim case waits, with a grace period of a fraction of a second.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use registry_core::gc::{KeepTagsConfig, PolicyConfig, RetentionPolicies};
use registry_core::{Digest, RepoName};

use super::{repo, sha256, tag, upload};
use crate::layout;
use crate::store::{GcOptions, GcReport, Store};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub(super) async fn run(store: &Store) {
    unreferenced_blobs_go_after_the_delay(store).await;
    untagged_images_go_only_when_asked(store).await;
    retention_keeps_rules_signatures_and_children(store).await;
    an_unreadable_manifest_stops_the_blob_sweep(store).await;
    a_claim_keeps_what_a_client_was_told_exists(store).await;
    a_corrupt_tag_fails_the_pass(store).await;
}

/// A tag that does not hold a digest: what it pointed at is unknown, so the pass
/// stops, naming it, and deletes nothing.
async fn a_corrupt_tag_fails_the_pass(store: &Store) {
    let r = repo("gc/corrupt-tag");
    let stray = blob(store, &r, b"would go if the tag could be read").await;
    let key = layout::tag_link(&r, &tag("broken"));
    store
        .backend()
        .put(&key, Bytes::from_static(b"not a digest"))
        .await
        .expect("put garbage tag");
    let failed = store
        .collect_garbage(&options(Duration::from_secs(3600)), later())
        .await;
    assert_eq!(
        failed.map(|r| r.deleted_blobs),
        Err(crate::StorageError::Corrupt { key: key.clone() })
    );
    assert!(has_data(store, &stray).await, "nothing deleted");
    assert!(store.backend().delete(&key).await.expect("delete tag"));
    pass(store, &options(Duration::from_secs(3600)), later()).await;
    assert!(
        !has_data(store, &stray).await,
        "the next pass finishes the job"
    );
}

fn options(delay: Duration) -> GcOptions {
    GcOptions {
        delay,
        retention: RetentionPolicies::default(),
        delete_untagged: false,
        dry_run: false,
        evict: Vec::new(),
    }
}

/// Three hours after now: everything stored so far is older than a one-hour grace.
fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3 * 3600)
}

async fn pass(store: &Store, options: &GcOptions, now: SystemTime) -> GcReport {
    store
        .collect_garbage(options, now)
        .await
        .expect("garbage collection pass")
}

/// Uploads `bytes` into `repo` and commits the blob.
async fn blob(store: &Store, repo: &RepoName, bytes: &[u8]) -> Digest {
    let digest = sha256(bytes);
    let id = upload(&format!("gc-{}", &digest.hex()[..16]));
    store.create_upload(repo, &id).await.expect("create upload");
    let mut w = store.upload_writer(repo, &id).await.expect("writer");
    w.write(Bytes::copy_from_slice(bytes)).await.expect("write");
    w.commit().await.expect("commit writer");
    store
        .commit_upload(repo, &id, &digest)
        .await
        .expect("commit upload");
    digest
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> String {
    format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}"#)
}

/// Stores a manifest (and its referrer entry), tags it if asked; returns its digest.
async fn manifest(
    store: &Store,
    repo: &RepoName,
    media_type: &str,
    json: String,
    tag_name: Option<&str>,
    subject: Option<&Digest>,
) -> Digest {
    let bytes = Bytes::from(json);
    let digest = sha256(&bytes);
    let size = bytes.len();
    store
        .put_manifest(repo, &digest, media_type, bytes)
        .await
        .expect("put manifest");
    if let Some(subject) = subject {
        let entry = descriptor(media_type, &digest, size);
        store
            .add_referrer(repo, subject, &digest, Bytes::from(entry))
            .await
            .expect("add referrer");
    }
    if let Some(t) = tag_name {
        store
            .put_tag(repo, &tag(t), &digest)
            .await
            .expect("put tag");
    }
    digest
}

/// An image of a config and `layers`, each uploaded first, as a client pushes.
async fn image(
    store: &Store,
    repo: &RepoName,
    tag_name: Option<&str>,
    layers: &[&[u8]],
    subject: Option<&Digest>,
) -> (Digest, Vec<Digest>) {
    let config = format!(r#"{{"layers":{}}}"#, layers.len()).into_bytes();
    let config_digest = blob(store, repo, &config).await;
    let mut blobs = vec![config_digest.clone()];
    let mut descriptors = Vec::new();
    for layer in layers {
        let d = blob(store, repo, layer).await;
        descriptors.push(descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            &d,
            layer.len(),
        ));
        blobs.push(d);
    }
    let subject_field = subject
        .map(|s| format!(r#","subject":{}"#, descriptor(MANIFEST, s, 2)))
        .unwrap_or_default();
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{}]{subject_field}}}"#,
        descriptor(
            "application/vnd.oci.image.config.v1+json",
            &config_digest,
            config.len()
        ),
        descriptors.join(",")
    );
    let digest = manifest(store, repo, MANIFEST, json, tag_name, subject).await;
    (digest, blobs)
}

async fn has_data(store: &Store, digest: &Digest) -> bool {
    store.blob_size(digest).await.expect("blob size").is_some()
}

async fn linked(store: &Store, repo: &RepoName, digest: &Digest) -> bool {
    let key = layout::layer_link(repo, digest);
    store.backend().stat(&key).await.expect("stat").is_some()
}

async fn unreferenced_blobs_go_after_the_delay(store: &Store) {
    let r = repo("gc/plain");
    let (kept, kept_blobs) = image(store, &r, Some("v1"), &[b"kept layer"], None).await;
    let stray = blob(store, &r, b"uploaded, never referenced").await;
    let hour = options(Duration::from_secs(3600));

    let now = pass(store, &hour, SystemTime::now()).await;
    assert_eq!(
        (now.swept_links, now.deleted_blobs, now.freed_bytes),
        (0, 0, 0),
        "nothing is older than the delay: {now:?}"
    );

    let dry = GcOptions {
        dry_run: true,
        ..hour.clone()
    };
    let predicted = pass(store, &dry, later()).await;
    assert_eq!((predicted.swept_links, predicted.deleted_blobs), (1, 1));
    assert!(has_data(store, &stray).await, "a dry run deletes nothing");

    let done = pass(store, &hour, later()).await;
    assert_eq!((done.swept_links, done.deleted_blobs), (1, 1), "{done:?}");
    assert_eq!(done.freed_bytes, b"uploaded, never referenced".len() as u64);
    assert_eq!(
        done.deleted_blobs, predicted.deleted_blobs,
        "the dry run was right"
    );
    assert!(!linked(store, &r, &stray).await && !has_data(store, &stray).await);
    assert_eq!(
        store.resolve_tag(&r, &tag("v1")).await,
        Ok(Some(kept.clone()))
    );
    for d in kept_blobs.iter().chain([&kept]) {
        assert!(
            has_data(store, d).await && linked(store, &r, d).await,
            "{d}"
        );
    }
    let usage = &done.usage;
    let mine = usage
        .repositories
        .iter()
        .find(|u| u.repository == "gc/plain")
        .expect("usage of gc/plain");
    assert!(mine.logical > 0 && mine.logical == mine.unique, "{mine:?}");

    let again = pass(store, &hour, later()).await;
    assert_eq!(
        (again.swept_links, again.deleted_blobs),
        (0, 0),
        "{again:?}"
    );
}

async fn untagged_images_go_only_when_asked(store: &Store) {
    let r = repo("gc/untagged");
    let shared_layer: &[u8] = b"layer both images have";
    let (stays, _) = image(store, &r, Some("stays"), &[shared_layer], None).await;
    let (goes, goes_blobs) = image(
        store,
        &r,
        Some("goes"),
        &[shared_layer, b"only the deleted image"],
        None,
    )
    .await;
    assert_eq!(store.delete_tag(&r, &tag("goes")).await, Ok(true));

    let hour = options(Duration::from_secs(3600));
    let kept = pass(store, &hour, later()).await;
    assert!(kept.deleted_manifests.is_empty(), "{kept:?}");
    assert!(store.get_manifest(&r, &goes).await.expect("get").is_some());

    let untagged = GcOptions {
        delete_untagged: true,
        ..hour
    };
    let done = pass(store, &untagged, later()).await;
    assert_eq!(done.deleted_manifests, [format!("gc/untagged@{goes}")]);
    assert_eq!(store.get_manifest(&r, &goes).await, Ok(None));
    assert!(
        !has_data(store, &goes_blobs[2]).await,
        "its own layer is freed"
    );
    assert!(
        has_data(store, &sha256(shared_layer)).await,
        "the shared one stays"
    );
    assert!(store.get_manifest(&r, &stays).await.expect("get").is_some());
}

async fn retention_keeps_rules_signatures_and_children(store: &Store) {
    let r = repo("ci/app");
    let (old, old_blobs) = image(store, &r, Some("build-1"), &[b"build one"], None).await;
    let (release, _) = image(store, &r, Some("v1.0"), &[b"release"], None).await;
    let (signature, _) = image(store, &r, None, &[b"a signature"], Some(&release)).await;
    let (amd, _) = image(store, &r, None, &[b"amd64"], None).await;
    let (arm, _) = image(store, &r, None, &[b"arm64"], None).await;
    let index_json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{},{}]}}"#,
        descriptor(MANIFEST, &amd, 100),
        descriptor(MANIFEST, &arm, 100)
    );
    let index = manifest(store, &r, INDEX, index_json, Some("multi"), None).await;

    let policy = PolicyConfig {
        repositories: vec!["ci/**".into()],
        deleteuntagged: Some(0),
        keeptags: Some(vec![KeepTagsConfig {
            patterns: Some(vec!["v*".into(), "multi".into()]),
            mostrecentlypushed: None,
            pushedwithin: None,
        }]),
    };
    // Durations in milliseconds, the unit the store gives the mark.
    let retention = RetentionPolicies::new(&[policy], |ms: &u64| *ms).expect("valid policy");
    let with_rules = GcOptions {
        retention,
        ..options(Duration::from_secs(3600))
    };
    let done = pass(store, &with_rules, later()).await;
    assert_eq!(done.deleted_tags, ["ci/app:build-1"], "{done:?}");
    assert_eq!(done.deleted_manifests, [format!("ci/app@{old}")]);
    assert_eq!(
        store.list_tags(&r).await,
        Ok(Some(vec!["multi".into(), "v1.0".into()]))
    );
    for kept in [&release, &signature, &index, &amd, &arm] {
        assert!(
            store.get_manifest(&r, kept).await.expect("get").is_some(),
            "{kept}"
        );
    }
    assert_eq!(
        store.list_referrers(&r, &release).await.map(|v| v.len()),
        Ok(1)
    );
    assert!(
        !has_data(store, &old_blobs[1]).await,
        "the old build's layer is freed"
    );
}

async fn an_unreadable_manifest_stops_the_blob_sweep(store: &Store) {
    let broken = repo("gc/broken");
    let garbage = Bytes::from_static(b"{\"not\":\"a manifest\"}");
    let bad = sha256(&garbage);
    store
        .put_manifest(&broken, &bad, MANIFEST, garbage)
        .await
        .expect("put");
    let stray = blob(store, &broken, b"would go, but cannot be accounted for").await;
    let elsewhere = repo("gc/elsewhere");
    let other = blob(store, &elsewhere, b"unreferenced elsewhere").await;

    let done = pass(store, &options(Duration::from_secs(3600)), later()).await;
    assert_eq!(done.unreadable, [format!("gc/broken@{bad}")]);
    assert!(done.blob_sweep_skipped.is_some(), "{done:?}");
    assert_eq!(done.deleted_blobs, 0);
    assert!(
        linked(store, &broken, &stray).await,
        "its repository loses nothing"
    );
    assert!(has_data(store, &stray).await && has_data(store, &other).await);

    // Once the manifest is gone, the next pass finishes the job.
    assert!(store
        .delete_manifest(&broken, &bad, None)
        .await
        .expect("delete"));
    let done = pass(store, &options(Duration::from_secs(3600)), later()).await;
    assert!(done.blob_sweep_skipped.is_none(), "{done:?}");
    assert!(!has_data(store, &stray).await && !has_data(store, &other).await);
}

async fn a_claim_keeps_what_a_client_was_told_exists(store: &Store) {
    // Long enough for the backend to tell the claim's time from the walk's.
    let delay = Duration::from_millis(400) + store.backend().time_resolution() * 3;
    let store = store.clone().with_gc_delay(delay);
    let r = repo("gc/claimed");
    let (told, unclaimed) = (
        blob(&store, &r, b"a client HEADs this").await,
        blob(&store, &r, b"nobody asks for this").await,
    );
    tokio::time::sleep(delay * 2).await;
    // HEAD answered 200: the link is claimed.
    assert!(store
        .repo_blob_size(&r, &told)
        .await
        .expect("head")
        .is_some());
    let done = pass(&store, &options(delay), SystemTime::now()).await;
    assert!(linked(&store, &r, &told).await && has_data(&store, &told).await);
    assert!(!has_data(&store, &unclaimed).await, "{done:?}");

    tokio::time::sleep(delay * 2).await;
    pass(&store, &options(delay), SystemTime::now()).await;
    assert!(!has_data(&store, &told).await, "unclaimed since: swept");
}
