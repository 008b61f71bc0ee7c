//! Storage for an OCI Distribution registry: the only crate that touches bytes at rest.
//!
//! A small, storage-shaped [`Backend`] trait (whole small objects, a reader at an offset, an
//! appending writer with an explicit commit, stat, list, rename, delete) carries no HTTP types
//! and no registry semantics. The registry's semantics — a blob linked into a repository, tags,
//! manifests kept as received, upload state, referrers — are written once, in [`Store`], over
//! any backend. Every backend runs one shared [`conformance`] suite, which also fails when an
//! operation leaves temporary files or upload directories behind.
//!
//! This crate never parses HTTP, never hashes (the caller verifies digests with
//! `registry_core::BlobHasher` as it writes) and never reads the wall clock: time is a
//! parameter. The one exception is the optional metadata cache, whose TTL runs on
//! tokio's monotonic clock (paused and advanced in tests).
//!
//! # Layout
//! - [`error`]: `StorageError`, the one error type of this boundary.
//! - [`backend`]: the `Backend` and `BackendWriter` traits, `ByteStream`, key rules.
//! - [`layout`]: every key the store uses, in one place, with a tree diagram.
//! - [`store`]: `Store`, registry semantics over any backend.
//! - [`fs`]: `FsBackend`, files under a root: temp file, fsync, rename, fsync dir.
//! - [`import`]: importing a CNCF Distribution filesystem storage, verified, resumable.
//! - [`s3`]: the S3 backend; [`s3::client`] is its low-level S3 client.
//! - [`memory`]: `MemoryBackend`, a map in memory, for tests and embedders.
//! - [`conformance`]: the suite every backend runs (hidden from docs; used by tests).

//! # S3
//! The S3 client signs with `rusty-s3` (sans-IO SigV4 presigning and the XML of
//! ListObjectsV2 and multipart uploads: a multipart upload's parts live on the server and any
//! process can continue it, unlike `object_store`'s in-process multipart; its presigned GET is
//! what `storage.redirect` hands out) and sends with `reqwest`, the workspace's one HTTP client.
//! Signing reads the wall clock: the one other exception to "time is a parameter".

// Two `unsafe` blocks, reviewed: the read-only mapping of blob files in `fs/reader.rs`,
// and the `sync_file_range` call in `fs/writer.rs`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod error;
pub mod fs;
pub mod import;
pub mod layout;
pub mod memory;
pub mod s3;
pub mod store;

#[doc(hidden)]
pub mod conformance;

pub use backend::{
    check_key, Backend, BackendWriter, ByteStream, ObjectEntry, ObjectMeta, UploadStatus,
};
pub use error::StorageError;
pub use fs::FsBackend;
pub use memory::MemoryBackend;
pub use store::{
    claim_refresh, CacheConfig, Eviction, GcOptions, GcReport, Pace, Store, StoredManifest,
    TagInfo, Turn,
};
