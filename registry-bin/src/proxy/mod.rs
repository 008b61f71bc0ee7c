//! The pull-through cache: repositories under a configured prefix are copies of an
//! upstream registry's, fetched on the first pull and served from storage afterwards,
//! in the same instance that takes pushes everywhere else.
//!
//! Everything fetched goes through the same [`Store`](registry_storage::Store) calls as
//! pushed content (`put_manifest`, `put_tag`, an upload then `commit_upload`), so garbage
//! collection, access rules, metrics and the catalog treat it like any other content.
//!
//! Two ways in:
//! - by prefix: `GET /v2/docker.io/library/alpine/manifests/3.20` is `library/alpine`
//!   of the upstream whose prefix is `docker.io`;
//! - as a containerd mirror: `GET /v2/library/alpine/manifests/3.20?ns=docker.io` is
//!   routed as if the name were `docker.io/library/alpine` ([`Proxy::mirror_path`]),
//!   before authorization, so access rules see the prefixed name either way.
//!
//! An upstream without a prefix (the standard registry's `proxy.remoteurl`) covers every
//! repository, but what is stored here wins and pushes still work.
//!
//! # Layout
//! - [`challenge`]: `WWW-Authenticate` parsing.
//! - [`client`]: one upstream's HTTP client and its auth.
//! - [`manifests`]: manifests by digest (kept for good) and by tag (kept for `ttl`).
//! - [`blobs`]: stream-through with one upstream fetch per blob at a time.

pub mod blobs;
pub mod challenge;
pub mod client;
pub mod manifests;
mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use registry_auth::Action;
use registry_core::{ErrorCode, Reference, RegistryError, RepoName, Route};

use crate::access::required_action;
use crate::config::UpstreamSettings;
use crate::http_error::{ApiError, ApiResult};
use crate::metrics::ProxyEvent;
use crate::registry::Shared;

pub use client::{UpstreamClient, UpstreamError};

/// One configured upstream.
#[derive(Debug)]
pub struct Upstream {
    /// Its name in logs, metrics and error messages.
    pub label: String,
    /// The repository prefix; `None`: every repository, local content first.
    pub prefix: Option<RepoName>,
    /// Base URL.
    pub url: String,
    /// How long a tag is trusted before a HEAD checks it.
    pub ttl: Duration,
    /// Garbage collection evicts what was not pulled for this long; pulls record
    /// themselves ([`registry_storage::Store::record_pull`]) only when it is set.
    pub evict: Option<Duration>,
    /// The HTTP client.
    pub client: UpstreamClient,
}

/// Where a repository's pulls go.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The upstream.
    pub upstream: &'a Arc<Upstream>,
    /// What the upstream calls the repository.
    remote: &'a str,
}

impl Target<'_> {
    /// The repository's name at the upstream.
    pub fn remote(&self) -> String {
        // Docker Hub keeps official images under `library/`; `docker.io/alpine` means
        // `library/alpine` there, as `docker pull alpine` does.
        let hub = ["https://registry-1.docker.io", "https://index.docker.io"];
        if !self.remote.contains('/') && hub.contains(&self.upstream.url.as_str()) {
            format!("library/{}", self.remote)
        } else {
            self.remote.to_owned()
        }
    }

    /// Whether content stored here is served before the upstream is asked (the
    /// standard registry's shape) and pushes are allowed.
    pub fn local_first(&self) -> bool {
        self.upstream.prefix.is_none()
    }

    /// A 502 or 503 error body naming the upstream, after counting the failure.
    fn failure(&self, shared: &Shared, status: u16, what: &str) -> ApiError {
        shared
            .metrics
            .proxy
            .record(&self.upstream.label, ProxyEvent::UpstreamError);
        tracing::warn!(upstream = %self.upstream.label, url = %self.upstream.url, repository = %self.remote, "{what}");
        RegistryError::new(ErrorCode::Unknown)
            .with_status(status)
            .with_message(format!(
                "upstream {} ({}): {what}",
                self.upstream.label, self.upstream.url
            ))
            .into()
    }

    /// The 503 for content not cached yet while the registry is read-only: fetching it
    /// would write to storage.
    fn read_only_miss(&self) -> ApiError {
        RegistryError::new(ErrorCode::Unknown)
            .with_status(503)
            .with_message(format!(
                "the registry is read-only (storage.maintenance.readonly): content of {} not cached yet cannot be fetched now",
                self.upstream.label
            ))
            .into()
    }

    /// `Ok` for an upstream's 200; `unknown` (404 to the client) for its 404; otherwise a
    /// 502 naming the upstream, its status and `request` ("a blob HEAD").
    fn expect_found(
        &self,
        shared: &Shared,
        status: http::StatusCode,
        unknown: ErrorCode,
        request: &str,
    ) -> Result<(), ApiError> {
        match status {
            http::StatusCode::OK => Ok(()),
            http::StatusCode::NOT_FOUND => Err(unknown.into()),
            status => {
                Err(self.failure(shared, 502, &format!("answered HTTP {status} to {request}")))
            }
        }
    }

    /// The error for a failed upstream request.
    fn unavailable(&self, shared: &Shared, error: &UpstreamError) -> ApiError {
        let status = match error {
            UpstreamError::Unreachable(_) => 503,
            _ => 502,
        };
        self.failure(shared, status, &error.to_string())
    }
}

