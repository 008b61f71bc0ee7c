//! What the pages show about a manifest, read through the same [`Store`]
//! calls as the API handlers: a manifest's kind, size and platforms, its
//! referrers, and an image's config.
//!
//! Every read is bounded: manifests by the store (4 MiB at push), configs by
//! [`MAX_CONFIG_BYTES`], index children by [`MAX_CHILDREN`].

use std::collections::BTreeMap;

use futures::TryStreamExt;
use registry_core::manifest::{self, Descriptor, Manifest, ManifestKind};
use registry_core::{Digest, RepoName};
use registry_storage::Store;
use serde::Deserialize;

use crate::http_error::ApiError;

/// Configs larger than this are not read (they are JSON of a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Children of an index read for its summary (sizes, platforms).
pub const MAX_CHILDREN: usize = 64;

/// A manifest as the page shows it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest itself, validated.
    pub manifest: Manifest,
    /// Bytes of the manifest document.
    pub manifest_size: u64,
    /// Config and layers (an image) or every child's (an index), as declared.
    pub size: u64,
    /// `os/arch[/variant]` of an image, or each child of an index.
    pub platforms: Vec<Platform>,
}

/// A platform, and for an index the child manifest that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux/arm64/v8` and the like.
    pub name: String,
    /// The child manifest (index entries only).
    pub digest: Option<Digest>,
}

/// One referrer of a manifest (a signature, an SBOM, an attestation).
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The artifact type, or the media type when none is declared.
    pub artifact_type: String,
    /// The referrer's descriptor.
    pub descriptor: Descriptor,
}

/// An image config (image-spec `config.md`): the fields the page shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// When the image was created (RFC 3339, as written by the builder).
    pub created: Option<String>,
    /// Who made it.
    pub author: Option<String>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Architecture variant.
    pub variant: Option<String>,
    /// How to run it.
    pub config: RunConfig,
    /// How it was built, one entry per step.
    pub history: Vec<History>,
}

