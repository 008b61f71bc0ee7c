//! The upload path in process, without a socket: the request-body loop of
//! `registry-bin` (`body::stream_into`: storage writer + core upload session) fed
//! 64 KiB frames, then commit under the verified digest. This is what a PATCH + PUT
//! does per byte, minus the network.
//!
//! - `sequential`: write a frame, then hash it, on one task (the loop before the
//!   pipelining; the reference for what overlap buys).
//! - `pipelined`: the server's loop: the writer writes batch k on the blocking pool
//!   while batch k+1 is hashed on another and frames keep arriving.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, StreamBody};
use registry_bin::body::{stream_into, BoxError, RequestBody};
use registry_core::upload::UploadSession;
use registry_core::{Algorithm, Digest, RepoName, UploadId};
use registry_storage::{Backend, FsBackend, MemoryBackend, Store};

const TOTAL: usize = 64 * 1024 * 1024;
const FRAME: usize = 64 * 1024;

#[derive(Clone, Copy)]
enum Loop {
    Sequential,
    Pipelined,
}

fn body_of(frames: &[Bytes]) -> RequestBody {
    let frames: Vec<Result<http_body::Frame<Bytes>, BoxError>> = frames
        .iter()
        .map(|f| Ok(http_body::Frame::data(f.clone())))
        .collect();
    StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
}

fn push(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    frames: &[Bytes],
    digest: &Digest,
    n: u64,
    how: Loop,
) {
    rt.block_on(async {
        let repo: RepoName = "bench/app".parse().unwrap_or_else(|_| unreachable!());
        let id = UploadId::parse(&format!("bench-{n}")).unwrap_or_else(|| unreachable!());
        store
            .create_upload(&repo, &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut session = UploadSession::new(Algorithm::Sha256);
        let mut writer = store
            .upload_writer(&repo, &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        match how {
            Loop::Sequential => {
                for frame in frames {
                    writer
                        .write(frame.clone())
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    session.absorb(frame);
                }
            }
            Loop::Pipelined => {
                let mut body = body_of(frames);
                stream_into(
                    &mut body,
                    writer.as_mut(),
                    &mut session,
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            }
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
        for (label, how) in [
            ("sequential", Loop::Sequential),
            ("pipelined", Loop::Pipelined),
        ] {
            group.bench_function(format!("{name}/{label}"), |b| {
                b.iter(|| {
                    n += 1;
                    push(&rt, &store, &frames, &digest, n, how);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
