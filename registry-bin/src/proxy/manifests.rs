//! Manifests through the cache.
//!
//! By digest: immutable, so once stored it is served from storage for good. By tag: the
//! stored tag is trusted for the upstream's `ttl`; after that one `HEAD` asks the
//! upstream which digest the tag names now, and only a different digest costs a `GET`.
//! When the upstream cannot be asked, a stored tag is served stale (a warning and a
//! metric); without one the pull fails with a 502/503 naming the upstream.
//!
//! When a tag was last confirmed is its file's modification time: written by the fetch,
//! touched by a check that confirmed it. So it survives restarts and every replica on
//! the same storage sees it (one HEAD per tag and `ttl` for all of them, give or take a
//! race). The upstream without a prefix (`proxy.remoteurl`) is the exception: there a
//! stored tag may have been pushed here, which is served as is, and which tags came
//! from the upstream is known in memory only (after a restart they are served as local).
//!
//! A manifest is only ever stored after its bytes hash to the digest asked for (or the
//! one the upstream announced for a tag): a corrupt one is a 502 naming the upstream,
//! and nothing is kept. In read-only mode what is stored is served as is (tags are not
//! checked, which could not be recorded) and a miss is a 503.
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
                if shared.read_only {
                    return Err(target.read_only_miss());
                }
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
    if let Some(digest) = servable(shared, proxy, target, name, tag, &key).await? {
        return Ok(Some(digest));
    }
    if shared.read_only {
        return Err(target.read_only_miss());
    }
    let _flight = proxy.manifest_locks.lock(key.clone()).await;
    if let Some(digest) = servable(shared, proxy, target, name, tag, &key).await? {
        return Ok(Some(digest));
    }
    let stored = shared.store.resolve_tag(name, tag).await?;
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
            if target.local_first() {
                proxy.mark_checked(key);
            } else {
                shared.store.touch_tag(name, tag).await?;
            }
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

/// The stored tag's digest if it may be served without asking the upstream: within
/// `ttl` of its last check, pushed here (the upstream without a prefix), or anything
/// stored while the registry is read-only.
async fn servable(
    shared: &Shared,
    proxy: &Proxy,
    target: Target<'_>,
    name: &RepoName,
    tag: &Tag,
    key: &str,
) -> Result<Option<Digest>, ApiError> {
    let Some(digest) = shared.store.resolve_tag(name, tag).await? else {
        return Ok(None);
    };
    let ttl = target.upstream.ttl;
    let fresh = if shared.read_only {
        true
    } else if target.local_first() {
        // Not fetched by this process: pushed here, and local content wins.
        proxy.is_fresh(key, ttl).unwrap_or(true)
    } else {
        let checked = shared.store.tag_modified(name, tag).await?;
        // A time ahead of this clock (another replica's) counts as just checked.
        checked.is_some_and(|at| at.elapsed().map_or(true, |age| age < ttl))
    };
    Ok(fresh.then_some(digest))
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
    target.expect_found(
        shared,
        response.status(),
        ErrorCode::ManifestUnknown,
        "a manifest GET",
    )?;
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
