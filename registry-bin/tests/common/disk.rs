//! Checks of a filesystem storage root, independent of the registry's code:
//! every blob file hashes to its name, and what temporary or upload files
//! remain.
//!
//! Included with `#[path = "common/disk.rs"] mod disk;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256, Sha512};

/// Every file under `root`, relative to it, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue; // removed meanwhile
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path.strip_prefix(root).unwrap_or(&path).to_owned()),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Whether a path's last component is a backend temporary file.
pub fn is_temp(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
}

/// Whether a path lies inside some repository's `_uploads`.
pub fn is_upload(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "_uploads")
}

/// Remembers blob files already hashed, by identity (inode, size, mtime),
/// so repeated checks hash only what changed.
#[derive(Debug, Default)]
pub struct BlobCheck {
    verified: HashMap<PathBuf, (u64, u64, i64, i64)>,
}

impl BlobCheck {
    /// Hashes every `v1/blobs/<alg>/<2 hex>/<hex>/data` under `root` not
    /// seen unchanged before. Returns the number of blob files and every
    /// problem: a file whose bytes do not hash to its name, a misplaced
    /// file, an unknown algorithm. Temporary files are skipped.
    pub fn run(&mut self, root: &Path) -> (usize, Vec<String>) {
        let blobs = root.join("v1/blobs");
        let mut problems = Vec::new();
        let mut count = 0;
        for rel in files(&blobs) {
            if is_temp(&rel) {
                continue;
            }
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let [alg, fan, hex, data] = &parts[..] else {
                problems.push(format!("unexpected file v1/blobs/{}", rel.display()));
                continue;
            };
            if data != "data" || !hex.starts_with(fan.as_str()) || fan.len() != 2 {
                problems.push(format!("misplaced blob file v1/blobs/{}", rel.display()));
                continue;
            }
            count += 1;
            let path = blobs.join(&rel);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // removed meanwhile
            };
            let identity = (meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec());
            if self.verified.get(&path) == Some(&identity) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let actual = match alg.as_str() {
                "sha256" => hex::encode(Sha256::digest(&bytes)),
                "sha512" => hex::encode(Sha512::digest(&bytes)),
                other => {
                    problems.push(format!("unknown algorithm {other} in {}", rel.display()));
                    continue;
                }
            };
            if &actual == hex {
                self.verified.insert(path, identity);
            } else {
                problems.push(format!(
                    "v1/blobs/{} holds {} bytes hashing to {alg}:{actual}",
                    rel.display(),
                    bytes.len()
                ));
            }
        }
        (count, problems)
    }
}
