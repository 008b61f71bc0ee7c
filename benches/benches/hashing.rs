//! The streaming blob hasher, the hot path of every push: the same 64 MiB
//! fed in chunks from 4 KiB to 1 MiB, against one-shot `sha2` over the
//! whole buffer. The ratio is the cost of streaming.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use registry_core::{Algorithm, BlobHasher};
use sha2::Digest as _;

const TOTAL: usize = 64 * 1024 * 1024;

fn data() -> Vec<u8> {
    (0..TOTAL)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 13) as u8)
        .collect()
}

fn streaming(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("blob_hasher");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(10);
    group.bench_function("sha2_one_shot", |b| b.iter(|| sha2::Sha256::digest(&data)));
    for chunk in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        group.bench_with_input(
            BenchmarkId::new("streaming_sha256", chunk),
            &chunk,
            |b, &chunk| {
                b.iter(|| {
                    let mut hasher = BlobHasher::new(Algorithm::Sha256);
                    for part in data.chunks(chunk) {
                        hasher.update(part);
                    }
                    hasher.finish()
                })
            },
        );
    }
    group.bench_function("streaming_sha512/65536", |b| {
        b.iter(|| {
            let mut hasher = BlobHasher::new(Algorithm::Sha512);
            for part in data.chunks(64 << 10) {
                hasher.update(part);
            }
            hasher.finish()
        })
    });
    group.finish();
}

criterion_group!(benches, streaming);
criterion_main!(benches);
