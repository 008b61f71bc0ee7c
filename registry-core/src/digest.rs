//! Content digests: `algorithm ":" encoded`, built only by parsing.
//!
//! Grammar (OCI image-spec, descriptor.md "Digests"):
//!
//! ```text
//! digest                ::= algorithm ":" encoded
//! algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
//! algorithm-component   ::= [a-z0-9]+
//! algorithm-separator   ::= [+._-]
//! encoded               ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! Of the registered algorithms, `sha256` (64 lowercase hex characters) and
//! `sha512` (128 lowercase hex characters) are supported. A digest that is
//! well formed but names another algorithm is [`DigestError::Unsupported`],
//! so the server can tell "malformed" from "not implemented".

use std::fmt;
use std::str::FromStr;

/// A hash algorithm the registry can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default and the one every client uses.
    Sha256,
    /// SHA-512, accepted since image-spec 1.1.
    Sha512,
}

impl Algorithm {
    /// The name used in digests, e.g. `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded hash.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other if valid_algorithm(other) => Err(DigestError::Unsupported),
            _ => Err(DigestError::Malformed),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a usable digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// Does not match the digest grammar, or the hex has the wrong length or case.
    Malformed,
    /// Well formed, but the algorithm is not one the registry computes.
    Unsupported,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::Malformed => f.write_str("malformed digest"),
            DigestError::Unsupported => f.write_str("unsupported digest algorithm"),
        }
    }
}

impl std::error::Error for DigestError {}

/// A validated digest such as `sha256:e3b0c442...`.
///
/// Invariant: `hex` is exactly `algorithm.hex_len()` lowercase hex characters,
/// so a digest can be used as a file name without further checks.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (lowercase hex) part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Digest of a complete byte slice, for small values such as manifests.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = crate::BlobHasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// Builds a digest from raw hash output; only the hasher does this.
    pub(crate) fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Digest {
        Digest {
            algorithm,
            hex: hex::encode(raw),
        }
    }
}

fn valid_algorithm(s: &str) -> bool {
    // algorithm-component (separator algorithm-component)*
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn valid_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, encoded) = s.split_once(':').ok_or(DigestError::Malformed)?;
        if !valid_algorithm(alg) || !valid_encoded(encoded) {
            return Err(DigestError::Malformed);
        }
        let algorithm: Algorithm = alg.parse()?;
        let lower_hex = encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if encoded.len() != algorithm.hex_len() || !lower_hex {
            return Err(DigestError::Malformed);
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_round_trip() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::of(Algorithm::Sha256, b""), d);
    }

    #[test]
    fn sha512_of_empty() {
        let d = Digest::of(Algorithm::Sha512, b"");
        assert!(d.hex().starts_with("cf83e1357eefb8bd"));
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:xyz",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:../../../../etc/passwd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\0",
            "sha256+:abc",
        ] {
            assert_eq!(
                bad.parse::<Digest>(),
                Err(DigestError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_algorithm_is_unsupported_not_malformed() {
        assert_eq!("md5:abcd".parse::<Digest>(), Err(DigestError::Unsupported));
        assert_eq!(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".parse::<Digest>(),
            Err(DigestError::Unsupported)
        );
    }
}
