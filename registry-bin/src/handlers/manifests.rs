//! Manifests: push, pull by tag or digest, delete.
//!
//! Bytes are stored and served exactly as pushed; the digest is computed
//! over those bytes, never over a re-serialization.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use registry_core::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use registry_core::route::manifest_url;
use registry_core::{Algorithm, Digest, ErrorCode, Reference, RegistryError, RepoName, Tag};

use crate::body::{read_limited, RequestBody};
use crate::handlers::{content_length, header, noted};
use crate::http_error::{ApiError, ApiResult};
use crate::notify::event::references;
use crate::notify::Happened;
use crate::registry::Shared;
use crate::reply::Reply;

/// Resolves a reference to a digest in `name`.
async fn resolve(
    shared: &Shared,
    name: &RepoName,
    reference: &Reference,
) -> Result<Digest, ApiError> {
    match reference {
        Reference::Digest(d) => Ok(d.clone()),
        Reference::Tag(t) => shared
            .store
            .resolve_tag(name, t)
            .await?
            .ok_or_else(|| ErrorCode::ManifestUnknown.into()),
    }
}

/// `GET|HEAD /v2/<name>/manifests/<reference>`: the stored bytes with the
/// stored media type and `Docker-Content-Digest`.
pub async fn get(shared: &Shared, name: &RepoName, reference: &Reference, head: bool) -> ApiResult {
    let digest = resolve(shared, name, reference).await?;
    let stored = shared
        .store
        .get_manifest(name, &digest)
        .await?
        .ok_or(ErrorCode::ManifestUnknown)?;
    let bytes = stored.bytes.clone();
    let reply = Reply::bytes(StatusCode::OK, &stored.media_type, stored.bytes)
        .header("docker-content-digest", &digest.to_string())
        .header("etag", &format!("\"{digest}\""));
    // Distribution reports HEAD as a pull too.
    let reply = noted(shared, reply, || Happened::ManifestPulled {
        repository: name.clone(),
        digest: digest.clone(),
        size: bytes.len() as u64,
        tag: match reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        },
        references: match shared.references_wanted() {
            true => manifest::validate(Some(&stored.media_type), &bytes)
                .map(|m| references(&m))
                .unwrap_or_default(),
            false => Vec::new(),
        },
        media_type: stored.media_type,
    });
    Ok(if head { reply.without_body() } else { reply })
}

/// `PUT /v2/<name>/manifests/<reference>[?tag=...]`.
///
/// The manifest must be valid and every blob it needs must already be in
/// the repository; all missing blobs are reported at once. A `subject` and
/// the children of an index may be pushed later.
pub async fn put(
    shared: &Shared,
    headers: &HeaderMap,
    body: &mut RequestBody,
    name: &RepoName,
    reference: &Reference,
    extra_tags: &[Tag],
) -> ApiResult {
    if content_length(headers).is_some_and(|len| len > MAX_MANIFEST_BYTES as u64) {
        return Err(manifest::too_large().into());
    }
    let bytes = read_limited(body, MAX_MANIFEST_BYTES, shared.body_timeout)
        .await
        .map_err(|e| {
            RegistryError::new(ErrorCode::ManifestInvalid)
                .with_message(format!("reading the body: {e}"))
        })?
        .ok_or_else(manifest::too_large)?;
    let parsed = manifest::validate(header(headers, "content-type"), &bytes)?;
    let digest = match reference {
        Reference::Digest(claimed) => {
            let actual = Digest::of(claimed.algorithm(), &bytes);
            if &actual != claimed {
                return Err(RegistryError::new(ErrorCode::DigestInvalid)
                    .with_message(format!("manifest hashes to {actual}, not {claimed}"))
                    .into());
            }
            actual
        }
        Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
    };
    check_blobs(shared, name, &parsed).await?;
    // An index may name manifests pushed earlier and untagged since: claimed, so a
    // garbage collection pass that found them untagged cannot delete them under it.
    let children: Vec<Digest> = parsed.manifests.iter().map(|m| m.digest.clone()).collect();
    shared.store.claim_manifests(name, &children).await?;
    let size = bytes.len() as u64;
    store(shared, name, &digest, &parsed, bytes).await?;

    let mut reply = Reply::empty(StatusCode::CREATED)
        .header(
            "location",
            &manifest_url(name, &Reference::Digest(digest.clone())),
        )
        .header("docker-content-digest", &digest.to_string());
    let tags = match reference {
        Reference::Tag(t) => std::iter::once(t).chain(extra_tags).collect::<Vec<_>>(),
        Reference::Digest(_) => extra_tags.iter().collect(),
    };
    for tag in &tags {
        shared.store.put_tag(name, tag, &digest).await?;
        if extra_tags.contains(tag) {
            reply = reply.append_header("oci-tag", tag.as_str());
        }
    }
    if let Some(subject) = &parsed.subject {
        reply = reply.header("oci-subject", &subject.digest.to_string());
    }
    Ok(noted(shared, reply, || Happened::ManifestPushed {
        repository: name.clone(),
        digest,
        media_type: parsed.media_type.to_owned(),
        size,
        tags: tags.into_iter().cloned().collect(),
        references: match shared.references_wanted() {
            true => references(&parsed),
            false => Vec::new(),
        },
    }))
}

