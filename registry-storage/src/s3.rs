//! S3-compatible object storage (AWS, Ceph RADOS Gateway, MinIO, ...): [`S3Backend`] and
//! the client it sits on.
//!
//! - [`client`]: the S3 requests the backend needs, signed with `rusty-s3`, sent with
//!   `reqwest`, retried with backoff when idempotent, errors mapped to `StorageError`.
//! - `backend`: the [`crate::Backend`] trait over a bucket.
//! - `upload`: uploads as multipart uploads plus a state object any replica can continue.

pub mod client;

mod backend;
mod upload;

pub use backend::S3Backend;
