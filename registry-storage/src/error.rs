//! `StorageError`: the one error type of the storage boundary.
//!
//! Every variant carries the key (or path) it is about, so a log line says which object
//! failed. The server maps these to spec error codes in one place; their text is for
//! operators, never for clients.

use std::io;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The key is empty, absolute, has an empty, `.` or `..` component, or names a
    /// reserved temporary file. Keys come only from [`crate::layout`], so this is a bug.
    #[error("invalid storage key {key:?}")]
    InvalidKey {
        /// The refused key.
        key: String,
    },
    /// The object does not exist (for operations where absence is not a normal answer).
    #[error("storage object not found: {key}")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// The object exists but its content is not what the store wrote there (for example a
    /// tag file that does not hold a digest).
    #[error("corrupt storage object: {key}")]
    Corrupt {
        /// The key of the unreadable object.
        key: String,
    },
    /// The backend failed: an I/O error, a full disk (`ENOSPC`), a lost blocking task.
    #[error("storage I/O error at {key}: {source}")]
    Io {
        /// The key (or, for the root check, the path) being accessed.
        key: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The object store could not be reached or answered an error (after retries): the
    /// reason names the S3 error code and HTTP status. Clients get a 503.
    #[error("object store unavailable at {key}: {reason}")]
    Unavailable {
        /// The key (or bucket) being accessed.
        key: String,
        /// What went wrong, for operators.
        reason: String,
    },
}

impl StorageError {
    /// An I/O error at `key`.
    pub fn io(key: impl Into<String>, source: io::Error) -> StorageError {
        StorageError::Io {
            key: key.into(),
            source,
        }
    }

    /// The key (or path) this error is about.
    pub fn key(&self) -> &str {
        match self {
            StorageError::InvalidKey { key }
            | StorageError::NotFound { key }
            | StorageError::Corrupt { key }
            | StorageError::Io { key, .. }
            | StorageError::Unavailable { key, .. } => key,
        }
    }

    /// True for [`StorageError::NotFound`], so callers can branch without matching.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// Equality so tests can `assert_eq!` exact errors; `io::Error` is not comparable, so two
/// `Io` errors are equal when their keys and error kinds are.
impl PartialEq for StorageError {
    fn eq(&self, other: &StorageError) -> bool {
        match (self, other) {
            (StorageError::InvalidKey { key: a }, StorageError::InvalidKey { key: b })
            | (StorageError::NotFound { key: a }, StorageError::NotFound { key: b })
            | (StorageError::Corrupt { key: a }, StorageError::Corrupt { key: b }) => a == b,
            (StorageError::Io { key: a, source: x }, StorageError::Io { key: b, source: y }) => {
                a == b && x.kind() == y.kind()
            }
            (
                StorageError::Unavailable { key: a, reason: x },
                StorageError::Unavailable { key: b, reason: y },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_key() {
        let e = StorageError::io("v1/blobs/x", io::Error::other("disk full"));
        assert_eq!(e.to_string(), "storage I/O error at v1/blobs/x: disk full");
        assert_eq!(e.key(), "v1/blobs/x");
        let nf = StorageError::NotFound { key: "k".into() };
        assert!(nf.is_not_found());
        assert_eq!(nf, StorageError::NotFound { key: "k".into() });
        assert_ne!(nf, StorageError::Corrupt { key: "k".into() });
    }
}
