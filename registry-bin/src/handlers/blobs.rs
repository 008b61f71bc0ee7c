//! Blob reads and deletes.

use http::{HeaderMap, StatusCode};
use registry_core::range::{ByteRange, Unsatisfiable};
use registry_core::{Digest, ErrorCode, RegistryError, RepoName};

use crate::handlers::{header, noted};
use crate::http_error::{ApiError, ApiResult};
use crate::notify::Happened;
use crate::registry::Shared;
use crate::reply::Reply;

/// `GET|HEAD /v2/<name>/blobs/<digest>` with optional `Range: bytes=a-b`.
///
/// The blob streams from storage in large chunks; memory does not grow with
/// its size. A `bytes=` range that is malformed or inverted (`bytes=500-0`) is
/// answered 416, as RFC 9110 allows, the standard registry does and the OCI
/// conformance suite expects; a range in another unit, or several ranges, get
/// the whole blob.
pub async fn get(
    shared: &Shared,
    headers: &HeaderMap,
    name: &RepoName,
    digest: &Digest,
    head: bool,
) -> ApiResult {
    let size = shared
        .store
        .repo_blob_size(name, digest)
        .await?
        .ok_or(ErrorCode::BlobUnknown)?;
    let pulled = || Happened::BlobPulled {
        repository: name.clone(),
        digest: digest.clone(),
        size,
    };
    if let Some(url) = shared
        .redirect
        .filter(|_| !head)
        .and_then(|expires| shared.store.blob_url(digest, expires))
    {
        // The store answers the GET (and its Range) itself.
        let reply = Reply::empty(StatusCode::TEMPORARY_REDIRECT)
            .header("location", &url)
            .header("docker-content-digest", &digest.to_string());
        return Ok(noted(shared, reply, pulled));
    }
    let requested = match header(headers, "range").map(ByteRange::parse) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(range))) => Some(range.resolve(size)),
        Some(Err(_)) => Some(Err(Unsatisfiable)),
    };
    let (status, start, len) = match requested {
        None => (StatusCode::OK, 0, size),
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(Err(_)) => {
            return Err(ApiError::WithHeaders(
                RegistryError::new(ErrorCode::BlobUnknown)
                    .with_status(416)
                    .with_message(format!("range not satisfiable for a blob of {size} bytes")),
                vec![("content-range", format!("bytes */{size}"))],
            ))
        }
    };
    let reply = if head {
        Reply::empty(status)
    } else {
        Reply::stream(
            status,
            shared.store.read_blob(digest, start, Some(len)).await?,
        )
    };
    let mut reply = reply
        .header("content-length", &len.to_string())
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", &digest.to_string())
        .header("accept-ranges", "bytes")
        .header("etag", &format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        reply = reply.header("content-range", &format!("bytes {start}-{end}/{size}"));
    }
    // Distribution reports HEAD and ranges as pulls of the whole blob.
    Ok(noted(shared, reply, pulled))
}

/// `DELETE /v2/<name>/blobs/<digest>`: removes the blob from the repository.
/// Its bytes stay while other repositories or manifests use them.
pub async fn delete(shared: &Shared, name: &RepoName, digest: &Digest) -> ApiResult {
    if !shared.delete_enabled {
        return Err(ErrorCode::Unsupported.into());
    }
    if shared.store.unlink_blob(name, digest).await? {
        let reply = Reply::empty(StatusCode::ACCEPTED);
        Ok(noted(shared, reply, || Happened::BlobDeleted {
            repository: name.clone(),
            digest: digest.clone(),
        }))
    } else {
        Err(ErrorCode::BlobUnknown.into())
    }
}