/// Locks by key, for single-flight manifest fetches: the second caller waits for the
/// first and then finds the result in storage.
#[derive(Debug, Default)]
struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: String) -> KeyedGuard<'_> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let guard = Arc::clone(&lock).lock_owned().await;
        KeyedGuard {
            owner: self,
            key,
            _guard: guard,
        }
    }
}

/// Held while a key's fetch runs; the map entry goes when nobody waits on it.
struct KeyedGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's: nobody else holds or waits for it.
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            map.remove(&self.key);
        }
    }
}

/// The configured upstreams and the cache's in-memory state.
#[derive(Debug)]
pub struct Proxy {
    upstreams: Vec<Arc<Upstream>>,
    /// When each tag (`name:tag`) of the upstream without a prefix was last fetched or
    /// confirmed by this process; a stored tag not here was pushed (or fetched before a
    /// restart) and is served as local. Upstreams with a prefix keep this in storage
    /// instead (the tag's modification time, see [`manifests`]).
    checked: Mutex<HashMap<String, Instant>>,
    manifest_locks: KeyedLocks,
    flights: blobs::Flights,
}

impl Proxy {
    /// Builds the clients (reading password files); fails on the first that cannot be
    /// built.
    pub fn new(settings: &[UpstreamSettings]) -> Result<Proxy, String> {
        let upstreams = settings
            .iter()
            .map(|s| {
                Ok(Arc::new(Upstream {
                    label: s.label(),
                    prefix: s.prefix.clone(),
                    url: s.url.clone(),
                    ttl: s.ttl,
                    evict: s.evict,
                    client: UpstreamClient::new(s).map_err(|e| format!("{}: {e}", s.key))?,
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Proxy {
            upstreams,
            checked: Mutex::default(),
            manifest_locks: KeyedLocks::default(),
            flights: blobs::Flights::default(),
        })
    }

    /// The upstreams, for start-up logs and metrics.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Logs a warning for each upstream that does not answer now; the server starts
    /// anyway (the upstream may come back, and cached content is served meanwhile).
    pub async fn warn_unreachable(&self) {
        for upstream in &self.upstreams {
            match upstream.client.reachable().await {
                Ok(()) => {
                    tracing::info!(upstream = %upstream.label, url = %upstream.url, "upstream reachable")
                }
                Err(e) => {
                    tracing::warn!(upstream = %upstream.label, url = %upstream.url, error = %e, "upstream unreachable at start; cached content is served, uncached pulls fail until it answers")
                }
            }
        }
    }

    /// The upstream of `name`: the one whose prefix is a parent of it, else the one
    /// without a prefix.
    pub fn route<'a>(&'a self, name: &'a RepoName) -> Option<Target<'a>> {
        let by_prefix = self.upstreams.iter().find_map(|upstream| {
            let prefix = upstream.prefix.as_ref()?;
            let remote = name
                .as_str()
                .strip_prefix(prefix.as_str())?
                .strip_prefix('/')?;
            Some(Target { upstream, remote })
        });
        by_prefix.or_else(|| {
            let upstream = self.upstreams.iter().find(|u| u.prefix.is_none())?;
            Some(Target {
                upstream,
                remote: name.as_str(),
            })
        })
    }

    /// containerd's mirror requests: `/v2/<name>/...?ns=<registry>` becomes
    /// `/v2/<registry>/<name>/...` when an upstream's prefix is `<registry>`. Other
    /// paths and unknown `ns` values are left alone (`None`).
    pub fn mirror_path(&self, path: &str, query: Option<&str>) -> Option<String> {
        let ns = query?
            .split('&')
            .find_map(|pair| pair.strip_prefix("ns="))?;
        let known = self
            .upstreams
            .iter()
            .any(|u| u.prefix.as_ref().is_some_and(|p| p.as_str() == ns));
        let rest = path.strip_prefix("/v2/")?;
        (known && !rest.is_empty() && !rest.starts_with('_')).then(|| format!("/v2/{ns}/{rest}"))
    }

    fn is_fresh(&self, key: &str, ttl: Duration) -> Option<bool> {
        let map = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|at| at.elapsed() < ttl)
    }

    fn mark_checked(&self, key: String) {
        let mut map = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key, Instant::now());
    }

    fn forget(&self, key: &str) {
        let mut map = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// Answers the routes the cache owns: pulls of manifests and blobs of a proxied
/// repository, and the refusal of writes under a prefix. `None`: the request is served
/// as usual (listings, referrers, and every repository outside the cache).
pub async fn intercept(shared: &Shared, headers: &HeaderMap, route: &Route) -> Option<ApiResult> {
    let proxy = shared.proxy.as_ref()?;
    let target = proxy.route(route.repository()?)?;
    Some(match route {
        Route::ManifestGet {
            name,
            reference,
            head,
        } => manifests::get(shared, proxy, target, headers, name, reference, *head).await,
        Route::BlobGet { name, digest, head } => {
            blobs::get(shared, proxy, target, headers, name, digest, *head).await
        }
        Route::ManifestPut {
            name,
            reference,
            tags,
        } if target.local_first() => {
            // A tag pushed here is local from now on: never checked against the upstream
            // (nor replaced by its version) again.
            let pushed = tags.iter().chain(match reference {
                Reference::Tag(tag) => Some(tag),
                Reference::Digest(_) => None,
            });
            for tag in pushed {
                proxy.forget(&format!("{name}:{tag}"));
            }
            return None;
        }
        _ if !target.local_first() && required_action(route).is_some_and(|a| a != Action::Pull) => {
            Err(RegistryError::new(ErrorCode::Denied)
                .with_message(format!(
                    "repositories under {}/ are a pull-through cache of the upstream {}: pushes and deletes are refused",
                    target.upstream.label, target.upstream.url
                ))
                .into())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn proxy(text: &str) -> Proxy {
        Proxy::new(&parse_str(text).unwrap().proxy.check().unwrap()).unwrap()
    }

    const TWO: &str = "proxy:\n  upstreams:\n    - prefix: docker.io\n      url: https://registry-1.docker.io\n    - prefix: cache/ghcr.io\n      url: https://ghcr.io\n";

    #[test]
    fn routes_by_prefix_on_component_boundaries() {
        let p = proxy(TWO);
        let route = |name: &str| {
            let name: RepoName = name.parse().unwrap();
            p.route(&name)
                .map(|t| (t.upstream.label.clone(), t.remote()))
        };
        assert_eq!(
            route("docker.io/library/alpine"),
            Some(("docker.io".into(), "library/alpine".into()))
        );
        assert_eq!(
            route("docker.io/alpine"),
            Some(("docker.io".into(), "library/alpine".into()))
        );
        assert_eq!(
            route("cache/ghcr.io/org/tool"),
            Some(("cache/ghcr.io".into(), "org/tool".into()))
        );
        assert_eq!(
            route("cache/ghcr.io/tool"),
            Some(("cache/ghcr.io".into(), "tool".into()))
        );
        assert_eq!(route("docker.iox/alpine"), None);
        assert_eq!(route("docker.io"), None);
        assert_eq!(route("team/app"), None);
    }

    #[test]
    fn an_upstream_without_prefix_takes_the_rest() {
        let p = proxy(
            "proxy:\n  remoteurl: http://127.0.0.1:9\n  upstreams:\n    - prefix: q.io\n      url: http://127.0.0.1:8\n",
        );
        let name: RepoName = "team/app".parse().unwrap();
        let t = p.route(&name).unwrap();
        assert!(t.local_first());
        assert_eq!(t.remote(), "team/app");
        let name: RepoName = "q.io/app".parse().unwrap();
        assert!(!p.route(&name).unwrap().local_first());
    }

    #[test]
    fn mirror_paths_follow_ns() {
        let p = proxy(TWO);
        assert_eq!(
            p.mirror_path("/v2/library/alpine/manifests/3.20", Some("ns=docker.io")),
            Some("/v2/docker.io/library/alpine/manifests/3.20".into())
        );
        assert_eq!(
            p.mirror_path("/v2/org/tool/blobs/sha256:ab", Some("x=1&ns=cache/ghcr.io")),
            Some("/v2/cache/ghcr.io/org/tool/blobs/sha256:ab".into())
        );
        assert_eq!(p.mirror_path("/v2/a/manifests/1", Some("ns=quay.io")), None);
        assert_eq!(p.mirror_path("/v2/a/manifests/1", None), None);
        assert_eq!(p.mirror_path("/v2/", Some("ns=docker.io")), None);
        assert_eq!(p.mirror_path("/v2/_catalog", Some("ns=docker.io")), None);
    }
}
