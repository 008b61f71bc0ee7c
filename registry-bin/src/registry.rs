//! The embeddable registry: a builder that composes storage and auth, and a
//! request handler that any hyper (or other `http`-based) server can call.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use registry_auth::{Action, AllowAll, Anonymous, Authenticator, Authorizer};
use registry_core::route::RouteError;
use registry_core::{ErrorCode, Method, RegistryError, Route, UploadId};
use registry_storage::Store;

use crate::access;
use crate::body::{BoxError, Counted, RequestBody};
use crate::config::UrlMode;
use crate::dispatch::run;
use crate::http_error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::notify::{EventSink, Happened};
use crate::proxy::Proxy;
use crate::reply::{Body, Reply};
use crate::sessions::SessionTable;
use crate::throttle::Throttle;
use crate::ui::{Ui, UiOptions};
use tokio::sync::Semaphore;

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
    /// Whether pushes and deletes are refused (migrations, incidents).
    pub read_only: bool,
    /// How `Location` headers are written.
    pub urls: UrlMode,
    /// Request and upload metrics.
    pub metrics: Metrics,
    /// Failed-login counters.
    pub throttle: Throttle,
    /// Upload requests allowed at once.
    pub upload_slots: Semaphore,
    /// Longest pause inside a request body.
    pub body_timeout: Duration,
    /// Where events about pushes, pulls and deletes go; `None`: nowhere,
    /// and handlers do not build them.
    pub events: Option<Arc<dyn EventSink>>,
    /// The web page; `None` when turned off.
    pub ui: Option<Ui>,
    /// The pull-through cache, when upstreams are configured.
    pub proxy: Option<Proxy>,
    /// Blob GETs answered with a redirect to a URL the storage serves for this long,
    /// when the storage makes such URLs; `None`: the registry serves the bytes.
    pub redirect: Option<Duration>,
}

impl Shared {
    /// Whether a sink takes events.
    pub fn notifying(&self) -> bool {
        self.events.is_some()
    }

    /// Whether manifest events list their references.
    pub fn references_wanted(&self) -> bool {
        self.events
            .as_ref()
            .is_some_and(|sink| sink.include_references())
    }
}

/// The client's address, put in request extensions by [`serve`](crate::serve)
/// (embedders may insert it too) for per-address login throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a request that reached this server over TLS it terminated itself,
/// put in request extensions by [`serve`](crate::serve) (embedders that
/// terminate TLS may insert it too): absolute `Location` headers built from
/// the request then say `https` unless `X-Forwarded-Proto` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls;

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
    read_only: bool,
    urls: UrlMode,
    throttle: Throttle,
    upload_slots: usize,
    body_timeout: Duration,
    events: Option<Arc<dyn EventSink>>,
    ui: Option<UiOptions>,
    proxy: Option<Proxy>,
    redirect: Option<Duration>,
}

impl RegistryBuilder {
    /// Failed logins allowed per address and per user within `window`
    /// (default: 10 per minute).
    pub fn throttle(mut self, failures: u32, window: Duration) -> Self {
        self.throttle = Throttle::new(failures, window);
        self
    }

    /// Upload requests streaming at once; more get 429 (default: 64).
    pub fn upload_slots(mut self, slots: usize) -> Self {
        self.upload_slots = slots;
        self
    }

    /// Longest pause inside a request body before it is abandoned (default: 60 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

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

    /// Refuses every push and delete with 405 `UNSUPPORTED` while pulls go on
    /// (default: off), as the standard registry's
    /// `storage.maintenance.readonly.enabled` does.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Serves repositories under the proxy's prefixes from its upstreams (default: none).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Answers blob GETs with a 307 to a URL the storage serves itself for `expires`
    /// (a presigned S3 URL), so that the bytes do not pass through the registry
    /// (default: `None`, the registry serves them). Storage without such URLs ignores it.
    pub fn redirect_blobs(mut self, expires: Option<Duration>) -> Self {
        self.redirect = expires;
        self
    }

    /// How `Location` headers are written (default: relative paths).
    pub fn urls(mut self, urls: UrlMode) -> Self {
        self.urls = urls;
        self
    }

