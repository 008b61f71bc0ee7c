//! `ImportError`: why an import stopped. Damaged objects of the source are not errors;
//! they are skipped and reported ([`super::Skip`]).

use std::path::PathBuf;

use crate::error::StorageError;

/// Why an import could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Listing or reading the source layout failed (not a damaged object: an I/O error
    /// on a directory, say), or the source is not a Distribution storage.
    #[error("reading the source: {0}")]
    Source(StorageError),
    /// Writing this registry's storage failed (a full disk, say).
    #[error("writing this registry's storage: {0}")]
    Target(StorageError),
    /// Hard links cannot cross file systems.
    #[error("hard links need one file system, but {} and {} are on different ones", from.display(), to.display())]
    CrossDevice {
        /// The source's `docker/registry/v2` directory.
        from: PathBuf,
        /// This registry's storage root.
        to: PathBuf,
    },
}

impl PartialEq for ImportError {
    fn eq(&self, other: &ImportError) -> bool {
        match (self, other) {
            (ImportError::Source(a), ImportError::Source(b))
            | (ImportError::Target(a), ImportError::Target(b)) => a == b,
            (
                ImportError::CrossDevice { from, to },
                ImportError::CrossDevice { from: f, to: t },
            ) => from == f && to == t,
            _ => false,
        }
    }
}
