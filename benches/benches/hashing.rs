//! The streaming blob hasher, the hot path of every push: the same 64 MiB
//! fed in chunks from 4 KiB to 1 MiB, against one-shot `sha2` over the
//! whole buffer. The ratio is the cost of streaming.
//!
//! On a shared machine the criterion figures drift with the neighbours' load,
//! so after them the bench also prints the ratio measured interleaved: one-shot
//! and 64 KiB streaming alternate, and the median of the pairs is reported.

use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
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

/// One-shot and 64 KiB streaming, alternated (each goes first in half of the pairs);
/// prints the median throughput ratio.
fn interleaved_ratio() {
    let data = &data()[..16 << 20];
    let one_shot = || {
        let t = Instant::now();
        std::hint::black_box(sha2::Sha256::digest(data));
        t.elapsed()
    };
    let streaming = || {
        let t = Instant::now();
        let mut hasher = BlobHasher::new(Algorithm::Sha256);
        for part in data.chunks(64 << 10) {
            hasher.update(part);
        }
        std::hint::black_box(hasher.finish());
        t.elapsed()
    };
    let mut ratios: Vec<f64> = (0..61)
        .map(|i| {
            let (o, s) = if i % 2 == 0 {
                let o = one_shot();
                (o, streaming())
            } else {
                let s = streaming();
                (one_shot(), s)
            };
            o.as_secs_f64() / s.max(Duration::from_nanos(1)).as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "blob_hasher: streaming (64 KiB updates) / one-shot throughput over 16 MiB, \
         interleaved, median of {} pairs: {:.3}",
        ratios.len(),
        ratios[ratios.len() / 2]
    );
}

criterion_group!(benches, streaming);

fn main() {
    benches();
    // Only when benchmarking (`cargo bench`), not when `cargo test` runs the bench once.
    if std::env::args().any(|a| a == "--bench") {
        interleaved_ratio();
    }
    Criterion::default().configure_from_args().final_summary();
}
