//! The store's listings: referrers of a subject, and the catalog of repositories.

use bytes::Bytes;

use super::store_cases::OCI_MANIFEST;
use super::{repo, sha256, upload};
use crate::layout;
use crate::store::Store;

pub(super) async fn run(store: &Store) {
    referrers(store).await;
    catalog(store).await;
}

async fn referrers(store: &Store) {
    let r = repo("suite/refs");
    let subject = Bytes::from_static(b"{\"subject\":true}");
    let ds = sha256(&subject);
    store
        .put_manifest(&r, &ds, OCI_MANIFEST, subject)
        .await
        .expect("put subject");
    assert_eq!(store.list_referrers(&r, &ds).await, Ok(vec![]));

    let mut refs = Vec::new();
    for i in 0..3 {
        let m = Bytes::from(format!("{{\"referrer\":{i}}}"));
        let d = sha256(&m);
        store
            .put_manifest(&r, &d, OCI_MANIFEST, m)
            .await
            .expect("put referrer");
        let desc = Bytes::from(format!("{{\"digest\":\"{d}\"}}"));
        store
            .add_referrer(&r, &ds, &d, desc.clone())
            .await
            .expect("add");
        refs.push((d, desc));
    }
    refs.sort_by_key(|(d, _)| layout::referrer_name(d));
    let descs: Vec<Bytes> = refs.iter().map(|(_, desc)| desc.clone()).collect();
    assert_eq!(
        store.list_referrers(&r, &ds).await,
        Ok(descs),
        "sorted by key"
    );
    assert_eq!(
        store.list_referrers(&repo("suite/one"), &ds).await,
        Ok(vec![])
    );

    let (gone, _) = &refs[1];
    assert_eq!(store.delete_manifest(&r, gone, Some(&ds)).await, Ok(true));
    let left: Vec<Bytes> = [&refs[0], &refs[2]]
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(
        store.list_referrers(&r, &ds).await,
        Ok(left),
        "removed on delete"
    );
}

async fn catalog(store: &Store) {
    let blob = sha256(b"hello world");
    store
        .link_blob(&repo("a/b/c"), &blob)
        .await
        .expect("link a/b/c");
    let m = Bytes::from_static(b"{\"catalog\":1}");
    let dm = sha256(&m);
    store
        .put_manifest(&repo("a/b"), &dm, OCI_MANIFEST, m.clone())
        .await
        .expect("put a/b");
    store
        .put_manifest(&repo("a/b/c/d"), &dm, OCI_MANIFEST, m)
        .await
        .expect("put a/b/c/d");
    store
        .create_upload(&repo("a"), &upload("only"))
        .await
        .expect("upload in a");
    store
        .link_blob(&repo("z/gone"), &blob)
        .await
        .expect("link z/gone");
    assert_eq!(store.unlink_blob(&repo("z/gone"), &blob).await, Ok(true));

    let expected = [
        "a/b",
        "a/b/c",
        "a/b/c/d",
        "suite/manifests",
        "suite/one",
        "suite/refs",
        "suite/tagless",
        "suite/tags",
        "suite/two",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(store.list_repositories().await, Ok(expected), "catalog");
    assert_eq!(
        store.repository_exists(&repo("a")).await,
        Ok(false),
        "upload only"
    );
    assert_eq!(store.repository_exists(&repo("a/b")).await, Ok(true));
    assert_eq!(
        store.repository_exists(&repo("z/gone")).await,
        Ok(false),
        "emptied"
    );
    assert_eq!(store.list_tags(&repo("a")).await, Ok(None));
    assert_eq!(
        store.cancel_upload(&repo("a"), &upload("only")).await,
        Ok(true)
    );
}