    /// Sends events about pushes, pulls, mounts and deletes to `sink`
    /// (default: none, at no cost).
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// The web page's options, or `None` to turn it off (default: on at `/`).
    pub fn ui(mut self, options: Option<UiOptions>) -> Self {
        self.ui = options;
        self
    }

    /// The finished registry.
    pub fn build(self) -> Registry {
        let metrics = Metrics::default();
        for upstream in self.proxy.iter().flat_map(Proxy::upstreams) {
            metrics.proxy.register(&upstream.label);
        }
        Registry {
            shared: Arc::new(Shared {
                store: self.store,
                authenticator: self.authenticator,
                authorizer: self.authorizer,
                sessions: SessionTable::default(),
                delete_enabled: self.delete_enabled,
                read_only: self.read_only,
                urls: self.urls,
                metrics,
                throttle: self.throttle,
                upload_slots: Semaphore::new(self.upload_slots),
                body_timeout: self.body_timeout,
                events: self.events,
                ui: self.ui.map(Ui::new),
                proxy: self.proxy,
                redirect: self.redirect,
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
            read_only: false,
            urls: UrlMode::Relative,
            throttle: Throttle::new(10, Duration::from_secs(60)),
            upload_slots: 64,
            body_timeout: Duration::from_secs(60),
            events: None,
            ui: Some(UiOptions::default()),
            proxy: None,
            redirect: None,
        }
    }

    /// Removes uploads started more than `max_age` ago, with their data.
    /// Returns how many were removed.
    pub async fn purge_uploads(
        &self,
        max_age: Duration,
    ) -> Result<usize, registry_storage::StorageError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let cutoff = now.saturating_sub(max_age.as_secs());
        let purged = self.shared.store.purge_uploads(cutoff).await?;
        self.shared.sessions.forget_started_before(cutoff);
        Ok(purged.len())
    }

    /// The metrics, for the parts of the server that record their own series.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The pull-through cache, when upstreams are configured.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.shared.proxy.as_ref()
    }

    /// The store, for embedders that want to inspect or seed it.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut text = self.shared.metrics.render(self.shared.sessions.len());
        if let Some(sink) = &self.shared.events {
            sink.render_metrics(&mut text);
        }
        text
    }

    /// `GET /healthz` and `GET /readyz`, which answer without credentials
    /// (Kubernetes probes carry none). `None` for any other path.
    pub async fn probe(&self, path: &str) -> Option<Response<Body>> {
        let reply = match path {
            "/healthz" => Reply::bytes(StatusCode::OK, "text/plain", &b"ok\n"[..]),
            "/readyz" => {
                let nonce = UploadId::parse(&uuid::Uuid::new_v4().to_string())?;
                match self.shared.store.check_writable(&nonce).await {
                    Ok(()) => Reply::bytes(StatusCode::OK, "text/plain", &b"ready\n"[..]),
                    Err(e) => {
                        tracing::warn!(error = %e, "readiness: storage is not writable");
                        self.shared.metrics.storage_error();
                        Reply::bytes(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "text/plain",
                            &b"storage unavailable\n"[..],
                        )
                    }
                }
            }
            _ => return None,
        };
        Some(reply.into_response())
    }

    /// Handles one request. Never fails: every error is a spec error response.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        if request.method() == http::Method::GET {
            if let Some(response) = self.probe(request.uri().path()).await {
                return response;
            }
        }
        let (parts, body) = request.into_parts();
        let (body, received) = Counted::new(body);
        let mut body: RequestBody = body.map_err(Into::into).boxed_unsync();
        let outcome = dispatch(self, &parts, &mut body).await;
        if !http_body::Body::is_end_stream(&body) {
            // Drain what the handler did not read while the reply goes out,
            // so clients that send a whole body before reading see the reply.
            let (headers, idle) = (parts.headers.clone(), self.shared.body_timeout);
            tokio::spawn(
                async move { crate::body::discard_unread(&mut body, &headers, idle).await },
            );
        }
        if let Err(ApiError::Internal(_)) = &outcome.result {
            self.shared.metrics.storage_error();
        }
        let mut reply = outcome.result.unwrap_or_else(ApiError::into_reply);
        if let Some(sink) = &self.shared.events {
            self.notify(
                sink.as_ref(),
                reply.take_events(),
                &parts,
                outcome.user.clone(),
            );
        }
        let reply = absolute_location(reply, &self.shared.urls, &parts);
        // No HEAD reply has a body, errors included: hyper drops it over
        // HTTP/1.1 but sends it over HTTP/2, where clients reset the stream.
        let reply = if parts.method == http::Method::HEAD {
            reply.without_body()
        } else {
            reply
        };
        let status = reply.status();
        let bytes_in = received.load(Ordering::Relaxed);
        let bytes_out = match parts.method {
            http::Method::HEAD => 0,
            _ => reply.content_length().unwrap_or(0),
        };
        let took = started.elapsed();
        self.shared.metrics.request(
            outcome.kind,
            parts.method.as_str(),
            status.as_u16(),
            took,
            bytes_in,
            bytes_out,
        );
        let repository = outcome.repository.as_deref().unwrap_or("-");
        let user = outcome.user.as_deref().unwrap_or("-");
        let duration_ms = (took.as_secs_f64() * 1e6).round() / 1e3;
        if status.is_server_error() {
            tracing::error!(method = %parts.method, route = %outcome.kind, repository = %repository, status = status.as_u16(), bytes_in, bytes_out, user = %user, duration_ms, "request");
        } else {
            tracing::info!(method = %parts.method, route = %outcome.kind, repository = %repository, status = status.as_u16(), bytes_in, bytes_out, user = %user, duration_ms, "request");
        }
        reply.into_response()
    }
}

