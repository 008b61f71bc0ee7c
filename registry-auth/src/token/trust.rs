//! The root bundle (`auth.token.rootcertbundle`) and how a token's signing
//! key is found in it, as Distribution does:
//!
//! - `x5c` in the header: the first certificate is the signer's, the rest
//!   intermediates; the chain must lead to a bundle certificate and every
//!   certificate be valid at the time of the check. The key of the first
//!   certificate signed the token. Any extended key usage is accepted (Go's
//!   `ExtKeyUsageAny`, which Distribution asks for).
//! - otherwise `kid`: the libtrust key ID of a bundle certificate's public
//!   key ([`key_id`]); that certificate's key signed the token.
//!
//! `x5c` wins when both are present, as in Distribution.

use std::collections::HashMap;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use sha2::{Digest as _, Sha256};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::jws::Jws;
use super::verify::TokenError;

/// Why a root bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The PEM text is broken.
    #[error("not a PEM file of certificates: {0}")]
    Pem(String),
    /// No `CERTIFICATE` block at all.
    #[error("holds no certificate")]
    Empty,
    /// A block is not an X.509 certificate webpki can read.
    #[error("certificate {index} (0-based) cannot be parsed: {reason}")]
    Certificate {
        /// Position in the file.
        index: usize,
        /// webpki's reason.
        reason: String,
    },
}

/// The certificates tokens are trusted through.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    /// libtrust key ID to index in `certs`.
    key_ids: HashMap<String, usize>,
}

impl TrustBundle {
    /// Reads a PEM bundle: one or more `CERTIFICATE` blocks (other blocks
    /// are skipped).
    pub fn from_pem(pem: &[u8]) -> Result<TrustBundle, BundleError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BundleError::Pem(e.to_string()))?;
        if certs.is_empty() {
            return Err(BundleError::Empty);
        }
        let mut anchors = Vec::with_capacity(certs.len());
        let mut key_ids = HashMap::new();
        for (index, der) in certs.iter().enumerate() {
            let bad = |e: webpki::Error| BundleError::Certificate {
                index,
                reason: format!("{e:?}"),
            };
            anchors.push(
                webpki::anchor_from_trusted_cert(der)
                    .map_err(bad)?
                    .to_owned(),
            );
            let cert = EndEntityCert::try_from(der).map_err(bad)?;
            key_ids.insert(key_id(&cert.subject_public_key_info()), index);
        }
        Ok(TrustBundle {
            certs,
            anchors,
            key_ids,
        })
    }

    /// How many certificates the bundle holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Never true for a bundle that loaded.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The libtrust key IDs of the bundle's keys, for logs and issuers'
    /// configuration.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.key_ids.keys().map(String::as_str)
    }

    /// The DER certificate whose key must have signed `jws`, checked as the
    /// module docs say at `now` (seconds since the Unix epoch).
    pub(crate) fn signer(&self, jws: &Jws<'_>, now: u64) -> Result<Vec<u8>, TokenError> {
        if let Some((leaf, intermediates)) = jws.x5c.split_first() {
            self.verify_chain(leaf, intermediates, now)?;
            return Ok(leaf.clone());
        }
        let Some(kid) = &jws.kid else {
            return Err(TokenError::NoSigningKey);
        };
        self.key_ids
            .get(kid)
            .map(|i| self.certs[*i].to_vec())
            .ok_or_else(|| TokenError::UnknownKeyId(kid.clone()))
    }

    fn verify_chain(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        now: u64,
    ) -> Result<(), TokenError> {
        let untrusted = |e: webpki::Error| TokenError::UntrustedChain(format!("{e:?}"));
        let leaf_der = CertificateDer::from(leaf);
        let cert = EndEntityCert::try_from(&leaf_der).map_err(untrusted)?;
        if self.certs.iter().any(|c| c.as_ref() == leaf) {
            // A bundle certificate signing itself: trusted as it is (Go's
            // verifier accepts a root as its own chain; webpki refuses a CA
            // certificate as an end entity). Its validity still counts.
            return check_validity(&cert, leaf, now);
        }
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
            AnyUsage,
            None,
            None,
        )
        .map(drop)
        .map_err(untrusted)
    }
}

/// A bundle certificate used as the signer: only its validity period is
/// left to check; webpki checks it when the certificate anchors a chain, so
/// anchor it to itself.
fn check_validity(cert: &EndEntityCert<'_>, der: &[u8], now: u64) -> Result<(), TokenError> {
    let untrusted = |e: webpki::Error| TokenError::UntrustedChain(format!("{e:?}"));
    let own = CertificateDer::from(der);
    let anchor = webpki::anchor_from_trusted_cert(&own).map_err(untrusted)?;
    // A throwaway chain check of the certificate against itself runs webpki's
    // time check; CaUsedAsEndEntity is expected and means "valid otherwise".
    match cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        AnyUsage,
        None,
        None,
    ) {
        Ok(_) | Err(webpki::Error::CaUsedAsEndEntity) => Ok(()),
        Err(e) => Err(untrusted(e)),
    }
}

/// Any extended key usage, or none: what Distribution asks of token
/// certificates (`x509.ExtKeyUsageAny`).
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // Only a malformed extension is refused.
        for id in iter {
            id?;
        }
        Ok(())
    }
}

/// The libtrust key ID of a public key, as Distribution names bundle keys
/// for `kid`: SHA-256 of the DER SubjectPublicKeyInfo, its first 240 bits in
/// base32 (RFC 4648, upper case, no padding), in groups of four joined by
/// `:`, e.g. `PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6`.
pub fn key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = Sha256::digest(spki_der);
    // 30 bytes = 240 bits = 48 base32 digits, no padding.
    let mut digits = String::with_capacity(48 + 11);
    for chunk in hash[..30].chunks(5) {
        let n = chunk.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
        for shift in (0..8).rev() {
            if digits.len() % 5 == 4 {
                digits.push(':');
            }
            digits.push(char::from(ALPHABET[((n >> (shift * 5)) & 31) as usize]));
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::test_issuer::{Issuer, KeyKind};

    #[test]
    fn key_id_matches_libtrust() {
        // Python: base64.b32encode(hashlib.sha256(b"").digest()[:30])
        // is 4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CS.
        assert_eq!(
            key_id(b""),
            "4OYM:IQUY:7QOB:JGX3:6TEJ:S35Z:EQT2:4QPE:MSNZ:GTFE:SWMR:W6CS"
        );
        let id = key_id(b"any key");
        assert_eq!(id.len(), 59);
        assert_eq!(id.split(':').count(), 12);
    }

    #[test]
    fn bundle_loads_and_names_its_keys() {
        let issuer = Issuer::new(KeyKind::Es256);
        let bundle = TrustBundle::from_pem(issuer.root_pem().as_bytes()).unwrap();
        assert_eq!(bundle.len(), 1);
        assert_eq!(bundle.key_ids().collect::<Vec<_>>(), [issuer.root_kid()]);
    }

    #[test]
    fn bad_bundles() {
        assert_eq!(TrustBundle::from_pem(b"").unwrap_err(), BundleError::Empty);
        assert_eq!(
            TrustBundle::from_pem(b"just text\n").unwrap_err(),
            BundleError::Empty
        );
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TrustBundle::from_pem(junk.as_bytes()).unwrap_err(),
            BundleError::Certificate { index: 0, .. }
        ));
    }
}
