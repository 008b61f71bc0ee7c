//! `Store` semantics over the backend under test.

use bytes::Bytes;
use registry_core::UploadId;

use super::{collect, repo, sha256, tag, upload};
use crate::error::StorageError;
use crate::layout;
use crate::store::{Store, StoredManifest};

pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub(super) async fn run(store: &Store) {
    uploads_and_blobs(store).await;
    tags(store).await;
    manifests(store).await;
    purging_and_probes(store).await;
    super::listing_cases::run(store).await;
}

/// Abandoned uploads are purged by age, wherever they are (even in a
/// repository with no content yet); readiness probes leave nothing behind.
async fn purging_and_probes(store: &Store) {
    // Minted at 100 s and at 1000 s after the epoch.
    let (old, fresh) = (
        UploadId::mint(100_000, [1; 10]),
        UploadId::mint(1_000_000, [2; 10]),
    );
    let (stalled, busy) = (repo("purge/stalled"), repo("purge/busy"));
    store
        .create_upload(&stalled, &old)
        .await
        .expect("create old upload");
    store
        .create_upload(&busy, &fresh)
        .await
        .expect("create fresh upload");
    let mut w = store.upload_writer(&stalled, &old).await.expect("writer");
    w.write(Bytes::from_static(b"partial"))
        .await
        .expect("write");
    w.commit().await.expect("commit writer");
    let purged = store.purge_uploads(500).await.expect("purge");
    assert_eq!(
        purged,
        vec![(stalled.clone(), old.clone())],
        "only the old upload goes"
    );
    assert_eq!(store.upload_size(&stalled, &old).await, Ok(None));
    assert_eq!(store.upload_size(&busy, &fresh).await, Ok(Some(0)));
    assert!(store.cancel_upload(&busy, &fresh).await.expect("cancel"));
    assert_eq!(store.purge_uploads(u64::MAX).await, Ok(vec![]));
    store
        .check_writable(&upload("probe-1"))
        .await
        .expect("probe");
    assert_eq!(
        store
            .backend()
            .stat(&layout::probe(&upload("probe-1")))
            .await,
        Ok(None)
    );
}

/// Pushes `bytes` through an upload in `name` and commits it; returns the blob size.
async fn push(store: &Store, name: &str, id: &str, bytes: &[u8]) -> u64 {
    let (r, id) = (repo(name), upload(id));
    store.create_upload(&r, &id).await.expect("create upload");
    let mut w = store.upload_writer(&r, &id).await.expect("upload writer");
    w.write(Bytes::copy_from_slice(bytes)).await.expect("write");
    w.commit().await.expect("commit writer");
    let digest = sha256(bytes);
    store
        .commit_upload(&r, &id, &digest)
        .await
        .expect("commit upload");
    store
        .blob_size(&digest)
        .await
        .expect("blob size")
        .expect("blob stored")
}

