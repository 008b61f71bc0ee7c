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
//! - [`memory`]: `MemoryBackend`, a map in memory, for tests and embedders.
//! - [`conformance`]: the suite every backend runs (hidden from docs; used by tests).

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
pub mod store;

#[doc(hidden)]
pub mod conformance;

pub use backend::{check_key, Backend, BackendWriter, ByteStream, ObjectEntry, ObjectMeta};
pub use error::StorageError;
pub use fs::FsBackend;
pub use memory::MemoryBackend;
pub use store::{claim_refresh, CacheConfig, GcOptions, GcReport, Store, StoredManifest, TagInfo};
