//! Raw `Backend` behaviour. Every key lives under `suite/`, deleted at the end.

use std::sync::Arc;

use bytes::Bytes;

use super::{collect, pattern};
use crate::backend::Backend;
use crate::error::StorageError;

pub(super) async fn run(b: &Arc<dyn Backend>) {
    absent(b).await;
    invalid_keys(b).await;
    put_get_stat(b).await;
    put_unsynced(b).await;
    ranged_reads(b).await;
    append_resume_cancel(b).await;
    flush_shows_bytes_before_commit(b).await;
    list_sorted(b).await;
    rename_replaces(b).await;
    delete_recursive(b).await;
    assert!(b.delete("suite").await.expect("delete suite/"));
    let root = b.list("").await.expect("list root");
    assert!(root.is_empty(), "backend cases left {root:?}");
}

/// `put_unsynced` is a `put` in every visible way: creates parents, replaces, hides temps.
async fn put_unsynced(b: &Arc<dyn Backend>) {
    let k = "suite/unsynced/a/b";
    b.put_unsynced(k, Bytes::from_static(b"one"))
        .await
        .expect("put_unsynced");
    b.put_unsynced(k, Bytes::from_static(b"two!"))
        .await
        .expect("replace");
    assert_eq!(b.get(k).await, Ok(Some(Bytes::from_static(b"two!"))));
    assert_eq!(size(b, k).await, Ok(Some(4)));
    assert_eq!(b.list("suite/unsynced/a").await, Ok(vec!["b".to_owned()]));
    assert_eq!(b.delete("suite/unsynced").await, Ok(true));
}

fn not_found(key: &str) -> StorageError {
    StorageError::NotFound { key: key.into() }
}

async fn absent(b: &Arc<dyn Backend>) {
    let k = "suite/absent/x";
    assert_eq!(b.get(k).await, Ok(None), "get absent");
    assert_eq!(size(b, k).await, Ok(None), "stat absent");
    assert_eq!(
        b.read(k, 0, None).await.err(),
        Some(not_found(k)),
        "read absent"
    );
    assert_eq!(
        b.read_immutable(k, 0, None).await.err(),
        Some(not_found(k)),
        "read_immutable absent"
    );
    assert_eq!(b.delete(k).await, Ok(false), "delete absent");
    assert_eq!(b.list(k).await, Ok(vec![]), "list absent");
    assert_eq!(b.rename(k, "suite/absent/y").await, Err(not_found(k)));
    assert_eq!(
        size(b, "suite/absent/y").await,
        Ok(None),
        "failed rename made no target"
    );
}

async fn invalid_keys(b: &Arc<dyn Backend>) {
    for bad in [
        "", "/abs", "a//b", "a/", "a/../b", "..", "a/.", ".tmp-x", "a/.tmp-y",
    ] {
        let invalid = || StorageError::InvalidKey { key: bad.into() };
        assert_eq!(b.get(bad).await, Err(invalid()), "get {bad:?}");
        assert_eq!(
            b.put(bad, Bytes::new()).await,
            Err(invalid()),
            "put {bad:?}"
        );
        assert_eq!(size(b, bad).await, Err(invalid()), "stat {bad:?}");
        assert_eq!(b.delete(bad).await, Err(invalid()), "delete {bad:?}");
        assert_eq!(b.read(bad, 0, None).await.err(), Some(invalid()));
        assert_eq!(b.append(bad).await.err(), Some(invalid()));
        assert_eq!(b.rename("suite/x", bad).await, Err(invalid()));
    }
    assert!(matches!(
        b.list("..").await,
        Err(StorageError::InvalidKey { .. })
    ));
}

