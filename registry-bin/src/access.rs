//! Who is asking and what they may do: the glue between requests and the
//! `registry-auth` traits.
//!
//! A request without credentials is anonymous; whether that is enough is the
//! authorizer's decision (401 with a challenge when it is not). A request
//! with credentials is throttled when its address or user failed too often,
//! then verified on tokio's blocking pool, since bcrypt takes milliseconds by
//! design and must never stall the async workers. Credentials verified
//! recently are answered inline, without the pool (the cache).
//!
//! With `auth.token`, a request carries `Authorization: Bearer <jwt>`
//! instead; the signature check is quick and runs inline. Every 401 then
//! carries the scope the route needs (`repository:<name>:pull,push`,
//! `registry:catalog:*`), as Distribution sends it, so the client knows
//! what token to ask for; a valid token that lacks it gets 401 with
//! `error="insufficient_scope"` (Distribution's answer), not 403.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use registry_auth::{Action, Authenticator, Authorizer, Challenge, Credentials, Identity, Refusal};
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
    let header = headers.get(http::header::AUTHORIZATION);
    if let Some(answer) = header
        .and_then(|v| bearer_token(v.as_bytes()))
        .and_then(|token| authenticator.authenticate_bearer(token))
    {
        return answer.map_err(|refusal| {
            if let Refusal::InvalidToken { reason, .. } = &refusal {
                tracing::info!(reason = %reason, "bearer token refused");
            }
            ApiError::Unauthorized(refusal.challenge().clone())
        });
    }
    let Some(credentials) = header.and_then(|v| Credentials::from_basic_header(v.as_bytes()))
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

/// The token of an `Authorization: Bearer <token>` header (scheme in any
/// case), as Distribution reads it.
fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
        None if !matches!(identity, Identity::Anonymous) => return Ok(()),
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
    Err(match denied(authenticator, identity) {
        ApiError::Unauthorized(challenge) => ApiError::Unauthorized(scoped(challenge, Some(route))),
        other => other,
    })
}

/// A `Bearer` challenge with the scope `route` needs (none for the
/// version check or an unknown route); other challenges as they are.
///
/// Distribution's scopes: `pull` to read, `pull,push` to write (every
/// `POST`, `PUT`, `PATCH`), `delete` to delete, `pull` on the source of a
/// mount, `registry:catalog:*` for the catalog. Several are separated by a
/// space.
pub fn scoped(challenge: Challenge, route: Option<&Route>) -> Challenge {
    if challenge.scheme != "Bearer" {
        return challenge;
    }
    let Some(route) = route else {
        return challenge;
    };
    let repository = |name: &RepoName, actions: &str| format!("repository:{name}:{actions}");
    let mut scopes = Vec::new();
    match (required_action(route), route.repository()) {
        (_, None) if matches!(route, Route::Catalog { .. }) => {
            scopes.push("registry:catalog:*".to_owned());
        }
        (Some(action), Some(name)) => {
            let actions = match action {
                Action::Push => "pull,push",
                other => other.as_str(),
            };
            scopes.push(repository(name, actions));
            if let Route::UploadStart {
                start:
                    UploadStart::Mount {
                        from: Some(from), ..
                    },
                ..
            } = route
            {
                scopes.push(repository(from, "pull"));
            }
        }
        _ => {}
    }
    challenge.with_scope(scopes.join(" "))
}

/// Whether `identity` may pull from `repo` (catalog filtering, automatic mounts).
pub fn may_pull(authorizer: &dyn Authorizer, identity: &Identity, repo: &RepoName) -> bool {
    authorizer.authorize(identity, Some(repo), Action::Pull)
}

/// `GET /metrics` on the main port: open to every user when auth is on
/// (to everyone when it is off), and to a token holder only with the
/// registry-wide grant, `registry:catalog:*`: a token server may hand
/// tokens without grants to anyone.
pub fn may_read_metrics(
    authenticator: &dyn Authenticator,
    identity: &Identity,
) -> Result<(), ApiError> {
    let allowed = match identity {
        Identity::Anonymous => authenticator.challenge().is_none(),
        Identity::User(_) => true,
        Identity::Token(token) => token.grants.allows_catalog(),
    };
    if allowed {
        return Ok(());
    }
    Err(match denied(authenticator, identity) {
        ApiError::Unauthorized(c) if c.scheme == "Bearer" => {
            ApiError::Unauthorized(c.with_scope("registry:catalog:*".into()))
        }
        other => other,
    })
}

/// Whether the catalog shows `repo` to `identity`: a token granted
/// `registry:catalog:*` sees every repository, as with Distribution;
/// anyone else sees the repositories they may pull.
pub fn lists(authorizer: &dyn Authorizer, identity: &Identity, repo: &RepoName) -> bool {
    match identity {
        Identity::Token(token) if token.grants.allows_catalog() => true,
        _ => may_pull(authorizer, identity, repo),
    }
}

/// 401 with the challenge for an anonymous caller, 403 DENIED for a known
/// one; for a token holder, 401 `insufficient_scope` (Distribution's answer:
/// the client may get a wider token).
pub fn denied(authenticator: &dyn Authenticator, identity: &Identity) -> ApiError {
    match (identity, authenticator.challenge()) {
        (Identity::Anonymous, Some(challenge)) => ApiError::Unauthorized(challenge),
        (Identity::Token(_), Some(challenge)) => {
            ApiError::Unauthorized(challenge.with_error("insufficient_scope"))
        }
        _ => ErrorCode::Denied.into(),
    }
}

#[cfg(test)]
mod tests {
    use registry_core::Method;

    use super::*;

    fn route(method: Method, path: &str, query: Option<&str>) -> Route {
        Route::parse(method, path, query).unwrap()
    }

    fn scope_of(route: &Route) -> Option<String> {
        scoped(Challenge::bearer("r", "s"), Some(route)).scope
    }

    #[test]
    fn bearer_scopes_as_distribution_asks() {
        let cases = [
            (Method::Get, "/v2/", None, None),
            (Method::Get, "/v2/_catalog", None, Some("registry:catalog:*")),
            (
                Method::Get,
                "/v2/a/b/manifests/v1",
                None,
                Some("repository:a/b:pull"),
            ),
            (
                Method::Head,
                "/v2/a/blobs/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                None,
                Some("repository:a:pull"),
            ),
            (
                Method::Put,
                "/v2/a/manifests/v1",
                None,
                Some("repository:a:pull,push"),
            ),
            (
                Method::Post,
                "/v2/a/blobs/uploads/",
                Some("mount=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&from=b/c"),
                Some("repository:a:pull,push repository:b/c:pull"),
            ),
            (
                Method::Delete,
                "/v2/a/manifests/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                None,
                Some("repository:a:delete"),
            ),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                scope_of(&route(method, path, query)).as_deref(),
                want,
                "{path}"
            );
        }
        // Basic challenges never get a scope.
        let basic = scoped(
            Challenge::basic("r"),
            Some(&route(Method::Get, "/v2/_catalog", None)),
        );
        assert_eq!(basic, Challenge::basic("r"));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token(b"Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token(b"bearer  x "), Some("x"));
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Basic YWxpY2U6c2VjcmV0"), None);
        assert_eq!(bearer_token(b"Bearer\xff x"), None);
    }
}
