//! What garbage collection relies on: modification times, the paged walk in key order,
//! `touch`, `delete_if_older`, and that a `rename` makes its target new. Every key lives
//! under `aging/`, deleted at the end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::backend::{Backend, ObjectEntry};

pub(super) async fn run(b: &Arc<dyn Backend>) {
    times(b).await;
    walk_in_key_order(b).await;
    touch_and_delete_if_older(b).await;
    batches_answer_each_key_in_order(b).await;
    touch_races_delete(b).await;
    deletes_in_one_directory_race(b).await;
    assert!(b.delete("aging").await.expect("delete aging/"));
}

/// Long enough for a later write to show a later time.
fn later(b: &Arc<dyn Backend>) -> Duration {
    b.time_resolution() + Duration::from_millis(30)
}

async fn put(b: &Arc<dyn Backend>, key: &str) {
    b.put(key, Bytes::from_static(b"x")).await.expect("put");
}

async fn modified(b: &Arc<dyn Backend>, key: &str) -> SystemTime {
    b.stat(key)
        .await
        .expect("stat")
        .expect("object exists")
        .modified
}

async fn times(b: &Arc<dyn Backend>) {
    let before = SystemTime::now() - Duration::from_secs(2);
    put(b, "aging/t/a").await;
    let first = modified(b, "aging/t/a").await;
    assert!(first >= before, "a new object's time is about now");
    assert!(first <= SystemTime::now() + Duration::from_secs(2));

    // A rename makes its target new, even when the source is older.
    put(b, "aging/t/src").await;
    tokio::time::sleep(later(b)).await;
    let src = modified(b, "aging/t/src").await;
    b.rename("aging/t/src", "aging/t/dst")
        .await
        .expect("rename");
    assert!(modified(b, "aging/t/dst").await > src, "renamed is new");
}

async fn walk_in_key_order(b: &Arc<dyn Backend>) {
    // `a-b` sorts before `a/x` ('-' < '/'), `a0` after it: a walk by directories must
    // still come out in byte order of the whole keys.
    let keys = ["a/x", "a/y/z", "a-b", "a0", "b", "a/y-1", "c/d/e/f"];
    for k in keys {
        put(b, &format!("aging/w/{k}")).await;
    }
    let mut expected: Vec<String> = keys.iter().map(|k| format!("aging/w/{k}")).collect();
    expected.sort();
    let all = b.list_objects("aging/w", None, 100).await.expect("walk");
    let got: Vec<&str> = all.iter().map(|e: &ObjectEntry| e.key.as_str()).collect();
    assert_eq!(got, expected, "every object, in byte order");
    assert!(all.iter().all(|e| e.meta.size == 1));

    for page in [1, 2, 3, 6] {
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let got = b
                .list_objects("aging/w", after.as_deref(), page)
                .await
                .expect("page");
            assert!(got.len() <= page, "a page holds at most its limit");
            let Some(last) = got.last() else { break };
            after = Some(last.key.clone());
            paged.extend(got.into_iter().map(|e| e.key));
        }
        assert_eq!(paged, expected, "pages of {page} cover everything once");
    }
    assert_eq!(
        b.list_objects("aging/w/a/y", None, 10)
            .await
            .map(|v| v.len()),
        Ok(1),
        "a prefix holds only what is under it, not aging/w/a/y-1"
    );
    assert_eq!(b.list_objects("aging/none", None, 10).await, Ok(vec![]));
    assert_eq!(b.list_objects("aging/w", None, 0).await, Ok(vec![]));
}

/// `get_many` and `delete_many_if_older` answer for each key, in the order given, as the
/// single calls would: absent keys, keys too new and keys old enough mixed in one batch.
async fn batches_answer_each_key_in_order(b: &Arc<dyn Backend>) {
    put(b, "aging/m/a/old").await;
    put(b, "aging/m/b/old").await;
    let cutoff = modified(b, "aging/m/b/old").await + b.time_resolution();
    tokio::time::sleep(later(b)).await;
    put(b, "aging/m/new").await;
    let keys = [
        "aging/m/a/old",
        "aging/m/absent",
        "aging/m/new",
        "aging/m/b/old",
    ];
    let read = b
        .get_many(keys.iter().map(|k| k.to_string()).collect())
        .await
        .expect("get_many");
    let x = Some(Bytes::from_static(b"x"));
    assert_eq!(read, vec![x.clone(), None, x.clone(), x]);
    let deleted = b
        .delete_many_if_older(keys.iter().map(|k| (k.to_string(), cutoff)).collect())
        .await
        .expect("delete_many_if_older");
    assert_eq!(deleted, vec![true, false, false, true]);
    b.sync_deletions().await.expect("sync_deletions");
    assert_eq!(b.list("aging/m").await, Ok(vec!["new".to_owned()]));
    assert_eq!(b.get_many(Vec::new()).await, Ok(Vec::new()));
    assert_eq!(b.delete_many_if_older(Vec::new()).await, Ok(Vec::new()));
}