/// Blob lookups of one manifest that run at once.
const CONCURRENT_LOOKUPS: usize = 16;

/// Fails with one MANIFEST_BLOB_UNKNOWN per missing blob. Lookups run
/// `CONCURRENT_LOOKUPS` at a time.
async fn check_blobs(shared: &Shared, name: &RepoName, parsed: &Manifest) -> Result<(), ApiError> {
    let blobs: Vec<_> = parsed.required_blobs().collect();
    let mut sizes = Vec::with_capacity(blobs.len());
    for group in blobs.chunks(CONCURRENT_LOOKUPS) {
        let lookups = group
            .iter()
            .map(|blob| shared.store.repo_blob_size(name, &blob.digest));
        sizes.extend(futures::future::join_all(lookups).await);
    }
    let mut missing = Vec::new();
    for (blob, size) in blobs.iter().zip(sizes) {
        if size?.is_none() {
            missing.push(
                RegistryError::new(ErrorCode::ManifestBlobUnknown)
                    .with_message(format!("blob unknown to registry: {}", blob.digest))
                    .with_detail(serde_json::json!({ "digest": blob.digest })),
            );
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Spec(missing))
    }
}

/// Writes the manifest and, when it has a subject, its referrers entry.
pub(crate) async fn store(
    shared: &Shared,
    name: &RepoName,
    digest: &Digest,
    parsed: &Manifest,
    bytes: Bytes,
) -> Result<(), ApiError> {
    shared
        .store
        .put_validated_manifest(name, digest, parsed, bytes)
        .await?;
    Ok(())
}

/// `DELETE /v2/<name>/manifests/<reference>`: by digest removes the manifest
/// and the tags pointing at it; by tag removes only the tag (spec 1.1).
pub async fn delete(shared: &Shared, name: &RepoName, reference: &Reference) -> ApiResult {
    if !shared.delete_enabled {
        return Err(ErrorCode::Unsupported.into());
    }
    let (deleted, happened) = match reference {
        Reference::Tag(tag) => (
            shared.store.delete_tag(name, tag).await?,
            Happened::TagDeleted {
                repository: name.clone(),
                tag: tag.clone(),
            },
        ),
        Reference::Digest(digest) => {
            let subject = match shared.store.get_manifest(name, digest).await? {
                Some(stored) => manifest::validate(Some(&stored.media_type), &stored.bytes)
                    .ok()
                    .and_then(|m| m.subject)
                    .map(|s| s.digest),
                None => return Err(ErrorCode::ManifestUnknown.into()),
            };
            // The tags the delete removes, for their events (read only when notifying).
            let tags = match shared.notifying() {
                true => tags_of(shared, name, digest).await?,
                false => Vec::new(),
            };
            let deleted = shared
                .store
                .delete_manifest(name, digest, subject.as_ref())
                .await?;
            let happened = Happened::ManifestDeleted {
                repository: name.clone(),
                digest: digest.clone(),
                tags,
            };
            (deleted, happened)
        }
    };
    if deleted {
        Ok(noted(shared, Reply::empty(StatusCode::ACCEPTED), || {
            happened
        }))
    } else {
        Err(ErrorCode::ManifestUnknown.into())
    }
}

/// The tags of `name` that point at `digest`.
async fn tags_of(shared: &Shared, name: &RepoName, digest: &Digest) -> Result<Vec<Tag>, ApiError> {
    let mut tags = Vec::new();
    for tag in shared.store.list_tags(name).await?.unwrap_or_default() {
        let Ok(tag) = tag.parse::<Tag>() else {
            continue;
        };
        if shared.store.resolve_tag(name, &tag).await?.as_ref() == Some(digest) {
            tags.push(tag);
        }
    }
    Ok(tags)
}
