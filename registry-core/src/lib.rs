//! The protocol core of an OCI Distribution registry, without IO.
//!
//! This crate never touches a socket, a file, a clock or a random number
//! generator: it takes values (a method and a path, a header, a byte slice,
//! the answer to "does this blob exist?") and returns values (a typed route,
//! a verified digest, a validated manifest, an error code). The server crate
//! does the IO and drives these types; tests drive them without sockets.
//!
//! # Layout
//! - [`digest`]: `Digest` and `Algorithm`, built only by parsing.
//! - [`hasher`]: `BlobHasher`, the streaming hash every pushed byte goes through.
//! - [`name`]: repository names, tags and references, to the spec's grammar.
//! - [`route`]: method + path + query to a typed `Route`, and URLs back.
//! - [`range`]: `Content-Range` and `Range` headers.
//! - [`upload`]: the upload-session state machine.
//! - [`manifest`]: manifest and index validation, descriptors, referrers.
//! - [`pagination`]: `n` / `last` / `Link` for tags and the catalog.
//! - [`error`]: the spec's error codes, one table, and the JSON error body.
//! - [`gc`]: retention policies, the mark of garbage collection, storage use.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod error;
pub mod gc;
pub mod hasher;
pub mod manifest;
pub mod name;
pub mod pagination;
pub mod range;
pub mod route;
pub mod upload;

pub use digest::{Algorithm, Digest, DigestError};
pub use error::{ErrorCode, RegistryError};
pub use hasher::{BadCheckpoint, BlobHasher, DigestMismatch};
pub use name::{Reference, RepoName, Tag};
pub use route::{Method, Route, UploadId};