/// `config.config`: how a container of the image runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RunConfig {
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Env`, `NAME=value` each.
    pub env: Option<Vec<String>>,
    /// `Labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`.
    pub user: Option<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct History {
    /// When the step ran.
    pub created: Option<String>,
    /// The step's command.
    pub created_by: Option<String>,
    /// A note.
    pub comment: Option<String>,
    /// Whether the step made no layer.
    pub empty_layer: Option<bool>,
}

/// Why a manifest could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The repository has no such manifest.
    #[error("no such manifest")]
    Missing,
    /// The stored bytes do not validate (pushed before a rule existed, or damaged).
    #[error("the stored manifest does not validate: {0}")]
    Invalid(String),
    /// Storage failed.
    #[error("storage: {0:?}")]
    Api(ApiError),
}

impl From<ApiError> for InspectError {
    fn from(e: ApiError) -> Self {
        InspectError::Api(e)
    }
}

impl From<registry_storage::StorageError> for InspectError {
    fn from(e: registry_storage::StorageError) -> Self {
        InspectError::Api(e.into())
    }
}

/// Reads and validates one manifest of `repo`.
pub async fn manifest(
    store: &Store,
    repo: &RepoName,
    digest: &Digest,
) -> Result<(Manifest, u64), InspectError> {
    let stored = store
        .get_manifest(repo, digest)
        .await?
        .ok_or(InspectError::Missing)?;
    let parsed = manifest::validate(Some(&stored.media_type), &stored.bytes)
        .map_err(|e| InspectError::Invalid(e.to_string()))?;
    Ok((parsed, stored.bytes.len() as u64))
}

/// The summary of one manifest: for an index, its children are read too
/// (at most [`MAX_CHILDREN`]) for their sizes; an image's platform comes
/// from its config.
pub async fn summarize(
    store: &Store,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Summary, InspectError> {
    let (manifest, manifest_size) = self::manifest(store, repo, digest).await?;
    let (size, platforms) = match manifest.kind {
        ManifestKind::Image => {
            let size = image_size(&manifest);
            let platform = match &manifest.config {
                Some(config) => read_config(store, repo, config)
                    .await?
                    .and_then(|c| platform_of_config(&c))
                    .map(|name| Platform { name, digest: None }),
                None => None,
            };
            (size, platform.into_iter().collect())
        }
        ManifestKind::Index => {
            let mut size = 0;
            let mut platforms = Vec::new();
            for child in manifest.manifests.iter().take(MAX_CHILDREN) {
                size += match self::manifest(store, repo, &child.digest).await {
                    Ok((m, _)) => image_size(&m),
                    Err(InspectError::Api(e)) => return Err(e.into()),
                    Err(_) => 0,
                };
                if let Some(name) = child.platform.as_ref().and_then(platform_of_descriptor) {
                    platforms.push(Platform {
                        name,
                        digest: Some(child.digest.clone()),
                    });
                }
            }
            (size, platforms)
        }
    };
    Ok(Summary {
        digest: digest.clone(),
        manifest,
        manifest_size,
        size,
        platforms,
    })
}

/// Config plus layers, as the manifest declares them (compressed sizes, what
/// a pull downloads).
pub fn image_size(manifest: &Manifest) -> u64 {
    manifest.config.iter().map(|c| c.size).sum::<u64>()
        + manifest.layers.iter().map(|l| l.size).sum::<u64>()
}

/// The referrers of `digest` in `repo`, sorted by artifact type.
pub async fn referrers(
    store: &Store,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Vec<Referrer>, ApiError> {
    let mut found: Vec<Referrer> = store
        .list_referrers(repo, digest)
        .await?
        .iter()
        .filter_map(|raw| serde_json::from_slice::<Descriptor>(raw).ok())
        .map(|descriptor| Referrer {
            artifact_type: descriptor
                .artifact_type
                .clone()
                .unwrap_or_else(|| descriptor.media_type.clone()),
            descriptor,
        })
        .collect();
    found.sort_by(|a, b| a.artifact_type.cmp(&b.artifact_type));
    Ok(found)
}

/// The image config, when it is linked into `repo`, small enough and JSON
/// of the expected shape; `None` otherwise (the page says it cannot show it).
pub async fn read_config(
    store: &Store,
    repo: &RepoName,
    config: &Descriptor,
) -> Result<Option<ImageConfig>, ApiError> {
    let Some(size) = store.repo_blob_size(repo, &config.digest).await? else {
        return Ok(None);
    };
    if size > MAX_CONFIG_BYTES {
        return Ok(None);
    }
    let chunks: Vec<bytes::Bytes> = store
        .read_blob(&config.digest, 0, Some(size))
        .await?
        .try_collect()
        .await
        .map_err(|e| ApiError::Internal(format!("reading config {}: {e}", config.digest)))?;
    Ok(serde_json::from_slice(&chunks.concat()).ok())
}

fn platform_of_config(config: &ImageConfig) -> Option<String> {
    let (os, arch) = (config.os.as_deref()?, config.architecture.as_deref()?);
    Some(join_platform(os, arch, config.variant.as_deref()))
}

fn platform_of_descriptor(platform: &serde_json::Value) -> Option<String> {
    let field = |name: &str| platform.get(name).and_then(|v| v.as_str());
    Some(join_platform(
        field("os")?,
        field("architecture")?,
        field("variant"),
    ))
}

fn join_platform(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_from_descriptors() {
        let p = serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v7"});
        assert_eq!(platform_of_descriptor(&p).as_deref(), Some("linux/arm/v7"));
        let p = serde_json::json!({"os": "linux"});
        assert_eq!(platform_of_descriptor(&p), None);
    }

    #[test]
    fn config_fields_parse_leniently() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Labels":{"k":"v"}},"history":[{"created_by":"x"}],"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(platform_of_config(&c).as_deref(), Some("linux/amd64"));
        assert_eq!(c.config.env, Some(vec!["A=1".to_owned()]));
        assert_eq!(c.history[0].created_by.as_deref(), Some("x"));
    }
}
