//! The upload path in process, without HTTP: a core upload session hashing
//! what a storage writer appends, then commit under the verified digest.
//! This is what a PATCH + PUT does per byte, minus the socket.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use registry_core::upload::UploadSession;
use registry_core::{Algorithm, Digest, RepoName, UploadId};
use registry_storage::{Backend, FsBackend, MemoryBackend, Store};

const TOTAL: usize = 64 * 1024 * 1024;
const FRAME: usize = 64 * 1024;

fn push(rt: &tokio::runtime::Runtime, store: &Store, frames: &[Bytes], digest: &Digest, n: u64) {
    rt.block_on(async {
        let repo: RepoName = "bench/app".parse().unwrap_or_else(|_| unreachable!());
        let id = UploadId::parse(&format!("bench-{n}")).unwrap_or_else(|| unreachable!());
        store
            .create_upload(&repo, &id, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut session = UploadSession::new(Algorithm::Sha256);
        let mut writer = store
            .upload_writer(&repo, &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for frame in frames {
            writer
                .write(frame.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            session.absorb(frame);
        }
        writer.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let verified = session.finish(digest).unwrap_or_else(|e| panic!("{e}"));
        store
            .commit_upload(&repo, &id, &verified)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .backend()
            .delete("v1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    });
}

fn upload(c: &mut Criterion) {
    let data: Vec<u8> = (0..TOTAL).map(|i| (i as u8) ^ (i >> 11) as u8).collect();
    let digest = Digest::of(Algorithm::Sha256, &data);
    let frames: Vec<Bytes> = data.chunks(FRAME).map(Bytes::copy_from_slice).collect();
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backends: [(&str, Arc<dyn Backend>); 2] = [
        ("memory", Arc::new(MemoryBackend::new())),
        ("fs", Arc::new(FsBackend::new(dir.path()))),
    ];
    let mut group = c.benchmark_group("upload_path");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(10);
    for (name, backend) in backends {
        let store = Store::new(backend);
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                push(&rt, &store, &frames, &digest, n);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
