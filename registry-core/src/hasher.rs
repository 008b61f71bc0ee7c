//! The streaming blob hasher: the hot path of every push.
//!
//! The server feeds it exactly the bytes it writes to storage, in whatever
//! chunks the network delivers, and compares the result with the digest the
//! client claims. It never allocates per update.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

use crate::digest::{Algorithm, Digest};

/// Incremental hash of a blob. Cloning snapshots the state, which is how an
/// upload session keeps its hash between two `PATCH` requests.
#[derive(Clone)]
pub struct BlobHasher {
    state: State,
    len: u64,
}

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl std::fmt::Debug for BlobHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobHasher")
            .field("algorithm", &self.algorithm())
            .field("len", &self.len)
            .finish()
    }
}

/// A [`BlobHasher::checkpoint`] that cannot be restored: another format, another
/// version, or damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable hash checkpoint")]
pub struct BadCheckpoint;

/// First byte of a checkpoint: its format, so a later one can change it.
const CHECKPOINT_V1: u8 = 1;

/// The bytes hashed do not match the expected digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMismatch {
    /// What the client said the content hashes to.
    pub expected: Digest,
    /// What the content actually hashes to.
    pub actual: Digest,
}

impl BlobHasher {
    /// A hasher for `algorithm` that has seen no bytes.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
        };
        BlobHasher { state, len: 0 }
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no byte has been hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Feeds the next bytes of the blob.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        match self.state {
            State::Sha256(h) => Digest::from_raw(Algorithm::Sha256, &h.finalize()),
            State::Sha512(h) => Digest::from_raw(Algorithm::Sha512, &h.finalize()),
        }
    }

    /// The hash state as bytes: format, algorithm, length hashed, and the hash function's
    /// own serialized state (its chaining values and the partial block). Saved with an
    /// upload's bytes, it lets any process or replica continue the hash where the last
    /// chunk ended, without reading the bytes again: about 120 bytes per chunk.
    pub fn checkpoint(&self) -> Vec<u8> {
        let (algorithm, state) = match &self.state {
            State::Sha256(h) => (0u8, h.serialize().to_vec()),
            State::Sha512(h) => (1u8, h.serialize().to_vec()),
        };
        let mut out = Vec::with_capacity(10 + state.len());
        out.push(CHECKPOINT_V1);
        out.push(algorithm);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&state);
        out
    }

    /// Restores a hasher from [`BlobHasher::checkpoint`].
    pub fn restore(checkpoint: &[u8]) -> Result<Self, BadCheckpoint> {
        let [CHECKPOINT_V1, algorithm, rest @ ..] = checkpoint else {
            return Err(BadCheckpoint);
        };
        let (len, state) = rest.split_first_chunk::<8>().ok_or(BadCheckpoint)?;
        let len = u64::from_le_bytes(*len);
        let state = match algorithm {
            0 => State::Sha256(deserialize(state)?),
            1 => State::Sha512(deserialize(state)?),
            _ => return Err(BadCheckpoint),
        };
        Ok(BlobHasher { state, len })
    }

    /// Finishes and compares with `expected`; the only way an upload may
    /// become a blob.
    pub fn verify(self, expected: &Digest) -> Result<Digest, DigestMismatch> {
        let actual = self.finish();
        if &actual == expected {
            Ok(actual)
        } else {
            Err(DigestMismatch {
                expected: expected.clone(),
                actual,
            })
        }
    }
}

/// One hash function's state from its serialized bytes.
fn deserialize<H: SerializableState>(bytes: &[u8]) -> Result<H, BadCheckpoint> {
    let state = SerializedState::<H>::try_from(bytes).map_err(|_| BadCheckpoint)?;
    H::deserialize(&state).map_err(|_| BadCheckpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_chunking_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                        cuts in proptest::collection::vec(any::<usize>(), 0..16),
                                        sha512 in any::<bool>()) {
            let alg = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            points.sort_unstable();
            let mut hasher = BlobHasher::new(alg);
            let mut start = 0;
            for p in points.into_iter().chain(std::iter::once(data.len())) {
                hasher.update(&data[start..p]);
                start = p;
            }
            prop_assert_eq!(hasher.len(), data.len() as u64);
            prop_assert_eq!(hasher.finish(), Digest::of(alg, &data));
        }
    }

    proptest! {
        #[test]
        fn a_restored_checkpoint_continues_the_hash(data in proptest::collection::vec(any::<u8>(), 0..600),
                                                    cut in any::<usize>(),
                                                    sha512 in any::<bool>()) {
            let alg = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let cut = cut % (data.len() + 1);
            let mut first = BlobHasher::new(alg);
            first.update(&data[..cut]);
            let mut second = BlobHasher::restore(&first.checkpoint()).expect("restore");
            prop_assert_eq!(second.len(), cut as u64);
            prop_assert_eq!(second.algorithm(), alg);
            second.update(&data[cut..]);
            prop_assert_eq!(second.finish(), Digest::of(alg, &data));
        }
    }

    #[test]
    fn damaged_checkpoints_are_refused() {
        let mut h = BlobHasher::new(Algorithm::Sha256);
        h.update(b"hello");
        let good = h.checkpoint();
        assert!(BlobHasher::restore(&good).is_ok());
        for bad in [&[][..], &good[..good.len() - 1], &[2u8, 0, 0][..]] {
            assert_eq!(BlobHasher::restore(bad).err(), Some(BadCheckpoint));
        }
        let mut other_alg = good.clone();
        other_alg[1] = 7;
        assert_eq!(BlobHasher::restore(&other_alg).err(), Some(BadCheckpoint));
    }

    #[test]
    fn verify_reports_both_digests() {
        let mut h = BlobHasher::new(Algorithm::Sha256);
        h.update(b"hello");
        let wrong = Digest::of(Algorithm::Sha256, b"world");
        let err = h.clone().verify(&wrong).unwrap_err();
        assert_eq!(err.expected, wrong);
        assert_eq!(err.actual, Digest::of(Algorithm::Sha256, b"hello"));
        assert!(h.verify(&Digest::of(Algorithm::Sha256, b"hello")).is_ok());
    }
}