async fn put_get_stat(b: &Arc<dyn Backend>) {
    let k = "suite/obj/a";
    b.put(k, Bytes::from_static(b"hello")).await.expect("put");
    assert_eq!(b.get(k).await, Ok(Some(Bytes::from_static(b"hello"))));
    assert_eq!(size(b, k).await, Ok(Some(5)));
    b.put(k, Bytes::from_static(b"hi")).await.expect("replace");
    assert_eq!(
        b.get(k).await,
        Ok(Some(Bytes::from_static(b"hi"))),
        "replaced"
    );
    assert_eq!(size(b, k).await, Ok(Some(2)));
    b.put("suite/obj/empty", Bytes::new())
        .await
        .expect("put empty");
    assert_eq!(size(b, "suite/obj/empty").await, Ok(Some(0)));
    assert_eq!(b.get("suite/obj/empty").await, Ok(Some(Bytes::new())));
    // A prefix is not an object.
    assert_eq!(b.get("suite/obj").await, Ok(None), "get of a prefix");
    assert_eq!(size(b, "suite/obj").await, Ok(None), "stat of a prefix");
    assert_eq!(b.list(k).await, Ok(vec![]), "an object has no children");
}

async fn ranged_reads(b: &Arc<dyn Backend>) {
    const MIB: usize = 1024 * 1024;
    let k = "suite/read/big";
    let data = pattern(2 * MIB + 12_345, 3);
    b.put(k, data.clone()).await.expect("put big");
    let len = data.len();
    let cases: [(usize, Option<usize>, &[u8]); 8] = [
        (0, None, &data[..]),
        (0, Some(0), &[]),
        (10, Some(5), &data[10..15]),
        (len - 3, Some(100), &data[len - 3..]),
        (len, None, &[]),
        (len + 10, Some(5), &[]),
        (MIB - 1, Some(MIB + 2), &data[MIB - 1..2 * MIB + 1]),
        (MIB + 7, None, &data[MIB + 7..]),
    ];
    for immutable in [false, true] {
        for (offset, want, expected) in cases {
            let stream = read_either(b, immutable, k, offset as u64, want.map(|n| n as u64))
                .await
                .expect("open read");
            let got = collect(stream).await;
            assert!(
                got == expected,
                "read({offset}, {want:?}), immutable: {immutable}: {} bytes",
                got.len()
            );
        }
    }
    b.put("suite/read/small", Bytes::from_static(b"0123456789"))
        .await
        .expect("put small");
    for immutable in [false, true] {
        let stream = read_either(b, immutable, "suite/read/small", 4, Some(3))
            .await
            .expect("open");
        assert_eq!(collect(stream).await, b"456");
    }
}

/// `read`, or `read_immutable`: every backend gives the same bytes through both.
async fn read_either(
    b: &Arc<dyn Backend>,
    immutable: bool,
    key: &str,
    offset: u64,
    len: Option<u64>,
) -> Result<crate::backend::ByteStream, StorageError> {
    if immutable {
        b.read_immutable(key, offset, len).await
    } else {
        b.read(key, offset, len).await
    }
}

/// A writer's `flush` makes what it wrote so far readable while it stays open (a reader
/// follows it), where the backend can (it says so); its `commit` then adds the rest,
/// either way.
async fn flush_shows_bytes_before_commit(b: &Arc<dyn Backend>) {
    let k = "suite/flush/data";
    let big = pattern(1536 * 1024, 4);
    b.upload_start(k).await.expect("upload_start");
    let mut w = b.append_existing(k).await.expect("append");
    w.write(Bytes::from_static(b"head")).await.expect("write");
    w.write(big.clone()).await.expect("write");
    let readable = w.flush().await.expect("flush");
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&big);
    if readable {
        let stream = b.read(k, 0, None).await.expect("read after flush");
        assert!(collect(stream).await == expected, "flushed bytes readable");
    }
    w.write(Bytes::from_static(b"tail")).await.expect("write");
    assert_eq!(w.flush().await, Ok(readable), "second flush");
    if readable {
        let stream = b.read(k, 1536 * 1024, None).await.expect("read the end");
        assert_eq!(
            collect(stream).await,
            [&big[1536 * 1024 - 4..], b"tail"].concat()
        );
    }
    expected.extend_from_slice(b"tail");
    assert_eq!(w.commit().await, Ok(expected.len() as u64), "commit size");
    b.upload_finish(k, "suite/flush/moved")
        .await
        .expect("upload_finish");
    assert!(
        b.get("suite/flush/moved").await.expect("get").as_deref() == Some(&expected[..]),
        "committed bytes"
    );
    assert_eq!(b.delete("suite/flush").await, Ok(true));
}

