//! The upload session: offsets, chunk checks and completion, as plain values.
//!
//! ```text
//!   POST ─► Open { offset: 0 }
//!             │  PATCH, Content-Range starts at offset (or absent)
//!             ├──────────────────────────────► Open { offset + n }
//!             │  PATCH, Content-Range elsewhere: 416, state unchanged
//!             │  PUT ?digest= [last chunk]
//!             ▼
//!          finish(digest) ── hash matches ──► blob committed (201)
//!             │ hash differs
//!             ▼
//!          DIGEST_INVALID, nothing stored (400)
//!   DELETE from Open ─► cancelled (204)
//! ```
//!
//! The session owns the running hash, so the offset is by construction the
//! number of bytes hashed: the server feeds [`UploadSession::absorb`] exactly
//! the bytes it wrote, and completion needs no re-read. A session that was
//! lost (a restart) is rebuilt by feeding the stored bytes again.

use crate::digest::{Algorithm, Digest};
use crate::error::{ErrorCode, RegistryError};
use crate::hasher::{BadCheckpoint, BlobHasher};
use crate::range::parse_content_range;

/// An open blob upload.
#[derive(Debug, Clone)]
pub struct UploadSession {
    hasher: BlobHasher,
}

/// What the headers of one chunk promise, checked before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Where the chunk starts (always the session's offset).
    pub start: u64,
    /// How many bytes the headers announce, if they say.
    pub expected_len: Option<u64>,
}

impl ChunkPlan {
    /// Checks the bytes actually received against what was announced.
    pub fn check_received(&self, received: u64) -> Result<(), RegistryError> {
        match self.expected_len {
            Some(expected) if expected != received => {
                Err(RegistryError::new(ErrorCode::SizeInvalid)
                    .with_message(format!("announced {expected} bytes, received {received}")))
            }
            _ => Ok(()),
        }
    }
}

impl UploadSession {
    /// A new, empty session hashing with `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        UploadSession {
            hasher: BlobHasher::new(algorithm),
        }
    }

    /// The session as bytes to save with the upload ([`BlobHasher::checkpoint`]).
    pub fn checkpoint(&self) -> Vec<u8> {
        self.hasher.checkpoint()
    }

    /// A session from [`UploadSession::checkpoint`].
    pub fn restore(checkpoint: &[u8]) -> Result<Self, BadCheckpoint> {
        BlobHasher::restore(checkpoint).map(|hasher| UploadSession { hasher })
    }

    /// Bytes received so far; the next chunk must start here.
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// The algorithm the running hash uses.
    pub fn algorithm(&self) -> Algorithm {
        self.hasher.algorithm()
    }

    /// Checks a chunk's `Content-Range` and `Content-Length` before any of
    /// its bytes are read. Without `Content-Range` the chunk is appended at
    /// the current offset, as docker and crane send it.
    pub fn begin_chunk(
        &self,
        content_range: Option<&str>,
        content_length: Option<u64>,
    ) -> Result<ChunkPlan, RegistryError> {
        let offset = self.offset();
        let Some(raw) = content_range else {
            return Ok(ChunkPlan {
                start: offset,
                expected_len: content_length,
            });
        };
        let range = parse_content_range(raw).map_err(|_| {
            RegistryError::new(ErrorCode::BlobUploadInvalid)
                .with_message(format!("malformed Content-Range {raw:?}"))
        })?;
        if range.start != offset {
            return Err(RegistryError::new(ErrorCode::BlobUploadInvalid)
                .with_status(416)
                .with_message(format!(
                    "chunk starts at {} but the upload is at offset {offset}",
                    range.start
                )));
        }
        if let Some(len) = content_length {
            if len != range.len() {
                return Err(
                    RegistryError::new(ErrorCode::SizeInvalid).with_message(format!(
                        "Content-Range covers {} bytes but Content-Length is {len}",
                        range.len()
                    )),
                );
            }
        }
        Ok(ChunkPlan {
            start: offset,
            expected_len: Some(range.len()),
        })
    }

    /// Feeds bytes that were just written to storage.
    pub fn absorb(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Completes the upload: the content must hash to `expected`.
    ///
    /// The caller must have built the session with `expected.algorithm()`
    /// (see [`UploadSession::algorithm`]); a different algorithm is reported
    /// as a mismatch rather than silently accepted.
    pub fn finish(self, expected: &Digest) -> Result<Digest, RegistryError> {
        self.hasher.verify(expected).map_err(|m| {
            RegistryError::new(ErrorCode::DigestInvalid)
                .with_message(format!(
                    "content hashes to {}, not {}",
                    m.actual, m.expected
                ))
                .with_detail(serde_json::json!({ "expected": m.expected, "actual": m.actual }))
        })
    }
}

/// The `Range` header value for an upload holding `size` bytes.
///
/// The spec's form is `0-<last offset>`; an empty upload is sent as `0-0`,
/// as the reference registry does and clients expect.
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_with(bytes: &[u8]) -> UploadSession {
        let mut s = UploadSession::new(Algorithm::Sha256);
        s.absorb(bytes);
        s
    }

    #[test]
    fn chunks_must_start_at_the_offset() {
        let s = session_with(b"abcd");
        assert_eq!(
            s.begin_chunk(Some("4-7"), Some(4)),
            Ok(ChunkPlan {
                start: 4,
                expected_len: Some(4)
            })
        );
        let err = s.begin_chunk(Some("0-3"), Some(4)).unwrap_err();
        assert_eq!((err.code, err.status), (ErrorCode::BlobUploadInvalid, 416));
        let err = s.begin_chunk(Some("8-9"), None).unwrap_err();
        assert_eq!(err.status, 416);
    }

    #[test]
    fn headers_must_agree() {
        let s = session_with(b"");
        let err = s.begin_chunk(Some("0-9"), Some(5)).unwrap_err();
        assert_eq!(err.code, ErrorCode::SizeInvalid);
        let err = s.begin_chunk(Some("nonsense"), Some(5)).unwrap_err();
        assert_eq!((err.code, err.status), (ErrorCode::BlobUploadInvalid, 400));
        let plan = s.begin_chunk(None, None).unwrap();
        assert_eq!(plan.expected_len, None);
        assert!(plan.check_received(123).is_ok());
        let plan = s.begin_chunk(None, Some(3)).unwrap();
        assert_eq!(
            plan.check_received(2).unwrap_err().code,
            ErrorCode::SizeInvalid
        );
    }

    #[test]
    fn finish_verifies_the_digest() {
        let s = session_with(b"hello world");
        let good = Digest::of(Algorithm::Sha256, b"hello world");
        assert_eq!(s.clone().finish(&good), Ok(good));
        let err = s.finish(&Digest::of(Algorithm::Sha256, b"x")).unwrap_err();
        assert_eq!(err.code, ErrorCode::DigestInvalid);
        assert!(err.detail.is_some());
    }

    #[test]
    fn finish_with_another_algorithm_is_a_mismatch() {
        let s = session_with(b"abc");
        let err = s
            .finish(&Digest::of(Algorithm::Sha512, b"abc"))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::DigestInvalid);
    }

    #[test]
    fn range_header_forms() {
        assert_eq!(range_header(0), "0-0");
        assert_eq!(range_header(1), "0-0");
        assert_eq!(range_header(100), "0-99");
    }
}
