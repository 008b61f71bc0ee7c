//! The two questions the server asks: who is this ([`Authenticator`]) and may
//! they do this ([`Authorizer`]).
//!
//! Both are synchronous on purpose. Authentication is CPU-bound (bcrypt takes
//! milliseconds by design), not IO-bound, so an `async fn` would only hide a
//! blocking call inside the executor; the server instead runs
//! `authenticate` on its blocking pool. Authorization is a pure decision and
//! cheap. Both are object-safe so the server can hold `Arc<dyn ...>` chosen
//! at start-up.

use registry_core::RepoName;

use crate::credentials::Credentials;
use crate::scope::{Action, Challenge, Identity, Refusal};

/// Turns the credentials of a request (if any) into an [`Identity`].
///
/// May block (bcrypt): the server calls it on its blocking pool.
pub trait Authenticator: Send + Sync + std::fmt::Debug + 'static {
    /// Establishes who is asking. `credentials` is `None` when the request
    /// had no usable `Authorization: Basic` header.
    ///
    /// A refusal is rendered as `401` with its challenge; it is not an
    /// internal error and carries no detail for the client.
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal>;

    /// The answer when it needs no slow work: no credentials to check, or a
    /// credential verified recently (see
    /// [`CachingAuthenticator`](crate::CachingAuthenticator)). `None` means
    /// "call [`Authenticator::authenticate`]", on the blocking pool. Must
    /// never block; must agree with `authenticate` whenever it answers.
    ///
    /// The default has no fast path.
    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        let _ = credentials;
        None
    }

    /// Verifies an `Authorization: Bearer` token. `None` (the default):
    /// this authenticator takes no bearer tokens, and the request is
    /// treated as one without credentials. Must not block.
    fn authenticate_bearer(&self, token: &str) -> Option<Result<Identity, Refusal>> {
        let _ = token;
        None
    }

    /// The challenge to send with a 401 (`None`: this authenticator never
    /// refuses). Also what to send when authorization denies an anonymous
    /// identity: a 401 with a challenge tells the client to log in, where a
    /// 403 would not.
    fn challenge(&self) -> Option<Challenge>;
}

/// Decides whether an [`Identity`] may perform an [`Action`] on a
/// repository.
pub trait Authorizer: Send + Sync + std::fmt::Debug + 'static {
    /// `true` to allow. `repository` is `None` for registry-wide routes (the
    /// catalog, the `/v2/` version check).
    fn authorize(&self, identity: &Identity, repository: Option<&RepoName>, action: Action)
        -> bool;
}

/// A shared authenticator is an authenticator: lets one be wrapped (by a
/// cache) and reloaded (by its owner) at once.
impl<T: Authenticator + ?Sized> Authenticator for std::sync::Arc<T> {
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        (**self).authenticate(credentials)
    }

    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        (**self).authenticate_cached(credentials)
    }

    fn authenticate_bearer(&self, token: &str) -> Option<Result<Identity, Refusal>> {
        (**self).authenticate_bearer(token)
    }

    fn challenge(&self) -> Option<Challenge> {
        (**self).challenge()
    }
}
