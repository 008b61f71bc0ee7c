//! The cache through the `Store` API: hits, every invalidating write, the TTL for
//! writes it cannot see, the race guard and the bounds.

use std::sync::Arc;

use bytes::Bytes;
use registry_core::{Algorithm, Digest, RepoName, Tag};

use super::*;
use crate::layout;
use crate::memory::MemoryBackend;
use crate::store::Store;

const MT: &str = "application/vnd.oci.image.manifest.v1+json";

fn store() -> Store {
    Store::new(Arc::new(MemoryBackend::new())).with_cache(CacheConfig::default())
}

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn digest(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

/// Changes a tag behind the store's back, as another replica would.
async fn raw_tag(store: &Store, r: &RepoName, t: &Tag, d: &Digest) {
    let key = layout::tag_link(r, t);
    store
        .backend()
        .put(&key, Bytes::from(d.to_string()))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn tag_reads_are_cached_until_the_ttl() {
    let s = store();
    let (r, t) = (repo("a/b"), tag("v1"));
    let (d1, d2) = (digest(b"1"), digest(b"2"));
    s.put_tag(&r, &t, &d1).await.unwrap();
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d1.clone())));
    raw_tag(&s, &r, &t, &d2).await;
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d1.clone())), "cached");
    tokio::time::advance(CacheConfig::default().ttl).await;
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d2)), "expired");
}

#[tokio::test(start_paused = true)]
async fn tag_writes_through_the_store_are_seen_at_once() {
    let s = store();
    let (r, t) = (repo("a/b"), tag("v1"));
    let (d1, d2) = (digest(b"1"), digest(b"2"));
    s.put_tag(&r, &t, &d1).await.unwrap();
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d1)));
    s.put_tag(&r, &t, &d2).await.unwrap();
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d2)));
    assert_eq!(s.delete_tag(&r, &t).await, Ok(true));
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(None));
    // Clones share the cache: a write through one is seen by the other.
    let other = s.clone();
    let d3 = digest(b"3");
    other.put_tag(&r, &t, &d3).await.unwrap();
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d3)));
}

#[tokio::test(start_paused = true)]
async fn absent_values_are_not_cached() {
    let s = store();
    let (r, t) = (repo("a/b"), tag("v1"));
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(None));
    let d = digest(b"1");
    raw_tag(&s, &r, &t, &d).await;
    assert_eq!(s.resolve_tag(&r, &t).await, Ok(Some(d)));
}

#[tokio::test(start_paused = true)]
async fn manifests_are_cached_and_deletes_drop_them_and_their_tags() {
    let s = store();
    let (r, other) = (repo("a/b"), repo("a/bc"));
    let body = Bytes::from_static(b"{\"schemaVersion\":2}");
    let d = digest(&body);
    for name in [&r, &other] {
        s.put_manifest(name, &d, MT, body.clone()).await.unwrap();
        s.put_tag(name, &tag("t"), &d).await.unwrap();
        assert_eq!(s.resolve_tag(name, &tag("t")).await, Ok(Some(d.clone())));
    }
    let got = s.get_manifest(&r, &d).await.unwrap().unwrap();
    assert_eq!((got.media_type.as_str(), &got.bytes), (MT, &body));
    // Served from memory: the revision link is gone from the backend.
    let link = layout::revision_link(&r, &d);
    let saved = s.backend().get(&link).await.unwrap().unwrap();
    s.backend().delete(&link).await.unwrap();
    assert_eq!(s.get_manifest(&r, &d).await.unwrap(), Some(got));
    s.backend().put(&link, saved).await.unwrap();

    assert_eq!(s.delete_manifest(&r, &d, None).await, Ok(true));
    assert_eq!(s.get_manifest(&r, &d).await, Ok(None));
    assert_eq!(s.resolve_tag(&r, &tag("t")).await, Ok(None));
    // The neighbour whose name shares a prefix keeps its tag.
    assert_eq!(s.resolve_tag(&other, &tag("t")).await, Ok(Some(d.clone())));
    assert!(s.get_manifest(&other, &d).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_read_that_raced_a_write_is_not_cached() {
    let cache = MetaCache::new(CacheConfig::default());
    let d = digest(b"old");
    let Err(ticket) = cache.tag("k") else {
        panic!("empty cache hit")
    };
    // A write lands between the backend read and the fill.
    cache.forget_tag("k");
    cache.fill_tag(ticket, "k", &d);
    assert!(cache.tag("k").is_err());
    let Err(ticket) = cache.manifest("m") else {
        panic!("empty cache hit")
    };
    cache.forget_tags_under("elsewhere");
    let m = StoredManifest {
        media_type: MT.into(),
        bytes: Bytes::from_static(b"{}"),
    };
    cache.fill_manifest(ticket, "m", &m);
    assert!(cache.manifest("m").is_err());
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_bounded() {
    let cache = MetaCache::new(CacheConfig {
        max_entries: 4,
        max_manifest_bytes: 1000,
        ..CacheConfig::default()
    });
    for i in 0..10 {
        let Err(ticket) = cache.tag(&format!("t{i}")) else {
            panic!("hit")
        };
        cache.fill_tag(ticket, &format!("t{i}"), &digest(b"x"));
    }
    assert!(cache.lock().tags.len() <= 4);
    let big = StoredManifest {
        media_type: MT.into(),
        bytes: Bytes::from(vec![b' '; 200]),
    };
    for i in 0..10 {
        let Err(ticket) = cache.manifest(&format!("m{i}")) else {
            panic!("hit")
        };
        cache.fill_manifest(ticket, &format!("m{i}"), &big);
        let inner = cache.lock();
        assert!(inner.manifest_bytes <= 1000, "{}", inner.manifest_bytes);
        let counted: usize = inner.manifests.values().map(|t| entry_size(&t.value)).sum();
        assert_eq!(counted, inner.manifest_bytes);
    }
    // Too large for the budget: never cached.
    let huge = StoredManifest {
        media_type: MT.into(),
        bytes: Bytes::from(vec![b' '; 600]),
    };
    let Err(ticket) = cache.manifest("huge") else {
        panic!("hit")
    };
    cache.fill_manifest(ticket, "huge", &huge);
    assert!(cache.manifest("huge").is_err());
}
