//! A manifest delete cut off part way (a crash, a failing disk) must not
//! leave a tag pointing at a manifest that is gone. Found by the crash test
//! (`registry-bin/tests/crash.rs`): SIGKILL during `DELETE /manifests/<digest>`
//! left `tags/list` naming a tag whose manifest answered 404.

use std::sync::Arc;

use bytes::Bytes;
use registry_core::{Algorithm, Digest, RepoName, Tag};
use registry_storage::{MemoryBackend, StorageError, Store};

mod common;
use common::{Hooked, Hooks};

/// Every delete of a key containing `fail` fails, as if the process died there.
#[derive(Debug)]
struct DiesOnDelete {
    fail: &'static str,
}

impl Hooks for DiesOnDelete {
    fn before_delete(&self, key: &str) -> Result<(), StorageError> {
        if key.contains(self.fail) {
            return Err(StorageError::io(key, std::io::Error::other("died here")));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_delete_cut_off_at_the_tags_leaves_every_tag_readable() {
    let store = Store::new(Arc::new(Hooked {
        inner: MemoryBackend::new(),
        hooks: DiesOnDelete {
            fail: "/_manifests/tags/",
        },
    }));
    let repo: RepoName = "team/app".parse().unwrap();
    let tag: Tag = "v1".parse().unwrap();
    let body = Bytes::from_static(br#"{"schemaVersion":2}"#);
    let digest = Digest::of(Algorithm::Sha256, &body);
    store
        .put_manifest(
            &repo,
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            body,
        )
        .await
        .unwrap();
    store.put_tag(&repo, &tag, &digest).await.unwrap();

    assert!(store.delete_manifest(&repo, &digest, None).await.is_err());

    // Whatever the delete managed, the tag still leads to a manifest.
    let tagged = store.resolve_tag(&repo, &tag).await.unwrap();
    assert_eq!(tagged.as_ref(), Some(&digest));
    assert!(store.get_manifest(&repo, &digest).await.unwrap().is_some());
}
