//! Who is asking, and may they do this: authentication and authorization for
//! the registry.
//!
//! The server asks two questions per request, in this order:
//!
//! ```text
//!  Authorization header ──> Credentials::from_basic_header ──> Option<Credentials>
//!                                                                    │
//!                          Authenticator::authenticate  <────────────┘
//!                                  │
//!                Ok(Identity) ─────┴───── Err(Refusal) ──> 401 + WWW-Authenticate
//!                    │
//!  Authorizer::authorize(identity, repository, action) ──> true / false (403 DENIED)
//! ```
//!
//! This crate never touches a socket and never renders HTTP: a refusal is a
//! value ([`Refusal`], carrying the [`Challenge`] to send), and the server turns
//! it into a status code and headers in one place. The only IO is
//! [`Htpasswd::load`], which reads the file once at start-up; verification is
//! CPU-bound (bcrypt) and synchronous, so the server calls
//! [`Authenticator::authenticate`] on its blocking pool, and only when
//! [`Authenticator::authenticate_cached`] (a cache hit) has no answer.
//!
//! # Layout
//! - [`credentials`]: `Credentials` and the `Authorization: Basic` parser.
//! - [`scope`]: `Identity`, `Action`, `Challenge` and `Refusal`, the values
//!   passed between the traits and the server.
//! - [`traits`]: the `Authenticator` and `Authorizer` traits.
//! - [`anonymous`]: `Anonymous`, `AllowAll`, `AuthenticatedOnly`, the trivial
//!   policies.
//! - [`htpasswd`]: the htpasswd file (bcrypt only) and its authenticator.
//! - [`rules`]: per-repository access rules (`AccessRules`), patterns, groups.
//! - [`cache`]: `CachingAuthenticator`, bcrypt once per credential (salted
//!   SHA-256 keys, short TTL, bounded, invalidated on reload).
//! - [`hash`]: recognising the hash on an htpasswd line, and why it is refused.
//! - [`token`]: bearer tokens from an external token server (Docker's token
//!   protocol, as Distribution's `auth.token`): JWS verification against a
//!   root bundle, grants per repository.
//!
//! # Dependencies
//! Token signatures and certificate chains are checked with `ring` (through
//! `rustls-webpki`'s algorithms) and `rustls-webpki`, both already in the
//! tree through rustls: no JOSE or X.509 crate of its own. `serde_json`
//! reads the JWS header and claims.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod anonymous;
pub mod cache;
pub mod credentials;
pub mod hash;
pub mod htpasswd;
pub mod rules;
pub mod scope;
pub mod token;
pub mod traits;

pub use anonymous::{AllowAll, Anonymous, AuthenticatedOnly};
pub use cache::CachingAuthenticator;
pub use credentials::Credentials;
pub use hash::{HashKind, LineError};
pub use htpasswd::{Htpasswd, HtpasswdAuthenticator, HtpasswdError};
pub use rules::{AccessRules, Pattern, Rule, RuleError};
pub use scope::{Action, Challenge, Identity, Refusal};
pub use token::{
    BundleError, Grants, TokenAuthenticator, TokenAuthorizer, TokenError, TokenVerifier,
    TrustBundle, VerifiedToken,
};
pub use traits::{Authenticator, Authorizer};
