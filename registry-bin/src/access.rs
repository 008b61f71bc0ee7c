//! Who is asking and what they may do: the glue between requests and the
//! `registry-auth` traits.
//!
//! Authentication may block (bcrypt takes milliseconds by design), so it runs
//! on tokio's blocking pool and never stalls the async workers; answers that
//! need no bcrypt (a cached credential, no credentials) come back inline.

use std::sync::Arc;

use http::HeaderMap;
use registry_auth::{Action, Authenticator, Authorizer, Credentials, Identity, Refusal};
use registry_core::route::UploadStart;
use registry_core::{ErrorCode, RepoName, Route};

use crate::http_error::ApiError;

/// Authenticates the request's `Authorization` header.
pub async fn authenticate(
    authenticator: &Arc<dyn Authenticator>,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    let credentials = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| Credentials::from_basic_header(v.as_bytes()));
    if let Some(answer) = authenticator.authenticate_cached(credentials.as_ref()) {
        // No credentials, anonymous mode or a cached credential: no bcrypt.
        return answer.map_err(refusal);
    }
    if authenticator.challenge().is_none() {
        // Nothing to verify: no need to hop to the blocking pool.
        return authenticator
            .authenticate(credentials.as_ref())
            .map_err(refusal);
    }
    let authenticator = Arc::clone(authenticator);
    tokio::task::spawn_blocking(move || authenticator.authenticate(credentials.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(format!("authentication task failed: {e}")))?
        .map_err(refusal)
}

fn refusal(refusal: Refusal) -> ApiError {
    ApiError::Unauthorized(refusal.challenge().clone())
}

/// The action a route needs on its repository.
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
        _ => Action::Pull,
    })
}

/// The authorization decision for one route, rendered as the spec asks:
/// 401 with a challenge for anonymous callers, 403 DENIED otherwise.
pub fn authorize(
    authenticator: &dyn Authenticator,
    authorizer: &dyn Authorizer,
    identity: &Identity,
    route: &Route,
) -> Result<(), ApiError> {
    let Some(action) = required_action(route) else {
        return Ok(());
    };
    let mut needs = vec![(route.repository(), action)];
    // A mount reads from the source repository: the caller must be allowed
    // to pull there too.
    if let Route::UploadStart {
        start: UploadStart::Mount {
            from: Some(from), ..
        },
        ..
    } = route
    {
        needs.push((Some(from), Action::Pull));
    }
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

fn denied(authenticator: &dyn Authenticator, identity: &Identity) -> ApiError {
    match (identity, authenticator.challenge()) {
        (Identity::Anonymous, Some(challenge)) => ApiError::Unauthorized(challenge),
        _ => ErrorCode::Denied.into(),
    }
}
