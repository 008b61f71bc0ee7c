//! A check of a filesystem storage root that reads the tree directly (not
//! through the registry's code), for after passes were killed: every tag
//! names a manifest the repository has, and every manifest revision has its
//! bytes and every blob and child it names.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::client::sha256;
use crate::disk;

/// What the walk found.
#[derive(Debug, Default)]
pub struct Findings {
    pub repositories: usize,
    pub tags: usize,
    pub manifests: usize,
    /// Each broken reference, in words.
    pub problems: Vec<String>,
}

fn blob_path(root: &Path, digest: &str) -> Option<std::path::PathBuf> {
    let (alg, hex) = digest.split_once(':')?;
    Some(root.join(format!("v1/blobs/{alg}/{}/{hex}/data", hex.get(..2)?)))
}

/// `<alg>/<hex>` of a digest, the shape of link keys.
fn link_path(digest: &str) -> String {
    digest.replacen(':', "/", 1)
}

/// Walks every repository under `root`.
pub fn check(root: &Path) -> Findings {
    let repos_root = root.join("v1/repositories");
    let mut findings = Findings::default();
    let names: BTreeSet<String> = disk::files(&repos_root)
        .iter()
        .filter_map(|rel| {
            let text = rel.to_string_lossy();
            let (name, _) = text.split_once("/_manifests/")?;
            Some(name.to_owned())
        })
        .collect();
    for name in names {
        findings.repositories += 1;
        check_repository(root, &repos_root.join(&name), &name, &mut findings);
    }
    findings
}

fn check_repository(root: &Path, repo: &Path, name: &str, findings: &mut Findings) {
    let problems = &mut findings.problems;
    let tags = repo.join("_manifests/tags");
    for rel in disk::files(&tags).into_iter().filter(|r| !disk::is_temp(r)) {
        findings.tags += 1;
        let Ok(digest) = std::fs::read_to_string(tags.join(&rel)) else {
            continue; // deleted meanwhile
        };
        let digest = digest.trim();
        let tag = rel.display();
        if !repo
            .join("_manifests/revisions")
            .join(link_path(digest))
            .is_file()
        {
            problems.push(format!("{name}:{tag} names {digest}, not a revision here"));
        }
        if !blob_path(root, digest).is_some_and(|p| p.is_file()) {
            problems.push(format!("{name}:{tag} names {digest}, whose bytes are gone"));
        }
    }
    let revisions = repo.join("_manifests/revisions");
    for rel in disk::files(&revisions)
        .into_iter()
        .filter(|r| !disk::is_temp(r))
    {
        findings.manifests += 1;
        let digest = rel.to_string_lossy().replacen('/', ":", 1);
        let Some(bytes) = blob_path(root, &digest).and_then(|p| std::fs::read(p).ok()) else {
            problems.push(format!("{name}@{digest}: revision without bytes"));
            continue;
        };
        if sha256(&bytes) != digest {
            problems.push(format!("{name}@{digest}: bytes hash to {}", sha256(&bytes)));
            continue;
        }
        let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
            problems.push(format!("{name}@{digest}: not JSON"));
            continue;
        };
        let blobs = std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().into_iter().flatten())
            .filter_map(|d| d["digest"].as_str());
        for blob in blobs {
            if !repo.join("_layers").join(link_path(blob)).is_file() {
                problems.push(format!("{name}@{digest} names {blob}, not linked here"));
            }
            if !blob_path(root, blob).is_some_and(|p| p.is_file()) {
                problems.push(format!("{name}@{digest} names {blob}, whose data is gone"));
            }
        }
        for child in manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["digest"].as_str())
        {
            if !revisions.join(link_path(child)).is_file() {
                problems.push(format!("{name}@{digest} names child {child}, not here"));
            }
        }
    }
}
