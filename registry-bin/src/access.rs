//! Who is asking and what they may do: the glue between requests and the
//! `registry-auth` traits.
//!
//! A request without credentials is anonymous; whether that is enough is the
//! authorizer's decision (401 with a challenge when it is not). A request
//! with credentials is throttled when its address or user failed too often,
//! then verified on tokio's blocking pool, since bcrypt takes milliseconds by
//! design and must never stall the async workers. Credentials verified
//! recently are answered inline, without the pool (the cache).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use registry_auth::{Action, Authenticator, Authorizer, Credentials, Identity};
use registry_core::route::UploadStart;
use registry_core::{ErrorCode, RegistryError, RepoName, Route};

use crate::http_error::ApiError;
use crate::throttle::Throttle;

/// Authenticates the request's `Authorization` header.
pub async fn authenticate(
    authenticator: &Arc<dyn Authenticator>,
    throttle: &Throttle,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<Identity, ApiError> {
    let Some(credentials) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| Credentials::from_basic_header(v.as_bytes()))
    else {
        return Ok(Identity::Anonymous);
    };
    let Some(challenge) = authenticator.challenge() else {
        // Nothing to verify (anonymous mode): no throttle, no blocking pool.
        return authenticator
            .authenticate(Some(&credentials))
            .map_err(|r| ApiError::Unauthorized(r.challenge().clone()));
    };
    let user = credentials.username.clone();
    if let Err(wait) = throttle.check(Instant::now(), peer, Some(&user)) {
        return Err(too_many(wait.as_secs().max(1)));
    }
    if let Some(answer) = authenticator.authenticate_cached(Some(&credentials)) {
        // Verified recently: no bcrypt, no blocking pool.
        return answer.map_err(|_| ApiError::Unauthorized(challenge));
    }
    let authenticator = Arc::clone(authenticator);
    let verified =
        tokio::task::spawn_blocking(move || authenticator.authenticate(Some(&credentials)))
            .await
            .map_err(|e| ApiError::Internal(format!("authentication task failed: {e}")))?;
    match verified {
        Ok(identity) => {
            throttle.succeeded(&user);
            Ok(identity)
        }
        Err(_) => {
            throttle.failed(Instant::now(), peer, Some(&user));
            Err(ApiError::Unauthorized(challenge))
        }
    }
}

/// 429 TOOMANYREQUESTS with `Retry-After`.
pub fn too_many(retry_after_secs: u64) -> ApiError {
    ApiError::WithHeaders(
        RegistryError::new(ErrorCode::TooManyRequests),
        vec![("retry-after", retry_after_secs.to_string())],
    )
}

/// The action a route needs on its repository (`None` for the version check).
pub fn required_action(route: &Route) -> Option<Action> {
    Some(match route {
        Route::Base => return None,
        Route::Catalog { .. }
        | Route::TagsList { .. }
        | Route::ManifestGet { .. }
        | Route::BlobGet { .. }
        | Route::Referrers { .. } => Action::Pull,
        Route::ManifestPut { .. }
        | Route::UploadStart { .. }
        | Route::UploadPatch { .. }
        | Route::UploadPut { .. }
        | Route::UploadStatus { .. }
        | Route::UploadCancel { .. } => Action::Push,
        Route::ManifestDelete { .. } | Route::BlobDelete { .. } => Action::Delete,
        _ => Action::Delete,
    })
}

/// The authorization decision for one route, rendered as the spec asks:
/// 401 with a challenge for anonymous callers, 403 DENIED otherwise.
///
/// The version check (`GET /v2/`) is open to every authenticated user (it
/// is how clients test a login) and to anonymous callers only when the
/// policy grants them something.
pub fn authorize(
    authenticator: &dyn Authenticator,
    authorizer: &dyn Authorizer,
    identity: &Identity,
    route: &Route,
) -> Result<(), ApiError> {
    let needs = match required_action(route) {
        None if matches!(identity, Identity::User(_)) => return Ok(()),
        None => vec![(None, Action::Pull)],
        Some(action) => {
            let mut needs = vec![(route.repository(), action)];
            // A mount reads from the source repository: the caller must be
            // allowed to pull there too.
            if let Route::UploadStart {
                start:
                    UploadStart::Mount {
                        from: Some(from), ..
                    },
                ..
            } = route
            {
                needs.push((Some(from), Action::Pull));
            }
            needs
        }
    };
    if needs
        .into_iter()
        .all(|(repo, action)| authorizer.authorize(identity, repo, action))
    {
        return Ok(());
    }
    Err(denied(authenticator, identity))
}

/// Whether `identity` may pull from `repo` (catalog filtering, automatic mounts).
pub fn may_pull(authorizer: &dyn Authorizer, identity: &Identity, repo: &RepoName) -> bool {
    authorizer.authorize(identity, Some(repo), Action::Pull)
}

/// 401 with the challenge for an anonymous caller, 403 DENIED for a known one.
pub fn denied(authenticator: &dyn Authenticator, identity: &Identity) -> ApiError {
    match (identity, authenticator.challenge()) {
        (Identity::Anonymous, Some(challenge)) => ApiError::Unauthorized(challenge),
        _ => ErrorCode::Denied.into(),
    }
}