/// Uploads: appended over several writers, read back only once finished (an object
/// store cannot read a multipart upload in progress), sizes through `upload_status`.
async fn append_resume_cancel(b: &Arc<dyn Backend>) {
    let k = "suite/append/data";
    // Past S3's 5 MiB part size, so an object store's parts are exercised too.
    let big = pattern(6 * 1024 * 1024 + 1536 * 1024, 9);
    let mut expected = Vec::new();
    let upload_size =
        |key: &'static str| async move { b.upload_status(key).await.map(|s| s.map(|s| s.size)) };

    assert_eq!(
        b.append_existing(k).await.err(),
        Some(StorageError::NotFound { key: k.to_owned() }),
        "append_existing of an absent upload"
    );
    assert_eq!(b.upload_status(k).await, Ok(None));
    b.upload_start(k).await.expect("upload_start");
    assert_eq!(upload_size(k).await, Ok(Some(0)), "started empty");
    let mut w = b
        .append_existing(k)
        .await
        .expect("append to a started upload");
    for part in [
        Bytes::from_static(b"abc"),
        Bytes::new(),
        big.clone(),
        Bytes::from_static(b"xyz"),
    ] {
        expected.extend_from_slice(&part);
        w.write(part).await.expect("write");
    }
    w.set_checkpoint(Bytes::from_static(b"state-1"));
    assert_eq!(
        w.commit().await,
        Ok(expected.len() as u64),
        "first commit size"
    );
    let status = b.upload_status(k).await.expect("status").expect("exists");
    assert_eq!(status.size, expected.len() as u64);
    assert!(
        matches!(status.checkpoint.as_deref(), None | Some(b"state-1")),
        "a kept checkpoint is the last one set: {:?}",
        status.checkpoint
    );

    // A second writer resumes at the end.
    let mut w = b.append_existing(k).await.expect("append existing");
    w.write(Bytes::from_static(b"more")).await.expect("write");
    expected.extend_from_slice(b"more");
    assert_eq!(
        w.commit().await,
        Ok(expected.len() as u64),
        "resumed commit size"
    );

    // Chunks ended without a sync count at once, like committed ones.
    for part in [&b"u1"[..], b"u2"] {
        let mut w = b.append(k).await.expect("append unsynced");
        w.write(Bytes::copy_from_slice(part)).await.expect("write");
        expected.extend_from_slice(part);
        assert_eq!(
            w.commit_unsynced().await,
            Ok(expected.len() as u64),
            "unsynced commit size"
        );
        assert_eq!(upload_size(k).await, Ok(Some(expected.len() as u64)));
    }

    // Cancel restores the size at open, even after more than a part was written.
    let mut w = b.append(k).await.expect("append to cancel");
    w.write(Bytes::from_static(b"discard"))
        .await
        .expect("write");
    w.write(pattern(6 * 1024 * 1024, 1))
        .await
        .expect("write big");
    w.cancel().await.expect("cancel");
    assert_eq!(
        upload_size(k).await,
        Ok(Some(expected.len() as u64)),
        "cancelled"
    );

    // A last chunk commits everything; the upload then becomes an object, whole, and
    // is gone as an upload.
    let mut w = b.append(k).await.expect("append last");
    w.write(Bytes::from_static(b"end")).await.expect("write");
    expected.extend_from_slice(b"end");
    assert_eq!(w.commit().await, Ok(expected.len() as u64), "last commit");
    b.upload_finish(k, "suite/append/moved")
        .await
        .expect("upload_finish");
    assert_eq!(
        b.get("suite/append/moved").await.expect("get").as_deref(),
        Some(&expected[..])
    );
    assert_eq!(b.upload_status(k).await, Ok(None), "finished upload gone");
    assert_eq!(
        b.upload_finish(k, "suite/append/again").await,
        Err(StorageError::NotFound { key: k.to_owned() }),
        "finishing twice"
    );

    // A small upload (less than a part) finishes the same way.
    b.upload_start("suite/append/small").await.expect("start");
    let mut w = b.append_existing("suite/append/small").await.expect("open");
    w.write(Bytes::from_static(b"tiny")).await.expect("write");
    w.commit().await.expect("commit");
    let mut w = b.append_existing("suite/append/small").await.expect("open");
    w.write(Bytes::from_static(b"+1")).await.expect("write");
    w.commit().await.expect("commit");
    b.upload_finish("suite/append/small", "suite/append/small-done")
        .await
        .expect("finish small");
    assert_eq!(
        b.get("suite/append/small-done")
            .await
            .expect("get")
            .as_deref(),
        Some(&b"tiny+1"[..])
    );

    // An upload cancelled whole leaves nothing; a second cancel finds nothing.
    let mut w = b.append("suite/append/new").await.expect("append new");
    w.write(pattern(6 * 1024 * 1024, 3)).await.expect("write");
    w.commit().await.expect("commit");
    assert_eq!(b.upload_cancel("suite/append/new").await, Ok(true));
    assert_eq!(b.upload_status("suite/append/new").await, Ok(None));
    assert_eq!(b.upload_cancel("suite/append/new").await, Ok(false));

    // Finishing an empty upload makes an empty object.
    let w = b.append("suite/append/empty").await.expect("append empty");
    assert_eq!(w.commit().await, Ok(0));
    b.upload_finish("suite/append/empty", "suite/append/empty-done")
        .await
        .expect("finish empty");
    assert_eq!(size(b, "suite/append/empty-done").await, Ok(Some(0)));
}