async fn uploads_and_blobs(store: &Store) {
    let (one, two) = (repo("suite/one"), repo("suite/two"));
    let u1 = upload("u1");
    let d = sha256(b"hello world");

    let data_key = layout::upload_data(&one, &u1);
    let unknown = || StorageError::NotFound {
        key: data_key.clone(),
    };
    assert_eq!(store.upload_size(&one, &u1).await, Ok(None));
    assert_eq!(store.upload_writer(&one, &u1).await.err(), Some(unknown()));
    assert_eq!(store.commit_upload(&one, &u1, &d).await, Err(unknown()));

    store.create_upload(&one, &u1).await.expect("create");
    assert_eq!(store.upload_size(&one, &u1).await, Ok(Some(0)));
    assert_eq!(store.list_uploads(&one).await, Ok(vec![u1.clone()]));
    assert_eq!(
        store.repository_exists(&one).await,
        Ok(false),
        "an upload is not content"
    );

    for part in ["hello ", "world"] {
        let mut w = store.upload_writer(&one, &u1).await.expect("writer");
        w.write(Bytes::from(part)).await.expect("write");
        w.commit().await.expect("commit part");
    }
    assert_eq!(store.upload_size(&one, &u1).await, Ok(Some(11)));
    match store.read_upload(&one, &u1).await {
        Ok(stream) => assert_eq!(collect(stream).await, b"hello world"),
        // An object store cannot read a multipart upload in progress; it keeps the hash
        // checkpoint instead, so nothing needs to.
        Err(StorageError::Unavailable { .. }) => {}
        Err(e) => panic!("read upload: {e}"),
    }

    assert_eq!(store.blob_size(&d).await, Ok(None));
    assert_eq!(store.commit_upload(&one, &u1, &d).await, Ok(()));
    assert_eq!(store.upload_size(&one, &u1).await, Ok(None), "upload gone");
    assert_eq!(store.list_uploads(&one).await, Ok(vec![]));
    assert_eq!(store.blob_size(&d).await, Ok(Some(11)));
    assert_eq!(store.repo_blob_size(&one, &d).await, Ok(Some(11)));
    assert_eq!(
        store.repo_blob_size(&two, &d).await,
        Ok(None),
        "not linked in two"
    );
    let part = collect(store.read_blob(&d, 6, None).await.expect("read")).await;
    assert_eq!(part, b"world");
    let part = collect(store.read_blob(&d, 0, Some(5)).await.expect("read")).await;
    assert_eq!(part, b"hello");

    // Committing an upload whose blob exists keeps the blob and drops the copy.
    assert_eq!(push(store, "suite/two", "u2", b"hello world").await, 11);
    assert_eq!(store.repo_blob_size(&two, &d).await, Ok(Some(11)));
    assert_eq!(store.upload_size(&two, &upload("u2")).await, Ok(None));
    let all = collect(store.read_blob(&d, 0, None).await.expect("read")).await;
    assert_eq!(all, b"hello world");

    // Unlinking touches only that repository's link.
    assert_eq!(store.unlink_blob(&two, &d).await, Ok(true));
    assert_eq!(store.unlink_blob(&two, &d).await, Ok(false));
    assert_eq!(store.repo_blob_size(&two, &d).await, Ok(None));
    assert_eq!(store.repo_blob_size(&one, &d).await, Ok(Some(11)));
    assert_eq!(store.blob_size(&d).await, Ok(Some(11)), "data stays for GC");
    store.link_blob(&two, &d).await.expect("mount");
    assert_eq!(
        store.repo_blob_size(&two, &d).await,
        Ok(Some(11)),
        "mounted"
    );

    // Cancel.
    let u3 = upload("u3");
    store.create_upload(&one, &u3).await.expect("create");
    let mut w = store.upload_writer(&one, &u3).await.expect("writer");
    w.write(Bytes::from_static(b"keep")).await.expect("write");
    w.commit().await.expect("commit");
    let mut w = store.upload_writer(&one, &u3).await.expect("writer");
    w.write(Bytes::from_static(b"drop")).await.expect("write");
    w.cancel().await.expect("cancel writer");
    assert_eq!(
        store.upload_size(&one, &u3).await,
        Ok(Some(4)),
        "writer cancelled"
    );
    assert_eq!(store.cancel_upload(&one, &u3).await, Ok(true));
    assert_eq!(store.cancel_upload(&one, &u3).await, Ok(false));
    assert_eq!(store.upload_size(&one, &u3).await, Ok(None));
    assert!(
        store.upload_writer(&one, &u3).await.is_err(),
        "no writer after cancel"
    );
    assert_eq!(store.repository_exists(&one).await, Ok(true));
}

async fn tags(store: &Store) {
    let r = repo("suite/tags");
    assert_eq!(store.list_tags(&r).await, Ok(None), "no repository yet");
    let (m1, m2) = (
        Bytes::from_static(b"{\"n\":1}"),
        Bytes::from_static(b"{\"n\":2}"),
    );
    let (d1, d2) = (sha256(&m1), sha256(&m2));
    store
        .put_manifest(&r, &d1, OCI_MANIFEST, m1)
        .await
        .expect("put m1");
    store
        .put_manifest(&r, &d2, OCI_MANIFEST, m2)
        .await
        .expect("put m2");
    assert_eq!(
        store.list_tags(&r).await,
        Ok(Some(vec![])),
        "exists, no tags"
    );

    for t in ["b", "B", "a", "_x", "1.0", "a-b"] {
        store.put_tag(&r, &tag(t), &d1).await.expect("put tag");
    }
    let sorted = ["1.0", "B", "_x", "a", "a-b", "b"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        store.list_tags(&r).await,
        Ok(Some(sorted)),
        "sorted by bytes"
    );
    assert_eq!(store.resolve_tag(&r, &tag("a")).await, Ok(Some(d1.clone())));
    assert_eq!(store.resolve_tag(&r, &tag("none")).await, Ok(None));
    store.put_tag(&r, &tag("a"), &d2).await.expect("move tag");
    assert_eq!(store.resolve_tag(&r, &tag("a")).await, Ok(Some(d2.clone())));
    assert_eq!(store.delete_tag(&r, &tag("b")).await, Ok(true));
    assert_eq!(store.delete_tag(&r, &tag("b")).await, Ok(false));
    let left = ["1.0", "B", "_x", "a", "a-b"].map(String::from).to_vec();
    assert_eq!(store.list_tags(&r).await, Ok(Some(left.clone())));
    let detailed = store
        .list_tags_detailed(&r)
        .await
        .expect("detailed")
        .expect("exists");
    let names: Vec<String> = detailed.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, left, "the same tags, in the same order");
    let moved = detailed.iter().find(|t| t.name == "a").expect("tag a");
    let kept = detailed.iter().find(|t| t.name == "B").expect("tag B");
    assert_eq!((&moved.digest, &kept.digest), (&d2, &d1));
    assert!(moved.pushed >= kept.pushed, "a was pushed again last");
    assert_eq!(
        store.tag_modified(&r, &tag("a")).await,
        Ok(Some(moved.pushed))
    );
    assert_eq!(store.tag_modified(&r, &tag("none")).await, Ok(None));
    assert_eq!(
        store.list_tags_detailed(&repo("suite/none")).await,
        Ok(None)
    );

    let bad = tag("bad");
    let key = layout::tag_link(&r, &bad);
    let garbage = Bytes::from_static(b"not a digest");
    store
        .backend()
        .put(&key, garbage)
        .await
        .expect("put garbage");
    assert_eq!(
        store.resolve_tag(&r, &bad).await,
        Err(StorageError::Corrupt { key })
    );
    assert_eq!(store.delete_tag(&r, &bad).await, Ok(true));

    // A repository with only blobs exists and has no tags.
    let tagless = repo("suite/tagless");
    store.link_blob(&tagless, &d1).await.expect("link");
    assert_eq!(store.list_tags(&tagless).await, Ok(Some(vec![])));
}

