//! Image contents and what clients do with them: pushes (every blob, then
//! the manifest), and pulls that hash every byte they receive.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::client::{self, sha256, Client, OCI_INDEX, OCI_MANIFEST};

/// A blob's bytes and digest.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub data: Arc<Vec<u8>>,
}

impl Blob {
    pub fn new(data: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&data),
            data: Arc::new(data),
        }
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// An image manifest with its config and layers (or, for an index, its
/// children's manifests only: `blobs` is empty).
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Option<Blob>,
    pub layers: Vec<Blob>,
    pub media_type: &'static str,
    pub manifest: String,
    pub digest: String,
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

impl Image {
    /// An OCI image manifest over `config` and `layers`.
    pub fn new(config: Blob, layers: Vec<Blob>) -> Image {
        let pairs: Vec<(String, usize)> = layers
            .iter()
            .map(|l| (l.digest.clone(), l.data.len()))
            .collect();
        let manifest = client::image_manifest((&config.digest, config.data.len()), &pairs);
        Image::from_manifest(Some(config), layers, OCI_MANIFEST, manifest)
    }

    /// An artifact (a signature) whose `subject` is `subject`.
    pub fn referrer(config: Blob, layer: Blob, subject: &Image) -> Image {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": descriptor("application/vnd.oci.empty.v1+json", &config.digest, config.len()),
            "layers": [descriptor("application/vnd.example.signature.v1", &layer.digest, layer.len())],
            "subject": descriptor(subject.media_type, &subject.digest, subject.manifest.len() as u64),
        })
        .to_string();
        Image::from_manifest(Some(config), vec![layer], OCI_MANIFEST, manifest)
    }

    /// An OCI index of `children` (pushed before it, by digest).
    pub fn index(children: &[&Image]) -> Image {
        let manifests: Vec<Value> = children
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut d = descriptor(c.media_type, &c.digest, c.manifest.len() as u64);
                let architecture = ["amd64", "arm64"][i % 2];
                d["platform"] = json!({"os": "linux", "architecture": architecture});
                d
            })
            .collect();
        let manifest =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string();
        Image::from_manifest(None, Vec::new(), OCI_INDEX, manifest)
    }

    fn from_manifest(
        config: Option<Blob>,
        layers: Vec<Blob>,
        media_type: &'static str,
        manifest: String,
    ) -> Image {
        Image {
            digest: sha256(manifest.as_bytes()),
            config,
            layers,
            media_type,
            manifest,
        }
    }

    /// The config and the layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.config.iter().chain(&self.layers)
    }

    /// Every object a pull of this manifest reads (its own bytes included):
    /// digest to size.
    pub fn objects(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> =
            self.blobs().map(|b| (b.digest.clone(), b.len())).collect();
        out.insert(self.digest.clone(), self.manifest.len() as u64);
        out
    }

    /// Pushes every blob in one POST each, then the manifest under `reference`.
    pub async fn push(&self, client: &Client, repo: &str, reference: &str) {
        for blob in self.blobs() {
            client.push_monolithic(repo, &blob.data).await.unwrap();
        }
        let digest = client
            .put_manifest_as(repo, reference, self.media_type, &self.manifest)
            .await
            .unwrap();
        assert_eq!(digest, self.digest);
    }
}

/// Pulls `repo@digest` as a client does, and checks every byte: the manifest
/// hashes to `digest`; every blob it names (and every child of an index,
/// recursively) hashes to its digest and has its declared size. Blobs
/// already hashed in this repository (`seen`) are only HEADed. Returns the
/// objects read: digest to size.
pub async fn pull_verified(
    client: &Client,
    repo: &str,
    digest: &str,
    seen: &mut HashSet<(String, String)>,
) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![digest.to_owned()];
    while let Some(digest) = pending.pop() {
        let (bytes, header) = client
            .get_manifest(repo, &digest)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{repo}@{digest}: manifest missing"))?;
        if sha256(&bytes) != digest || header != digest {
            return Err(format!(
                "{repo}@{digest}: read bytes hashing to {} (header {header})",
                sha256(&bytes)
            ));
        }
        out.insert(digest.clone(), bytes.len() as u64);
        let manifest: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{repo}@{digest}: not JSON: {e}"))?;
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            pending.push(child["digest"].as_str().unwrap_or_default().to_owned());
        }
        let blobs = manifest["config"]
            .is_object()
            .then(|| manifest["config"].clone())
            .into_iter()
            .chain(manifest["layers"].as_array().cloned().unwrap_or_default());
        for descriptor in blobs {
            let blob = descriptor["digest"].as_str().unwrap_or_default().to_owned();
            let size = descriptor["size"].as_u64().unwrap_or(u64::MAX);
            verify_blob(client, repo, &blob, size, seen)
                .await
                .map_err(|e| format!("{repo}@{digest} names {blob}: {e}"))?;
            out.insert(blob, size);
        }
    }
    Ok(out)
}

/// GETs and hashes a blob the first time it is seen in `repo`, HEADs it after.
async fn verify_blob(
    client: &Client,
    repo: &str,
    digest: &str,
    size: u64,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), String> {
    let key = (repo.to_owned(), digest.to_owned());
    if seen.contains(&key) {
        return match client
            .head_blob(repo, digest)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(len) if len == size => Ok(()),
            Some(len) => Err(format!("HEAD says {len} bytes, not {size}")),
            None => Err("missing (HEAD 404)".into()),
        };
    }
    let bytes = client
        .get_blob(repo, digest)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("missing (GET 404)")?;
    if sha256(&bytes) != digest || bytes.len() as u64 != size {
        return Err(format!(
            "{} bytes hashing to {}, not {size}",
            bytes.len(),
            sha256(&bytes)
        ));
    }
    seen.insert(key);
    Ok(())
}
