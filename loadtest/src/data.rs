//! Blob contents: pseudo-random bytes from a seed (incompressible, so no
//! layer of the stack can cheat on them) and their digests.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// `len` pseudo-random bytes; equal seeds give equal bytes.
pub fn random_bytes(seed: u64, len: usize) -> Bytes {
    let mut buf = vec![0u8; len];
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    let tail = words.into_remainder();
    let last = splitmix(&mut state).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    Bytes::from(buf)
}

/// One step of SplitMix64.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Bytes at the end of every [`UniqueBlobs`] blob that make it unique.
const UNIQUE_TAIL: usize = 32;

/// New blobs of one size, cheap enough to make inside a timed loop.
///
/// The client shares the server's two cores, so what it spends making blobs is taken
/// from the registry it measures. Generating and hashing the fresh layers of a pushed
/// image (1.25 MiB) cost it about 1 ms of CPU (its user time over a 6 s mixed run
/// fell from 1.40 to 0.98 s with this), 7% of a core at 70 images/s.
/// Here the body is generated and hashed once; each blob is a copy of it with its own
/// last [`UNIQUE_TAIL`] bytes (the caller's unique value, then pseudo-random bytes),
/// hashed from the saved SHA-256 state, so a blob costs one copy and the hash of its
/// tail. Every blob is still new to the registry, which receives, hashes and stores
/// all of its bytes.
pub struct UniqueBlobs {
    body: Bytes,
    body_state: Sha256,
    tail: usize,
}

impl UniqueBlobs {
    pub fn new(seed: u64, len: usize) -> UniqueBlobs {
        let tail = len.min(UNIQUE_TAIL);
        let body = random_bytes(seed, len - tail);
        let mut body_state = Sha256::new();
        body_state.update(&body);
        UniqueBlobs {
            body,
            body_state,
            tail,
        }
    }

    /// The blob for `unique` and its digest. Blobs of 8 bytes or more hold `unique`
    /// itself, so different values give different blobs.
    pub fn make(&self, unique: u64) -> (String, Bytes) {
        let mut tail = random_bytes(unique, self.tail).to_vec();
        let id = unique.to_le_bytes();
        let n = id.len().min(tail.len());
        tail[..n].copy_from_slice(&id[..n]);
        let mut blob = Vec::with_capacity(self.body.len() + tail.len());
        blob.extend_from_slice(&self.body);
        blob.extend_from_slice(&tail);
        let mut state = self.body_state.clone();
        state.update(&tail);
        let digest = format!("sha256:{}", hex::encode(state.finalize()));
        (digest, Bytes::from(blob))
    }
}

/// A Docker schema 2 image manifest for a config and layers (digest, size).
pub fn manifest(config: (&str, usize), layers: &[(String, usize)]) -> Bytes {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| {
            format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{s},"digest":"{d}"}}"#
            )
        })
        .collect();
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{}]}}"#,
        config.1,
        config.0,
        layers.join(",")
    ))
}

/// A small, unique image config.
pub fn config(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"bench":"{id}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decide_the_bytes() {
        assert_eq!(random_bytes(1, 1001), random_bytes(1, 1001));
        assert_ne!(random_bytes(1, 64), random_bytes(2, 64));
        assert_eq!(random_bytes(3, 13).len(), 13);
    }

    #[test]
    fn unique_blobs_differ_and_carry_their_digest() {
        for len in [0, 5, 32, 33, 4096] {
            let blobs = UniqueBlobs::new(7, len);
            let (d1, b1) = blobs.make(1);
            let (d2, b2) = blobs.make(2);
            assert_eq!((b1.len(), b2.len()), (len, len));
            assert_eq!(d1, digest(&b1));
            assert_eq!(d2, digest(&b2));
            if len >= 8 {
                assert_ne!(d1, d2);
                assert_ne!(blobs.make(1 << 40).0, blobs.make(1 << 41).0);
            }
            assert_eq!(blobs.make(1), (d1, b1));
        }
    }

    #[test]
    fn manifest_is_json() {
        let m = manifest(("sha256:c", 2), &[("sha256:l".to_owned(), 5)]);
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap_or_default();
        assert_eq!(v["layers"][0]["size"], 5);
        assert_eq!(v["config"]["digest"], "sha256:c");
    }
}