impl Registry {
    /// Hands the events of a successful request to `sink`; never waits.
    fn notify(
        &self,
        sink: &dyn EventSink,
        happened: Vec<Happened>,
        parts: &http::request::Parts,
        user: Option<String>,
    ) {
        if happened.is_empty() {
            return;
        }
        // Always absolute, as Distribution writes `url`, whatever `Location` does.
        let base_url = match &self.shared.urls {
            UrlMode::Fixed(base) => Some(base.clone()),
            UrlMode::Relative | UrlMode::FromRequest => request_base(parts),
        };
        let origin = crate::notify::origin::origin(parts, base_url, user);
        let now = std::time::SystemTime::now();
        for what in happened {
            for event in what.into_events(&origin, now) {
                sink.send(event);
            }
        }
    }
}

/// `scheme://host` the client reached: `X-Forwarded-*` first, then
/// `https` over TLS and the `Host` (HTTP/1.1) or `:authority` (HTTP/2).
fn request_base(parts: &http::request::Parts) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let first = |v: &str| v.split(',').next().unwrap_or("").trim().to_owned();
    let own_scheme = if parts.extensions.get::<OverTls>().is_some() {
        "https"
    } else {
        "http"
    };
    let proto = header("x-forwarded-proto").map_or_else(|| own_scheme.to_owned(), first);
    let host = header("x-forwarded-host")
        .map(first)
        .or_else(|| header("host").map(str::to_owned))
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))?;
    Some(format!("{proto}://{host}"))
}

/// Rewrites a path-only `Location` into an absolute URL when configured,
/// on `http.host` or on [`request_base`].
fn absolute_location(reply: Reply, urls: &UrlMode, parts: &http::request::Parts) -> Reply {
    let base = match urls {
        UrlMode::Relative => return reply,
        UrlMode::Fixed(base) => base.clone(),
        UrlMode::FromRequest => match request_base(parts) {
            Some(base) => base,
            None => return reply,
        },
    };
    match reply.location() {
        Some(path) if path.starts_with('/') => {
            let absolute = format!("{base}{path}");
            reply.header("location", &absolute)
        }
        _ => reply,
    }
}