async fn list_sorted(b: &Arc<dyn Backend>) {
    for k in ["b", "a/x", "B", "a-b", "a/y", "_z", "a.c/q"] {
        b.put(&format!("suite/list/{k}"), Bytes::from_static(b"1"))
            .await
            .expect("put for list");
    }
    let names = b.list("suite/list").await.expect("list");
    assert_eq!(
        names,
        ["B", "_z", "a", "a-b", "a.c", "b"],
        "sorted by bytes, deduplicated"
    );
    assert_eq!(
        b.list("suite/list/a").await,
        Ok(vec!["x".into(), "y".into()])
    );
    let suite = b.list("suite").await.expect("list");
    assert!(suite.contains(&"list".into()), "{suite:?}");
}

async fn rename_replaces(b: &Arc<dyn Backend>) {
    b.put("suite/mv/src", Bytes::from_static(b"one"))
        .await
        .expect("put");
    b.rename("suite/mv/src", "suite/mv/deep/er/dst")
        .await
        .expect("rename to new parents");
    assert_eq!(b.get("suite/mv/src").await, Ok(None), "source gone");
    assert_eq!(
        b.get("suite/mv/deep/er/dst").await,
        Ok(Some(Bytes::from_static(b"one")))
    );
    b.put("suite/mv2/src", Bytes::from_static(b"two"))
        .await
        .expect("put");
    b.rename("suite/mv2/src", "suite/mv/deep/er/dst")
        .await
        .expect("rename replacing");
    assert_eq!(
        b.get("suite/mv/deep/er/dst").await,
        Ok(Some(Bytes::from_static(b"two"))),
        "replaced"
    );
    assert_eq!(b.list("suite/mv").await, Ok(vec!["deep".into()]));
    assert_eq!(
        b.list("suite/mv2").await,
        Ok(vec![]),
        "emptied prefix vanished"
    );
}

async fn delete_recursive(b: &Arc<dyn Backend>) {
    for k in ["a", "sub/b", "sub/deeper/c"] {
        b.put(&format!("suite/del/{k}"), Bytes::from_static(b"1"))
            .await
            .expect("put for delete");
    }
    assert_eq!(b.delete("suite/del/sub").await, Ok(true), "delete prefix");
    assert_eq!(b.get("suite/del/sub/deeper/c").await, Ok(None));
    assert_eq!(b.list("suite/del").await, Ok(vec!["a".into()]));
    assert_eq!(b.delete("suite/del/sub").await, Ok(false), "delete again");
    assert_eq!(b.delete("suite/del/a").await, Ok(true), "delete object");
    let suite = b.list("suite").await.expect("list");
    assert!(
        !suite.contains(&"del".into()),
        "emptied prefix vanished: {suite:?}"
    );
}

/// An object's size through `stat`, the way most cases look at it.
pub(super) async fn size(b: &Arc<dyn Backend>, key: &str) -> Result<Option<u64>, StorageError> {
    Ok(b.stat(key).await?.map(|m| m.size))
}
