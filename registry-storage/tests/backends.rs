//! Every backend runs the shared conformance suite; filesystem-specific behaviour after.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use registry_core::{Algorithm, Digest, RepoName, UploadId};
use registry_storage::conformance::{run_backend_suite, run_backend_suite_with_raw, run_gc_suite};
use registry_storage::s3::S3Backend;
use registry_storage::{Backend, FsBackend, MemoryBackend, StorageError, Store};

mod s3_env;

/// Every file and directory under `root`, as `/`-separated relative paths: what the
/// leftover check needs, since `list` hides temp files.
fn walk_disk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn temp_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    (dir, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_the_suite() {
    run_backend_suite(Arc::new(MemoryBackend::new())).await;
}

/// An S3 backend on a bucket of its own, under a root directory (so every key goes
/// through the prefixing), with the raw listing of everything in the bucket.
async fn s3_backend() -> (Arc<dyn Backend>, registry_storage::s3::client::S3Client) {
    let bucket = s3_env::unique_bucket();
    let client = s3_env::client_in(&bucket, "registry/root").await;
    let backend = S3Backend::new(client).await.expect("open the S3 backend");
    assert!(
        backend.deletes_conditionally(),
        "radosgw honours x-amz-delete-if-unmodified-since"
    );
    // A second client on the whole bucket sees what the backend hides.
    let raw = s3_env::client_in(&bucket, "").await;
    (Arc::new(backend), raw)
}

/// Every key in the bucket, relative to the backend's root, hidden ones included.
async fn s3_raw_keys(raw: &registry_storage::s3::client::S3Client) -> Vec<String> {
    let mut keys = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = raw
            .list("", false, None, next.as_deref(), 1000)
            .await
            .expect("list the bucket");
        keys.extend(page.objects.into_iter().map(|(k, _, _)| k));
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    keys.into_iter()
        .filter_map(|k| k.strip_prefix("registry/root/").map(str::to_owned))
        .filter(|k| !k.starts_with("_probe/"))
        .collect()
}

/// No upload leftovers (tail segments, multipart objects) in the bucket.
async fn assert_no_hidden_objects(raw: &registry_storage::s3::client::S3Client) {
    let hidden: Vec<String> = s3_raw_keys(raw)
        .await
        .into_iter()
        .filter(|k| k.contains(".tmp-"))
        .collect();
    assert!(hidden.is_empty(), "hidden objects left: {hidden:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_passes_the_suite() {
    let (backend, raw) = s3_backend().await;
    run_backend_suite(backend).await;
    assert_no_hidden_objects(&raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_passes_the_gc_suite() {
    let (backend, raw) = s3_backend().await;
    run_gc_suite(backend).await;
    assert_no_hidden_objects(&raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_the_gc_suite() {
    run_gc_suite(Arc::new(MemoryBackend::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_backend_passes_the_gc_suite() {
    let (_dir, root) = temp_root();
    let backend = FsBackend::open(&root).await.expect("open");
    run_gc_suite(Arc::new(backend)).await;
    let temps: Vec<String> = walk_disk(&root)
        .into_iter()
        .filter(|e| e.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_backend_passes_the_suite() {
    let (_dir, root) = temp_root();
    let backend = FsBackend::open(&root).await.expect("open");
    run_backend_suite_with_raw(Arc::new(backend), || walk_disk(&root)).await;
    // Everything the suite left is real content: no empty directories on disk either,
    // but for `_uploads`, which a completed upload leaves for the next one.
    for entry in walk_disk(&root) {
        let path = root.join(&entry);
        if path.is_dir() && !entry.ends_with("/_uploads") {
            let empty = std::fs::read_dir(&path).map(|mut d| d.next().is_none());
            assert_eq!(empty.ok(), Some(false), "empty directory left: {entry}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_list_hides_temp_files_and_leftover_check_sees_them() {
    let (_dir, root) = temp_root();
    let backend = FsBackend::open(&root).await.expect("open");
    backend
        .put("d/a", Bytes::from_static(b"1"))
        .await
        .expect("put");
    std::fs::write(root.join("d/.tmp-crashed"), b"partial").expect("plant temp");
    assert_eq!(backend.list("d").await, Ok(vec!["a".to_owned()]));
    let raw = walk_disk(&root);
    assert!(raw.contains(&"d/.tmp-crashed".to_owned()), "{raw:?}");
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let caught = tokio::spawn(async move {
        registry_storage::conformance::assert_no_leftovers(&backend, &raw).await;
    })
    .await;
    assert!(
        caught.is_err(),
        "the leftover check must fail on a temp file"
    );
}

#[tokio::test]
async fn fs_open_refuses_a_file_as_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let err = FsBackend::open(&file)
        .await
        .expect_err("a file is not a root");
    assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
    let key = file.display().to_string();
    assert_eq!(err.key(), key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_concurrent_pushes_of_one_blob_all_succeed() {
    let (_dir, root) = temp_root();
    let store = Store::new(Arc::new(FsBackend::open(&root).await.expect("open")));
    let content = Bytes::from(vec![7u8; 2 * 1024 * 1024 + 3]);
    let digest = Digest::of(Algorithm::Sha256, &content);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, content, digest) = (store.clone(), content.clone(), digest.clone());
        let name = if i < 4 {
            "same/repo".to_owned()
        } else {
            format!("other/r{i}")
        };
        tasks.push(tokio::spawn(async move {
            let r: RepoName = name.parse().expect("name");
            let id = UploadId::parse(&format!("u{i}")).expect("id");
            store.create_upload(&r, &id).await?;
            let mut w = store.upload_writer(&r, &id).await?;
            for chunk in content.chunks(16 * 1024) {
                w.write(content.slice_ref(chunk)).await?;
            }
            w.commit().await?;
            store.commit_upload(&r, &id, &digest).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), Ok(()));
    }
    let blob = root.join(format!(
        "v1/blobs/sha256/{}/{}/data",
        &digest.hex()[..2],
        digest.hex()
    ));
    assert_eq!(std::fs::read(blob).expect("blob on disk"), content.to_vec());
    let leftovers: Vec<String> = walk_disk(&root)
        .into_iter()
        .filter(|p| p.contains(".tmp-") || p.contains("_uploads/"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An upload left half done by a version that kept `_uploads/<id>/{data,startedat}`: not
/// found as an upload (its client starts over), and removed by the next purge, whatever
/// the cutoff, since its id carries no time.
#[tokio::test]
async fn older_uploads_are_unknown_and_purged() {
    let (_dir, root) = temp_root();
    let store = Store::new(Arc::new(FsBackend::open(&root).await.expect("open")));
    let id = "8383096f-1d43-4b9d-a3be-f3ce47e39531";
    let old = root.join("v1/repositories/team/app/_uploads").join(id);
    std::fs::create_dir_all(&old).expect("old upload dir");
    std::fs::write(old.join("data"), b"partial").expect("old data");
    std::fs::write(old.join("startedat"), br#"{"started":1}"#).expect("old startedat");
    let (repo, id) = (
        "team/app".parse::<RepoName>().expect("name"),
        UploadId::parse(id).expect("id"),
    );
    assert_eq!(store.upload_size(&repo, &id).await, Ok(None));
    assert_eq!(store.purge_uploads(0).await, Ok(vec![(repo, id)]));
    assert!(!old.exists(), "the old upload directory is gone");
}

/// `delete` prunes emptied directories while other tasks create files in them: creation
/// must retry rather than fail with "not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_pruning_races_with_creation() {
    let (_dir, root) = temp_root();
    let backend = Arc::new(FsBackend::open(&root).await.expect("open"));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let backend = backend.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let key = format!("v1/shared/dir/t{t}-{i}");
                backend.put(&key, Bytes::from_static(b"x")).await?;
                let mut w = backend.append(&format!("v1/shared/dir/w{t}")).await?;
                w.write(Bytes::from_static(b"y")).await?;
                w.commit().await?;
                backend
                    .rename(&key, &format!("v1/shared/moved/t{t}"))
                    .await?;
                backend.delete(&format!("v1/shared/moved/t{t}")).await?;
                backend.delete(&format!("v1/shared/dir/w{t}")).await?;
            }
            Ok::<(), StorageError>(())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), Ok(()));
    }
    assert_eq!(walk_disk(&root), Vec::<String>::new(), "everything pruned");
}