/// What `dispatch` learned, for the request log line and metrics.
struct Outcome {
    kind: &'static str,
    repository: Option<String>,
    user: Option<String>,
    result: ApiResult,
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

/// In read-only mode, refuses what would write: every route that needs push or
/// delete rights, including the status and cancel of an upload.
fn writable(shared: &Shared, route: &Route) -> Result<(), ApiError> {
    if shared.read_only && access::required_action(route).is_some_and(|a| a != Action::Pull) {
        return Err(RegistryError::new(ErrorCode::Unsupported)
            .with_message("the registry is read-only: pulls work, pushes and deletes are refused")
            .into());
    }
    Ok(())
}

/// Refuses, with 400, requests whose meaning depends on which of two fields a reader
/// takes: an HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2 says a server
/// MUST), or any request with two `Host` or two `Authorization` fields. A proxy in front
/// may have checked the other credential than the one this server would read.
fn unambiguous(parts: &http::request::Parts) -> Result<(), ApiError> {
    let count = |name| parts.headers.get_all(name).iter().count();
    let hosts = count(http::header::HOST);
    let message = if hosts > 1 || (hosts == 0 && parts.version == http::Version::HTTP_11) {
        "an HTTP/1.1 request must carry exactly one Host field"
    } else if count(http::header::AUTHORIZATION) > 1 {
        "a request must carry at most one Authorization field"
    } else {
        return Ok(());
    };
    Err(RegistryError::new(ErrorCode::Unsupported)
        .with_status(400)
        .with_message(message)
        .into())
}

async fn dispatch(
    registry: &Registry,
    parts: &http::request::Parts,
    body: &mut RequestBody,
) -> Outcome {
    let shared = &*registry.shared;
    let early = |kind, user: Option<String>, error| Outcome {
        kind,
        repository: None,
        user,
        result: Err(error),
    };
    if let Err(e) = unambiguous(parts) {
        return early("malformed", None, e);
    }
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let identity = match access::authenticate(
        &shared.authenticator,
        &shared.throttle,
        &parts.headers,
        peer,
    )
    .await
    {
        Ok(identity) => identity,
        Err(e) => {
            let reason = if parts.headers.contains_key(http::header::AUTHORIZATION) {
                "invalid"
            } else {
                "missing"
            };
            shared.metrics.auth_failure(reason);
            let e = match e {
                // A refused token: the challenge still says what to ask for.
                ApiError::Unauthorized(challenge) => {
                    let route = Method::parse(parts.method.as_str())
                        .and_then(|m| Route::parse(m, parts.uri.path(), parts.uri.query()).ok());
                    ApiError::Unauthorized(access::scoped(challenge, route.as_ref()))
                }
                other => other,
            };
            return early("unauthenticated", None, e);
        }
    };
    let user = identity.username().map(str::to_owned);
    if parts.method == http::Method::GET && parts.uri.path() == "/metrics" {
        if let Err(e) = access::may_read_metrics(shared.authenticator.as_ref(), &identity) {
            return early("metrics", user, e);
        }
        let text = registry.metrics_text();
        return Outcome {
            kind: "metrics",
            repository: None,
            user,
            result: Ok(Reply::bytes(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                text,
            )),
        };
    }
    if let Some(ui) = &shared.ui {
        if let Some(result) = crate::ui::handle(shared, ui, &identity, parts, body).await {
            return Outcome {
                kind: "ui",
                repository: None,
                user,
                result,
            };
        }
    }
    // containerd's mirror requests name the upstream in `?ns=`: routed (and authorized)
    // under the upstream's prefix.
    let mirrored = shared
        .proxy
        .as_ref()
        .and_then(|p| p.mirror_path(parts.uri.path(), parts.uri.query()));
    let path = mirrored.as_deref().unwrap_or(parts.uri.path());
    let route = Method::parse(parts.method.as_str())
        .ok_or(RouteError::MethodNotAllowed)
        .and_then(|m| Route::parse(m, path, parts.uri.query()));
    let route = match route {
        Ok(route) => route,
        Err(e) => return early("unknown", user, route_error(e)),
    };
    let result = match access::authorize(
        shared.authenticator.as_ref(),
        shared.authorizer.as_ref(),
        &identity,
        &route,
    )
    .and_then(|()| writable(shared, &route))
    {
        Ok(()) => run(shared, &identity, &parts.headers, body, &route).await,
        Err(e) => {
            if matches!(e, ApiError::Unauthorized(_)) {
                shared.metrics.auth_failure("missing");
            }
            Err(e)
        }
    };
    Outcome {
        kind: route.kind(),
        repository: route.repository().map(|r| r.to_string()),
        user,
        result,
    }
}
