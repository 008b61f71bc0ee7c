//! Manifests through the cache.
//!
//! By digest: immutable, so once stored it is served from storage for good. By tag: the
//! stored tag is trusted for the upstream's `ttl`; after that one `HEAD` asks the
//! upstream which digest the tag names now, and only a different digest costs a `GET`.
//! When the upstream cannot be asked, a stored tag is served stale (a warning and a
//! metric); without one the pull fails with a 502/503 naming the upstream.
//!
//! One fetch per tag or digest at a time: concurrent pulls of the same uncached manifest
//! wait for the first, then find it in storage.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use registry_core::manifest::{self, MAX_MANIFEST_BYTES};
use registry_core::{Algorithm, Digest, ErrorCode, Reference, RepoName, Tag};
use registry_storage::Eviction;

use super::client::default_accept;
use super::{Proxy, Target};
use crate::handlers::manifests as local;
use crate::http_error::{ApiError, ApiResult};
use crate::metrics::ProxyEvent;
use crate::registry::Shared;

/// `GET|HEAD /v2/<name>/manifests/<reference>` of a proxied repository.
pub async fn get(
    shared: &Shared,
    proxy: &Proxy,
    target: Target<'_>,
    headers: &HeaderMap,
    name: &RepoName,
    reference: &Reference,
    head: bool,
) -> ApiResult {
    let label = &target.upstream.label;
    let accept = accept_list(headers);
    let digest = match reference {
        Reference::Digest(digest) => {
            if !cached(shared, name, digest).await? {
                let _flight = proxy.manifest_locks.lock(format!("{name}@{digest}")).await;
                if !cached(shared, name, digest).await? {
                    fetch(
                        shared,
                        target,
                        &accept,
                        name,
                        &digest.to_string(),
                        Some(digest),
                    )
                    .await?;
                    shared.metrics.proxy.record(label, ProxyEvent::Miss);
                    return local::get(shared, name, reference, head).await;
                }
            }
            digest.clone()
        }
        Reference::Tag(tag) => match by_tag(shared, proxy, target, &accept, name, tag).await? {
            Some(digest) => digest,
            None => return local::get(shared, name, reference, head).await,
        },
    };
    shared.metrics.proxy.record(label, ProxyEvent::Hit);
    record_pull(shared, target, name, &digest).await;
    local::get(shared, name, &Reference::Digest(digest), head).await
}

/// Keeps a pulled manifest from eviction (`evict` on its upstream): its revision link is
/// touched when older than an eighth of the window. A failure is logged, not the pull's:
/// the worst it costs is an eviction and a fetch again.
async fn record_pull(shared: &Shared, target: Target<'_>, name: &RepoName, digest: &Digest) {
    let Some(after) = target.upstream.evict else {
        return;
    };
    if shared.read_only {
        return;
    }
    if let Err(e) = shared
        .store
        .record_pull(name, digest, Eviction::refresh(after))
        .await
    {
        tracing::warn!(repository = %name, digest = %digest, error = %e, "recording a pull for eviction failed");
    }
}

