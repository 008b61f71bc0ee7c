//! Route to handler: the one table that says which function answers which
//! endpoint.

use http::{HeaderMap, StatusCode};
use registry_auth::Identity;
use registry_core::route::UploadStart;
use registry_core::Route;

use crate::access::too_many;

use crate::body::RequestBody;
use crate::handlers::{base, blobs, listing, manifests, referrers, uploads};
use crate::http_error::ApiResult;
use crate::registry::Shared;
use crate::reply::Reply;

/// Runs the handler of an authorized route.
pub async fn run(
    shared: &Shared,
    identity: &Identity,
    headers: &HeaderMap,
    body: &mut RequestBody,
    route: &Route,
) -> ApiResult {
    // Requests that stream a blob into storage take a slot; when none is
    // free the client is asked to come back (429) rather than queued.
    let streams = matches!(
        route,
        Route::UploadPatch { .. }
            | Route::UploadPut { .. }
            | Route::UploadStart {
                start: UploadStart::Monolithic { .. },
                ..
            }
    );
    // Pulls of proxied repositories, and refused writes under a cache's prefix.
    if let Some(result) = crate::proxy::intercept(shared, headers, route).await {
        return result;
    }
    let _slot = match streams {
        true => Some(shared.upload_slots.try_acquire().map_err(|_| too_many(1))?),
        false => None,
    };
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
