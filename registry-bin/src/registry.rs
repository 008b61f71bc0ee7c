//! The embeddable registry: a builder that composes storage and auth, and a
//! request handler that any hyper (or other `http`-based) server can call.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use registry_auth::{AllowAll, Anonymous, Authenticator, Authorizer, Identity};
use registry_core::route::RouteError;
use registry_core::{ErrorCode, Method, RegistryError, Route};
use registry_storage::Store;

use crate::access;
use crate::body::{BoxError, RequestBody};
use crate::handlers::{base, blobs, listing, manifests, referrers, uploads};
use crate::http_error::{ApiError, ApiResult};
use crate::reply::{Body, Reply};
use crate::sessions::SessionTable;

/// State shared by every request.
#[derive(Debug)]
pub struct Shared {
    /// Registry semantics over the storage backend.
    pub store: Store,
    /// Credentials to identity.
    pub authenticator: Arc<dyn Authenticator>,
    /// Identity and action to a decision.
    pub authorizer: Arc<dyn Authorizer>,
    /// Running hashes of open uploads.
    pub sessions: SessionTable,
    /// Whether DELETE of manifests, tags and blobs is allowed.
    pub delete_enabled: bool,
}

/// A registry ready to serve requests. Cloning is cheap (one `Arc`).
#[derive(Debug, Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

/// Builds a [`Registry`]; anonymous full access unless told otherwise.
#[derive(Debug)]
pub struct RegistryBuilder {
    store: Store,
    authenticator: Arc<dyn Authenticator>,
    authorizer: Arc<dyn Authorizer>,
    delete_enabled: bool,
}

impl RegistryBuilder {
    /// Who the caller is (default: everyone is anonymous).
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// What the caller may do (default: everything).
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Allows or forbids deletes (default: allowed).
    pub fn delete_enabled(mut self, enabled: bool) -> Self {
        self.delete_enabled = enabled;
        self
    }

    /// The finished registry.
    pub fn build(self) -> Registry {
        Registry {
            shared: Arc::new(Shared {
                store: self.store,
                authenticator: self.authenticator,
                authorizer: self.authorizer,
                sessions: SessionTable::default(),
                delete_enabled: self.delete_enabled,
            }),
        }
    }
}

impl Registry {
    /// Starts a builder over `store`.
    pub fn builder(store: Store) -> RegistryBuilder {
        RegistryBuilder {
            store,
            authenticator: Arc::new(Anonymous),
            authorizer: Arc::new(AllowAll),
            delete_enabled: true,
        }
    }

    /// The store, for embedders that want to inspect or seed it.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Handles one request. Never fails: every error is a spec error response.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let mut body: RequestBody = body.map_err(Into::into).boxed_unsync();
        let outcome = dispatch(&self.shared, &parts, &mut body).await;
        crate::body::discard_unread(&mut body, &parts.headers).await;
        let reply = outcome.result.unwrap_or_else(ApiError::into_reply);
        let status = reply.status();
        tracing::info!(
            method = %parts.method,
            route = outcome.kind,
            repository = outcome.repository.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            user = outcome.user.as_deref().unwrap_or("-"),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        reply.into_response()
    }
}

/// What `dispatch` learned, for the request log line.
struct Outcome {
    kind: &'static str,
    repository: Option<String>,
    user: Option<String>,
    result: ApiResult,
}

impl Outcome {
    fn early(kind: &'static str, error: ApiError) -> Outcome {
        Outcome {
            kind,
            repository: None,
            user: None,
            result: Err(error),
        }
    }
}

fn route_error(e: RouteError) -> ApiError {
    match e {
        RouteError::NotFound => RegistryError::new(ErrorCode::Unsupported)
            .with_status(404)
            .with_message("no such endpoint")
            .into(),
        RouteError::MethodNotAllowed => RegistryError::new(ErrorCode::Unsupported)
            .with_message("method not allowed on this endpoint")
            .into(),
        RouteError::Invalid(e) => e.into(),
        _ => ErrorCode::Unsupported.into(),
    }
}

async fn dispatch(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &mut RequestBody,
) -> Outcome {
    let identity = match access::authenticate(&shared.authenticator, &parts.headers).await {
        Ok(identity) => identity,
        Err(e) => return Outcome::early("unauthenticated", e),
    };
    let user = identity.username().map(str::to_owned);
    let route = Method::parse(parts.method.as_str())
        .ok_or(RouteError::MethodNotAllowed)
        .and_then(|m| Route::parse(m, parts.uri.path(), parts.uri.query()));
    let route = match route {
        Ok(route) => route,
        Err(e) => {
            return Outcome {
                user,
                ..Outcome::early("unknown", route_error(e))
            }
        }
    };
    let result = match access::authorize(
        shared.authenticator.as_ref(),
        shared.authorizer.as_ref(),
        &identity,
        &route,
    ) {
        Ok(()) => run(shared, &identity, &parts.headers, body, &route).await,
        Err(e) => Err(e),
    };
    Outcome {
        kind: route.kind(),
        repository: route.repository().map(|r| r.to_string()),
        user,
        result,
    }
}

async fn run(
    shared: &Shared,
    identity: &Identity,
    headers: &http::HeaderMap,
    body: &mut RequestBody,
    route: &Route,
) -> ApiResult {
    match route {
        Route::Base => base::version_check(),
        Route::Catalog { page } => listing::catalog(shared, identity, page).await,
        Route::TagsList { name, page } => listing::tags(shared, name, page).await,
        Route::ManifestGet {
            name,
            reference,
            head,
        } => manifests::get(shared, name, reference, *head).await,
        Route::ManifestPut {
            name,
            reference,
            tags,
        } => manifests::put(shared, headers, body, name, reference, tags).await,
        Route::ManifestDelete { name, reference } => {
            manifests::delete(shared, name, reference).await
        }
        Route::BlobGet { name, digest, head } => {
            blobs::get(shared, headers, name, digest, *head).await
        }
        Route::BlobDelete { name, digest } => blobs::delete(shared, name, digest).await,
        Route::UploadStart { name, start } => {
            uploads::start(shared, identity, headers, body, name, start).await
        }
        Route::UploadPatch { name, id } => uploads::patch(shared, headers, body, name, id).await,
        Route::UploadPut { name, id, digest } => {
            uploads::put(shared, headers, body, name, id, digest).await
        }
        Route::UploadStatus { name, id } => uploads::status(shared, name, id).await,
        Route::UploadCancel { name, id } => uploads::cancel(shared, name, id).await,
        Route::Referrers {
            name,
            digest,
            artifact_type,
        } => referrers::list(shared, name, digest, artifact_type.as_deref()).await,
        _ => Ok(Reply::empty(StatusCode::NOT_FOUND)),
    }
}
