//! `GET /v2/<name>/referrers/<digest>`: manifests whose `subject` is the digest.

use http::StatusCode;
use registry_core::manifest::{referrers_index, Descriptor, OCI_INDEX};
use registry_core::{Digest, RepoName};

use crate::http_error::ApiResult;
use crate::registry::Shared;
use crate::reply::Reply;

/// Answers an OCI index of the referrers, filtered by `artifactType` when
/// asked (and then says so in `OCI-Filters-Applied`). An unknown subject
/// has no referrers: 200 with an empty list, as the spec requires.
pub async fn list(
    shared: &Shared,
    name: &RepoName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> ApiResult {
    let entries = shared.store.list_referrers(name, subject).await?;
    let descriptors: Vec<Descriptor> = entries
        .iter()
        .filter_map(|raw| match serde_json::from_slice(raw) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(repository = %name, %subject, error = %e, "skipping an unreadable referrer entry");
                None
            }
        })
        .collect();
    let reply = Reply::bytes(
        StatusCode::OK,
        OCI_INDEX,
        referrers_index(descriptors, artifact_type),
    );
    Ok(match artifact_type {
        Some(_) => reply.header("oci-filters-applied", "artifactType"),
        None => reply,
    })
}
