//! Eight clients pushing the same blob at once, into one repository and into several:
//! every push must succeed, the blob must hold the right bytes, and nothing may be left.

use bytes::Bytes;

use super::{collect, pattern, repo, sha256, upload};
use crate::store::Store;

const TASKS: usize = 8;

pub(super) async fn run(store: &Store) {
    // Large enough that the filesystem writer flushes more than once.
    let content = pattern(3 * 1024 * 1024 + 5, 42);
    let digest = sha256(&content);
    let names: Vec<String> = (0..TASKS)
        .map(|i| {
            if i % 2 == 0 {
                "conc/same".into()
            } else {
                format!("conc/r{i}")
            }
        })
        .collect();

    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (store, content, digest) = (store.clone(), content.clone(), digest.clone());
        let (r, id) = (repo(name), upload(&format!("c{i}")));
        tasks.push(tokio::spawn(async move {
            store.create_upload(&r, &id).await?;
            let mut w = store.upload_writer(&r, &id).await?;
            // Uneven frames, as a request body delivers them.
            for (from, to) in [(0, 100), (100, 70_000), (70_000, 1_600_000)] {
                w.write(content.slice(from..to)).await?;
            }
            w.write(content.slice(1_600_000..)).await?;
            w.commit().await?;
            store.commit_upload(&r, &id, &digest).await
        }));
    }
    // Manifests too: the same bytes put into one repository at once.
    let manifest = Bytes::from_static(b"{\"concurrent\":true}");
    let dm = sha256(&manifest);
    for _ in 0..TASKS {
        let (store, manifest, dm) = (store.clone(), manifest.clone(), dm.clone());
        tasks.push(tokio::spawn(async move {
            let r = repo("conc/same");
            store
                .put_manifest(&r, &dm, "application/json", manifest)
                .await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("task did not panic");
        assert!(result.is_ok(), "concurrent push {i}: {result:?}");
    }

    let len = content.len() as u64;
    assert_eq!(store.blob_size(&digest).await, Ok(Some(len)));
    let bytes = collect(store.read_blob(&digest, 0, None).await.expect("read")).await;
    assert!(bytes == content, "blob bytes after concurrent pushes");
    for name in &names {
        let r = repo(name);
        assert_eq!(
            store.repo_blob_size(&r, &digest).await,
            Ok(Some(len)),
            "{name}"
        );
        assert_eq!(store.list_uploads(&r).await, Ok(vec![]), "{name} uploads");
    }
    let got = store
        .get_manifest(&repo("conc/same"), &dm)
        .await
        .expect("get");
    assert_eq!(got.map(|m| m.bytes), Some(manifest));
}
