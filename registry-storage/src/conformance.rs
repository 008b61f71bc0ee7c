//! The suite every backend runs: raw `Backend` behaviour, then the `Store` semantics over
//! it, then concurrent pushes, then a check for leftovers.
//!
//! Public (but hidden from docs) so a backend in another crate, such as a future S3 one,
//! runs the very same suite: `run_backend_suite(Arc::new(MyBackend::new(..))).await` from a
//! multi-threaded `#[tokio::test]`. The backend must start empty. Failures panic with a
//! message naming the case, as test assertions do.
//!
//! The leftover check fails if, after every push, cancel and delete has finished, any key
//! component starts with `.tmp-` or any `_uploads` entry remains. `list` hides temp files,
//! so a backend with a raw view (the filesystem one: a walk of its root) passes it in
//! through [`run_backend_suite_with_raw`].
//!
//! # Layout
//! - this file: entry points, helpers, the leftover check.
//! - `backend_cases.rs`: get/put/stat/read/append/list/rename/delete and key checks.
//! - `aging_cases.rs`: modification times, the paged walk, touch, delete_if_older.
//! - `store_cases.rs`: blobs, uploads, tags, manifests.
//! - `listing_cases.rs`: referrers and the catalog (which expects every repository the
//!   earlier cases made).
//! - `concurrency.rs`: eight pushes of one blob at once.
//! - `gc_cases.rs`: garbage collection passes, on a backend of their own
//!   ([`run_gc_suite`]).

mod aging_cases;
mod backend_cases;
mod concurrency;
mod gc_cases;
mod listing_cases;
mod store_cases;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use registry_core::{Algorithm, Digest, RepoName, Tag, UploadId};

use crate::backend::{Backend, ByteStream, TEMP_PREFIX};
use crate::layout;
use crate::store::Store;

/// Runs the whole suite against an empty `backend`; panics on the first failure.
pub async fn run_backend_suite(backend: Arc<dyn Backend>) {
    run_backend_suite_with_raw(backend, Vec::new).await;
}

/// Like [`run_backend_suite`], with `raw_entries` listing everything the backend really
/// holds as `/`-separated paths relative to its root, including what `list` hides (temp
/// files), so the leftover check sees them too.
pub async fn run_backend_suite_with_raw<F>(backend: Arc<dyn Backend>, raw_entries: F)
where
    F: Fn() -> Vec<String>,
{
    let root = backend.list("").await.expect("list the root");
    assert!(
        root.is_empty(),
        "the suite needs an empty backend, found {root:?}"
    );

    backend_cases::run(&backend).await;
    aging_cases::run(&backend).await;
    let store = Store::new(backend.clone());
    store_cases::run(&store).await;
    concurrency::run(&store).await;
    assert_no_leftovers(&backend, &raw_entries()).await;
}

/// Runs the garbage collection cases against an empty `backend` of their own (the other
/// cases store bytes that are not manifests, which rightly stop every sweep); panics on
/// the first failure, then checks for leftovers.
pub async fn run_gc_suite(backend: Arc<dyn Backend>) {
    let root = backend.list("").await.expect("list the root");
    assert!(
        root.is_empty(),
        "the GC suite needs an empty backend, found {root:?}"
    );
    let store = Store::new(backend.clone());
    gc_cases::run(&store).await;
    assert_no_leftovers(&backend, &[]).await;
}

/// Fails if any temp file or upload is left (anything inside an `_uploads` prefix; the
/// prefix itself may stay, see [`Backend::rename`]), in the backend's `list` view or in
/// `raw` (entries from outside the trait, e.g. a walk of the filesystem root).
pub async fn assert_no_leftovers(backend: &Arc<dyn Backend>, raw: &[String]) {
    let mut all = walk(backend).await;
    all.extend(raw.iter().cloned());
    let leftovers: Vec<&String> = all
        .iter()
        .filter(|path| {
            let mut parts = path.split('/');
            let temp = path.split('/').any(|c| c.starts_with(TEMP_PREFIX));
            let upload = parts.any(|c| c == layout::UPLOADS) && parts.next().is_some();
            temp || upload
        })
        .collect();
    assert!(leftovers.is_empty(), "leftovers: {leftovers:?}");
}

/// Every path reachable through `list` from the root (objects and prefixes).
pub async fn walk(backend: &Arc<dyn Backend>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for name in backend.list(&prefix).await.expect("list while walking") {
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            out.push(path.clone());
            stack.push(path);
        }
    }
    out.sort();
    out
}

/// Concatenates a stream, checking that no item exceeds 1 MiB (reads are memory bounded).
async fn collect(stream: ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("read stream");
    let mut out = Vec::new();
    for chunk in chunks {
        assert!(
            chunk.len() <= 1024 * 1024,
            "read chunk of {} bytes",
            chunk.len()
        );
        out.extend_from_slice(&chunk);
    }
    out
}

/// Deterministic test bytes that differ at every offset modulo 251.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

fn repo(name: &str) -> RepoName {
    name.parse().expect("suite repository name")
}

fn tag(name: &str) -> Tag {
    name.parse().expect("suite tag")
}

fn upload(id: &str) -> UploadId {
    UploadId::parse(id).expect("suite upload id")
}
