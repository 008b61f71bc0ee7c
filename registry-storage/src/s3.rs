//! The S3 backend: objects in an S3 bucket (AWS, Ceph RADOS Gateway, MinIO, ...).
//!
//! - [`client`]: `S3Client`, the low-level S3 operations the backend is written over.

pub mod client;