async fn touch_and_delete_if_older(b: &Arc<dyn Backend>) {
    assert_eq!(b.touch("aging/d/absent").await, Ok(false));
    assert_eq!(
        b.stat("aging/d/absent").await,
        Ok(None),
        "touch creates nothing"
    );

    put(b, "aging/d/old").await;
    let old = modified(b, "aging/d/old").await;
    tokio::time::sleep(later(b)).await;
    assert_eq!(b.touch("aging/d/old").await, Ok(true));
    let touched = modified(b, "aging/d/old").await;
    assert!(touched > old, "touch makes it new");
    assert_eq!(
        b.get("aging/d/old").await,
        Ok(Some(Bytes::from_static(b"x")))
    );

    // Modified after the cutoff: kept, bytes intact.
    assert_eq!(b.delete_if_older("aging/d/old", old).await, Ok(false));
    assert_eq!(
        b.get("aging/d/old").await,
        Ok(Some(Bytes::from_static(b"x")))
    );
    // Modified before the cutoff: gone.
    let cutoff = touched + b.time_resolution();
    assert_eq!(b.delete_if_older("aging/d/old", cutoff).await, Ok(true));
    assert_eq!(b.stat("aging/d/old").await, Ok(None));
    assert_eq!(b.delete_if_older("aging/d/old", cutoff).await, Ok(false));
    assert_eq!(
        b.list("aging/d").await,
        Ok(vec![]),
        "no temporary left behind"
    );
}

/// Deletions of every object of one directory at once all succeed (garbage collection
/// deletes a repository's links concurrently): none fails because another one's cleanup
/// removed the directory it had just emptied.
async fn deletes_in_one_directory_race(b: &Arc<dyn Backend>) {
    for round in 0..20 {
        let keys: Vec<String> = (0..8).map(|i| format!("aging/same/{round}/{i}")).collect();
        for key in &keys {
            put(b, key).await;
        }
        let cutoff = SystemTime::now() + Duration::from_secs(1);
        let tasks: Vec<_> = keys
            .iter()
            .map(|key| {
                let (b, key) = (b.clone(), key.clone());
                tokio::spawn(async move { b.delete_if_older(&key, cutoff).await })
            })
            .collect();
        for (task, key) in tasks.into_iter().zip(&keys) {
            let deleted = task.await.expect("delete task");
            assert_eq!(deleted.ok(), Some(true), "{key}: deleted");
        }
        assert_eq!(b.list(&format!("aging/same/{round}")).await, Ok(vec![]));
    }
}

/// A touch that reports success is never undone by a delete that raced it.
async fn touch_races_delete(b: &Arc<dyn Backend>) {
    for i in 0..40 {
        let key = format!("aging/r/{i}");
        put(b, &key).await;
        let cutoff = SystemTime::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let (touch, delete) = {
            let (b1, b2, k1, k2) = (b.clone(), b.clone(), key.clone(), key.clone());
            let t = tokio::spawn(async move { b1.touch(&k1).await });
            let d = tokio::spawn(async move { b2.delete_if_older(&k2, cutoff).await });
            (
                t.await.expect("touch task").expect("touch"),
                d.await.expect("delete task").expect("delete"),
            )
        };
        let exists = b.stat(&key).await.expect("stat").is_some();
        assert!(!(touch && delete), "{key}: both a touch and its delete won");
        assert!(!touch || exists, "{key}: a touch that won was undone");
        assert!(
            !delete || !exists,
            "{key}: a delete that won left the object"
        );
        // A touch may also report the object gone while its new time made the delete
        // put it back (it looked during the delete's rename): the caller then acts as if
        // it were gone, which is the safe side.
    }
}