async fn manifests(store: &Store) {
    let (r, other) = (repo("suite/manifests"), repo("suite/other"));
    // Odd whitespace: the bytes must come back exactly as received.
    let bytes = Bytes::from_static(b"{ \"schemaVersion\": 2 ,\n  \"x\": [1,2] }\n");
    let d = sha256(&bytes);
    assert_eq!(store.get_manifest(&r, &d).await, Ok(None));
    assert_eq!(store.has_manifest(&r, &d).await, Ok(false));
    assert_eq!(store.delete_manifest(&r, &d, None).await, Ok(false));

    store
        .put_manifest(&r, &d, OCI_MANIFEST, bytes.clone())
        .await
        .expect("put");
    store
        .put_manifest(&r, &d, OCI_MANIFEST, bytes.clone())
        .await
        .expect("put again");
    let stored = StoredManifest {
        media_type: OCI_MANIFEST.into(),
        bytes: bytes.clone(),
    };
    assert_eq!(store.get_manifest(&r, &d).await, Ok(Some(stored)));
    assert_eq!(store.has_manifest(&r, &d).await, Ok(true));
    let len = bytes.len() as u64;
    assert_eq!(
        store.repo_blob_size(&r, &d).await,
        Ok(Some(len)),
        "fetchable as blob"
    );
    assert_eq!(
        store.get_manifest(&other, &d).await,
        Ok(None),
        "only in its repo"
    );
    assert_eq!(store.has_manifest(&other, &d).await, Ok(false));

    let keep = Bytes::from_static(b"{\"keep\":true}");
    let dk = sha256(&keep);
    store
        .put_manifest(&r, &dk, OCI_MANIFEST, keep)
        .await
        .expect("put keep");
    for (t, target) in [("t1", &d), ("t2", &d), ("t3", &dk)] {
        store.put_tag(&r, &tag(t), target).await.expect("tag");
    }
    assert_eq!(store.delete_manifest(&r, &d, None).await, Ok(true));
    assert_eq!(store.get_manifest(&r, &d).await, Ok(None), "deleted");
    assert_eq!(store.has_manifest(&r, &d).await, Ok(false));
    assert_eq!(
        store.resolve_tag(&r, &tag("t1")).await,
        Ok(None),
        "its tags went"
    );
    assert_eq!(
        store.resolve_tag(&r, &tag("t3")).await,
        Ok(Some(dk.clone()))
    );
    assert_eq!(store.list_tags(&r).await, Ok(Some(vec!["t3".into()])));
    assert_eq!(
        store.delete_manifest(&r, &d, None).await,
        Ok(false),
        "again"
    );

    let key = layout::revision_link(&r, &dk);
    store
        .backend()
        .put(&key, Bytes::from_static(b"{"))
        .await
        .expect("garbage");
    assert_eq!(
        store.get_manifest(&r, &dk).await,
        Err(StorageError::Corrupt { key })
    );
    store
        .put_manifest(
            &r,
            &dk,
            OCI_MANIFEST,
            Bytes::from_static(b"{\"keep\":true}"),
        )
        .await
        .expect("repair");
}
