//! [`TokenVerifier`]: one token in, its grants or the reason out.
//!
//! The checks run in this order, and the claims are parsed only once the
//! signature holds, so nothing unauthenticated is ever interpreted beyond
//! the header:
//!
//! ```text
//! parse (3 parts, JSON header, alg allowed) ─> signing key (x5c chain | kid)
//!   ─> signature ─> claims JSON ─> iss == issuer ─> aud ∋ service
//!   ─> now <= exp + 60 s ─> now >= nbf - 60 s ─> VerifiedToken
//! ```
//!
//! The 60 s leeway on `exp` and `nbf` is Distribution's (`token.Leeway`),
//! for clock skew between token server and registry.

use rustls_pki_types::CertificateDer;
use webpki::EndEntityCert;

use super::claims::{Claims, VerifiedToken};
use super::jws::Jws;
use super::trust::TrustBundle;

/// Clock skew tolerated on `exp` and `nbf`, in seconds (Distribution's).
pub const LEEWAY_SECS: i64 = 60;

/// Why a token was refused. Clients only ever see `invalid_token`; the
/// variant goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS with a JSON header, or claims that are not JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// An `alg` this registry does not accept (`none`, `HS256`, ...).
    #[error("signature algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// Neither `x5c` nor `kid` in the header.
    #[error("the token names no signing key (no x5c, no kid)")]
    NoSigningKey,
    /// `kid` names no key of the root bundle.
    #[error("key ID {0:?} is not a key of the root bundle")]
    UnknownKeyId(String),
    /// The `x5c` chain does not lead to the bundle, or a certificate in it
    /// is not valid now.
    #[error("certificate chain not trusted: {0}")]
    UntrustedChain(String),
    /// The signature does not verify with the signing key.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("issuer {0:?} is not trusted")]
    Issuer(String),
    /// `aud` does not name this service.
    #[error("audience does not include this service")]
    Audience,
    /// Past `exp` (plus leeway).
    #[error("expired at {exp} (now {now})")]
    Expired {
        /// `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// Before `nbf` (minus leeway).
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid {
        /// `nbf`.
        nbf: i64,
        /// The time of the check.
        now: i64,
    },
}

/// Verifies tokens for one service from one issuer, against one bundle.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    issuer: String,
    service: String,
    bundle: TrustBundle,
}

impl TokenVerifier {
    /// Tokens must say `iss: issuer`, name `service` in `aud`, and be signed
    /// by a key `bundle` vouches for.
    pub fn new(
        issuer: impl Into<String>,
        service: impl Into<String>,
        bundle: TrustBundle,
    ) -> TokenVerifier {
        TokenVerifier {
            issuer: issuer.into(),
            service: service.into(),
            bundle,
        }
    }

    /// The service tokens must be for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Checks `token` at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        let jws = Jws::parse(token)?;
        let signer = self.bundle.signer(&jws, now)?;
        let signer = CertificateDer::from(signer);
        let cert = EndEntityCert::try_from(&signer)
            .map_err(|e| TokenError::UntrustedChain(format!("{e:?}")))?;
        let signature = jws
            .alg
            .signature_der(&jws.signature)
            .ok_or(TokenError::BadSignature)?;
        cert.verify_signature(jws.alg.webpki(), jws.signing_input, &signature)
            .map_err(|_| TokenError::BadSignature)?;

        let claims: Claims = serde_json::from_slice(&jws.claims).map_err(|_| {
            TokenError::Malformed("claims are not a JSON object of the right types")
        })?;
        if claims.iss != self.issuer {
            return Err(TokenError::Issuer(claims.iss));
        }
        if !claims.aud.contains(&self.service) {
            return Err(TokenError::Audience);
        }
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if now < claims.nbf.saturating_sub(LEEWAY_SECS) {
            return Err(TokenError::NotYetValid {
                nbf: claims.nbf,
                now,
            });
        }
        Ok(VerifiedToken {
            grants: claims.grants(),
            subject: claims.sub,
            expires: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests;