/// Makes the tag current in storage. `Some(digest)`: served from storage as it was
/// (a hit, fresh or stale); `None`: it was just fetched (a miss, already counted).
async fn by_tag(
    shared: &Shared,
    proxy: &Proxy,
    target: Target<'_>,
    accept: &[HeaderValue],
    name: &RepoName,
    tag: &Tag,
) -> Result<Option<Digest>, ApiError> {
    let key = format!("{name}:{tag}");
    let ttl = target.upstream.ttl;
    let usable = |stored: &Option<Digest>| match (stored, proxy.is_fresh(&key, ttl)) {
        (Some(d), Some(true)) => Some(d.clone()),
        // Pushed here (never fetched): local content wins in the standard registry's shape.
        (Some(d), None) if target.local_first() => Some(d.clone()),
        _ => None,
    };
    if let Some(digest) = usable(&shared.store.resolve_tag(name, tag).await?) {
        return Ok(Some(digest));
    }
    let _flight = proxy.manifest_locks.lock(key.clone()).await;
    let stored = shared.store.resolve_tag(name, tag).await?;
    if let Some(digest) = usable(&stored) {
        return Ok(Some(digest));
    }
    let remote = target.remote();
    let checked = match target
        .upstream
        .client
        .manifest(&remote, tag.as_str(), accept, true)
        .await
    {
        Ok(r) if r.status() == StatusCode::OK => Ok(r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())),
        Ok(r) if r.status() == StatusCode::NOT_FOUND => {
            proxy.forget(&key);
            return Err(ErrorCode::ManifestUnknown.into());
        }
        Ok(r) => Err(format!("answered HTTP {} to a manifest HEAD", r.status())),
        Err(e) => Err(e.to_string()),
    };
    let confirmed = match (&checked, &stored) {
        (Ok(Some(upstream)), Some(stored)) if upstream == stored => {
            cached(shared, name, stored).await?
        }
        _ => false,
    };
    match (checked, stored) {
        (_, Some(stored)) if confirmed => {
            proxy.mark_checked(key);
            return Ok(Some(stored));
        }
        (Err(why), Some(stored)) => {
            let metrics = &shared.metrics.proxy;
            metrics.record(&target.upstream.label, ProxyEvent::UpstreamError);
            metrics.record(&target.upstream.label, ProxyEvent::Stale);
            tracing::warn!(upstream = %target.upstream.label, repository = %name, tag = %tag, error = %why, "upstream cannot confirm the tag; serving the stored one past its ttl");
            return Ok(Some(stored));
        }
        (Err(why), None) => return Err(target.failure(shared, 503, &why)),
        _ => {}
    }
    let digest = fetch(shared, target, accept, name, tag.as_str(), None).await?;
    shared.store.put_tag(name, tag, &digest).await?;
    proxy.mark_checked(key);
    shared
        .metrics
        .proxy
        .record(&target.upstream.label, ProxyEvent::Miss);
    Ok(None)
}

/// Whether the repository has the manifest stored.
async fn cached(shared: &Shared, name: &RepoName, digest: &Digest) -> Result<bool, ApiError> {
    Ok(shared.store.get_manifest(name, digest).await?.is_some())
}

/// The client's `Accept` values, or every type this registry stores.
fn accept_list(headers: &HeaderMap) -> Vec<HeaderValue> {
    let values: Vec<HeaderValue> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .cloned()
        .collect();
    if values.is_empty() {
        vec![default_accept()]
    } else {
        values
    }
}

/// GETs the manifest, checks it (digest, size, validity) and stores it as a push would.
async fn fetch(
    shared: &Shared,
    target: Target<'_>,
    accept: &[HeaderValue],
    name: &RepoName,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<Digest, ApiError> {
    let remote = target.remote();
    let response = target
        .upstream
        .client
        .manifest(&remote, reference, accept, false)
        .await
        .map_err(|e| target.unavailable(shared, &e))?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Err(ErrorCode::ManifestUnknown.into()),
        status => {
            return Err(target.failure(
                shared,
                502,
                &format!("answered HTTP {status} to a manifest GET"),
            ))
        }
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let announced = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    let bytes = read_limited(response)
        .await
        .map_err(|why| target.failure(shared, 502, &why))?;
    shared
        .metrics
        .proxy
        .fetched(&target.upstream.label, bytes.len() as u64);
    let algorithm = expected
        .or(announced.as_ref())
        .map_or(Algorithm::Sha256, Digest::algorithm);
    let digest = Digest::of(algorithm, &bytes);
    if let Some(claimed) = expected.or(announced.as_ref()) {
        if &digest != claimed {
            return Err(target.failure(
                shared,
                502,
                &format!("sent a manifest that hashes to {digest}, not {claimed}"),
            ));
        }
    }
    let parsed = manifest::validate(content_type.as_deref(), &bytes).map_err(|e| {
        target.failure(
            shared,
            502,
            &format!("sent a manifest this registry cannot store: {}", e.message),
        )
    })?;
    local::store(shared, name, &digest, &parsed, bytes).await?;
    Ok(digest)
}

/// The body, refused past [`MAX_MANIFEST_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Bytes, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
    {
        return Err("sent a manifest larger than 4 MiB".into());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("broke off a manifest: {e}"))?
    {
        if buf.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err("sent a manifest larger than 4 MiB".into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
