//! A manifest deleted while a garbage collection pass walks its repository (listed, then
//! gone when read) is no longer in the repository: it must not count as unreadable,
//! which stops the whole blob sweep and makes `registry gc` exit 2. Found by the GC
//! stress test (`registry-bin/tests/gc`): a client's `DELETE /manifests/<digest>` racing
//! the walk blocked about one pass in thirty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use registry_core::{Algorithm, Digest, RepoName, Tag};
use registry_storage::{layout, Backend, GcOptions, MemoryBackend, StorageError, Store};

mod common;
use common::{Hooked, Hooks};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The first read of `victim` finds it deleted just before, as a DELETE landing
/// between the pass's listing and its read would leave it.
#[derive(Debug)]
struct DeletedWhileListed {
    victim: String,
    deleted: AtomicBool,
}

impl Hooks for DeletedWhileListed {
    fn before_get(&self, key: &str, inner: &MemoryBackend) -> Result<(), StorageError> {
        if key == self.victim && !self.deleted.swap(true, Ordering::SeqCst) {
            // The memory backend answers at once: its future is ready when first polled.
            futures::FutureExt::now_or_never(inner.delete(key))
                .expect("the memory backend never waits")?;
        }
        Ok(())
    }
}

/// Blob data linked in `repo`.
async fn blob(store: &Store, backend: &MemoryBackend, repo: &RepoName, bytes: &[u8]) -> Digest {
    let digest = Digest::of(Algorithm::Sha256, bytes);
    backend
        .put(&layout::blob_data(&digest), Bytes::copy_from_slice(bytes))
        .await
        .expect("put blob data");
    store.link_blob(repo, &digest).await.expect("link blob");
    digest
}

/// An image manifest with `config` as its config and only layer, stored in `repo`.
async fn image(store: &Store, repo: &RepoName, config: &Digest, size: usize) -> Digest {
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{config}","size":{size}}}]}}"#
    );
    let body = Bytes::from(json);
    let digest = Digest::of(Algorithm::Sha256, &body);
    store
        .put_manifest(repo, &digest, MANIFEST, body)
        .await
        .expect("put manifest");
    digest
}

#[tokio::test]
async fn a_manifest_deleted_during_the_walk_does_not_stop_the_sweep() {
    let repo: RepoName = "team/app".parse().unwrap();
    let setup = MemoryBackend::new();
    let store = Store::new(Arc::new(setup.clone()));
    let kept_config = blob(&store, &setup, &repo, br#"{"kept":1}"#).await;
    let kept = image(&store, &repo, &kept_config, 10).await;
    store
        .put_tag(&repo, &"v1".parse::<Tag>().unwrap(), &kept)
        .await
        .unwrap();
    let gone_config = blob(&store, &setup, &repo, br#"{"gone":1}"#).await;
    let gone = image(&store, &repo, &gone_config, 10).await;
    let orphan = blob(&store, &setup, &repo, b"no manifest names this").await;

    // The pass lists `gone`, then finds its revision link deleted when it reads it.
    let racing = Store::new(Arc::new(Hooked {
        inner: setup.clone(),
        hooks: DeletedWhileListed {
            victim: layout::revision_link(&repo, &gone),
            deleted: AtomicBool::new(false),
        },
    }));
    let options = GcOptions {
        delay: Duration::from_secs(3600),
        retention: Default::default(),
        delete_untagged: false,
        dry_run: false,
        evict: Vec::new(),
    };
    let later = SystemTime::now() + Duration::from_secs(3 * 3600);
    let report = racing.collect_garbage(&options, later).await.unwrap();

    assert!(
        report.unreadable.is_empty(),
        "kept {kept} gone {gone}: {report:?}"
    );
    assert_eq!(report.blob_sweep_skipped, None, "{report:?}");
    // The orphan, and what only the deleted manifest named, went; the tagged image stays.
    for digest in [&orphan, &gone_config, &gone] {
        assert_eq!(
            setup.stat(&layout::blob_data(digest)).await.unwrap(),
            None,
            "{digest}"
        );
    }
    for digest in [&kept, &kept_config] {
        assert!(
            setup
                .stat(&layout::blob_data(digest))
                .await
                .unwrap()
                .is_some(),
            "{digest}"
        );
    }
}
