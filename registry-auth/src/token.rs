//! Bearer tokens from a team's own token server (docker_auth, GitLab,
//! Harbor-style issuers), checked the way CNCF Distribution 2.8.2's
//! `auth.token` checks them.
//!
//! Docker's token protocol: the registry answers a request without a good
//! token with `401` and a `Bearer` challenge naming the token server
//! (`realm`), itself (`service`) and what the request needs (`scope`); the
//! client asks the token server, which authenticates the user and signs a
//! JWT granting some of that scope; the client retries with
//! `Authorization: Bearer <jwt>`. The registry never talks to the token
//! server: it trusts tokens signed by a key its root bundle vouches for.
//!
//! ```text
//!  compact JWS ──> jws::Jws::parse ──> alg allowed? ──> trust: signing key
//!                                                        (x5c chain to the bundle,
//!                                                         or kid of a bundle key)
//!        ──> signature ──> claims: iss, aud, exp/nbf (60 s leeway) ──> Grants
//! ```
//!
//! Like the rest of this crate it never touches a socket and never reads a
//! clock: [`TokenVerifier::verify`] takes the time as a parameter; only
//! [`TokenAuthenticator`] asks the system clock, once per request.
//!
//! Deliberately not supported: the `jwk` header (a key embedded in the
//! token, which Distribution accepts when it is a bundle key or carries an
//! `x5c` of its own; issuers in the field send `x5c` or `kid`), `ES512`
//! (ring has no P-521), and `HS*`/`none` (a shared secret or no signature
//! would let anyone who sees the configuration, or anyone at all, mint
//! tokens).
//!
//! # Layout
//! - [`jws`]: the compact serialization and its header; the allowed `alg`s.
//! - [`trust`]: the root bundle, libtrust key IDs, the signing key of a token.
//! - [`claims`]: the claim set and the grants of its `access` claim.
//! - [`verify`]: [`TokenVerifier`], the order of the checks, [`TokenError`].
//! - [`auth`]: [`TokenAuthenticator`] and [`TokenAuthorizer`], the crate's
//!   traits over a verifier.
//! - `test_issuer` (tests and the `test-issuer` feature only): a token
//!   server's keys, certificates and signed tokens.

pub mod auth;
pub mod claims;
pub mod jws;
pub mod trust;
pub mod verify;

pub use auth::{TokenAuthenticator, TokenAuthorizer};
pub use claims::{Grants, VerifiedToken};
pub use jws::Alg;
pub use trust::{key_id, BundleError, TrustBundle};
pub use verify::{TokenError, TokenVerifier, LEEWAY_SECS};

#[cfg(any(test, feature = "test-issuer"))]
#[doc(hidden)]
pub mod test_issuer;
