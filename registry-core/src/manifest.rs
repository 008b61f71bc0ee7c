//! Manifest validation: the four manifest media types, their descriptors,
//! `subject` and `artifactType`, and the referrers index.
//!
//! The registry stores and digests a manifest as the bytes received; this
//! module only reads them to decide whether they are acceptable and which
//! blobs and manifests they reference. Nothing is ever re-serialized.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{ErrorCode, RegistryError};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest accepted; the spec asks registries to take at least 4 MiB.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Layer media types that may live outside the registry (`urls`), so their
/// blobs need not be pushed.
const FOREIGN_LAYERS: [&str; 4] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// A content descriptor (image-spec `descriptor.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// REQUIRED: the media type of the referenced content.
    pub media_type: String,
    /// REQUIRED: the digest of the targeted content.
    pub digest: Digest,
    /// REQUIRED: the size, in bytes, of the raw content.
    pub size: u64,
    /// OPTIONAL: URLs the content may be downloaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// OPTIONAL: arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// OPTIONAL: the type of an artifact when the descriptor points to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// OPTIONAL: the platform, for index entries; kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    fn is_foreign(&self) -> bool {
        FOREIGN_LAYERS.contains(&self.media_type.as_str())
            && self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

/// Whether a manifest describes one image or a set of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// OCI image manifest or Docker schema 2 manifest.
    Image,
    /// OCI image index or Docker manifest list.
    Index,
}

/// A validated manifest: what it is and what it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// One of the four supported media types.
    pub media_type: &'static str,
    /// Image or index.
    pub kind: ManifestKind,
    /// The config blob (images only).
    pub config: Option<Descriptor>,
    /// Layer blobs (images only).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes only).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    pub subject: Option<Descriptor>,
    /// The artifact type declared by the manifest itself.
    pub artifact_type: Option<String>,
    /// Manifest annotations, copied into referrers listings.
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestInvalid).with_message(message)
}

/// The error for a manifest body over [`MAX_MANIFEST_BYTES`] (413).
pub fn too_large() -> RegistryError {
    RegistryError::new(ErrorCode::SizeInvalid)
        .with_status(413)
        .with_message(format!(
            "manifest exceeds the {MAX_MANIFEST_BYTES} byte limit"
        ))
}

fn known(media_type: &str) -> Option<(&'static str, ManifestKind)> {
    [
        (OCI_MANIFEST, ManifestKind::Image),
        (DOCKER_MANIFEST, ManifestKind::Image),
        (OCI_INDEX, ManifestKind::Index),
        (DOCKER_LIST, ManifestKind::Index),
    ]
    .into_iter()
    .find(|(t, _)| *t == media_type)
}

/// Strips parameters and whitespace: `application/json; charset=utf-8`
/// becomes `application/json`.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Content types that say nothing about which manifest this is.
fn generic(content_type: &str) -> bool {
    matches!(
        content_type,
        "" | "application/json" | "application/octet-stream"
    )
}

/// Validates a pushed manifest.
///
/// The media type comes from `Content-Type`; when the body carries
/// `mediaType` too, the two must agree. A generic or missing content type
/// falls back to the body's `mediaType`, then to the shape of the document.
pub fn validate(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, RegistryError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| invalid(format!("manifest is not valid: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let header = content_type.map(essence).unwrap_or("");
    let (media_type, kind) = if generic(header) {
        match raw.media_type.as_deref() {
            Some(t) => {
                known(t).ok_or_else(|| invalid(format!("unsupported manifest media type {t:?}")))?
            }
            None if raw.manifests.is_some() => (OCI_INDEX, ManifestKind::Index),
            None if raw.config.is_some() => (OCI_MANIFEST, ManifestKind::Image),
            None => {
                return Err(invalid(
                    "cannot tell the manifest type: no mediaType, config or manifests",
                ))
            }
        }
    } else {
        let found = known(header)
            .ok_or_else(|| invalid(format!("unsupported manifest media type {header:?}")))?;
        if let Some(body_type) = raw.media_type.as_deref() {
            if body_type != found.0 {
                return Err(invalid(format!(
                    "Content-Type {header:?} does not match the manifest's mediaType {body_type:?}"
                )));
            }
        }
        found
    };
    let manifest = match kind {
        ManifestKind::Image => {
            if raw.manifests.is_some() {
                return Err(invalid("an image manifest must not have manifests"));
            }
            let config = raw
                .config
                .ok_or_else(|| invalid("an image manifest needs a config"))?;
            let layers = raw
                .layers
                .ok_or_else(|| invalid("an image manifest needs layers"))?;
            Manifest {
                media_type,
                kind,
                config: Some(config),
                layers,
                manifests: Vec::new(),
                subject: raw.subject,
                artifact_type: raw.artifact_type,
                annotations: raw.annotations,
            }
        }
        ManifestKind::Index => {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(invalid("an index must not have config or layers"));
            }
            let manifests = raw
                .manifests
                .ok_or_else(|| invalid("an index needs manifests"))?;
            Manifest {
                media_type,
                kind,
                config: None,
                layers: Vec::new(),
                manifests,
                subject: raw.subject,
                artifact_type: raw.artifact_type,
                annotations: raw.annotations,
            }
        }
    };
    Ok(manifest)
}

impl Manifest {
    /// Blobs that must already be in the repository: the config and every
    /// layer except foreign ones. An index references manifests instead,
    /// which may be pushed later (a sparse index is allowed).
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| !l.is_foreign()))
    }

    /// The artifact type shown in referrers listings: `artifactType`, else
    /// the config's media type for an image manifest.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }

    /// The descriptor of this manifest as listed by the referrers API.
    pub fn referrer_descriptor(&self, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_owned(),
            digest,
            size,
            urls: None,
            annotations: self.annotations.clone(),
            artifact_type: self.effective_artifact_type().map(str::to_owned),
            platform: None,
        }
    }
}

/// The body of a referrers response: an OCI index of `referrers`, keeping
/// only those whose artifact type equals `filter` when one is given.
pub fn referrers_index(referrers: Vec<Descriptor>, filter: Option<&str>) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u8,
        media_type: &'static str,
        manifests: Vec<Descriptor>,
    }
    let manifests = referrers
        .into_iter()
        .filter(|d| filter.is_none_or(|f| d.artifact_type.as_deref() == Some(f)))
        .collect();
    let index = Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    };
    serde_json::to_vec(&index).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests;
