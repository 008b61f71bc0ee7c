//! Start-up checks: every path the config names is usable before the
//! server accepts a connection, and a problem is one message naming the path
//! and what is wrong (not a bare "unsupported" at the first push).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A start-up problem with a path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PreflightError {
    /// The path.
    pub path: PathBuf,
    /// What is wrong, in words an operator can act on.
    pub problem: String,
}

fn fail(path: &Path, problem: impl Into<String>) -> PreflightError {
    PreflightError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Checks that the storage root exists or can be created, is a directory,
/// is writable, and supports fsync and rename (what every write relies on).
pub fn check_storage_root(root: &Path) -> Result<(), PreflightError> {
    if root.exists() && !root.is_dir() {
        return Err(fail(root, "the storage root exists but is not a directory"));
    }
    std::fs::create_dir_all(root)
        .map_err(|e| fail(root, format!("cannot create the storage root: {e}")))?;
    let probe = root.join(format!(".tmp-preflight-{}", std::process::id()));
    let renamed = root.join(format!(".tmp-preflight-{}-renamed", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&probe)
            .map_err(|e| fail(root, format!("storage root is not writable: {e}")))?;
        file.write_all(b"preflight")
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                fail(
                    root,
                    format!("cannot write and fsync a file in the storage root: {e}"),
                )
            })?;
        std::fs::rename(&probe, &renamed).map_err(|e| {
            fail(
                root,
                format!("cannot rename files in the storage root: {e}"),
            )
        })?;
        std::fs::File::open(root)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| {
                fail(
                    root,
                    format!("cannot fsync the storage root directory: {e}"),
                )
            })?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&probe);
    let _ = std::fs::remove_file(&renamed);
    result
}

/// Checks that a file the config names exists and is readable.
pub fn check_readable(what: &str, path: &Path) -> Result<(), PreflightError> {
    match std::fs::metadata(path) {
        Err(e) => Err(fail(path, format!("{what}: {e}"))),
        Ok(m) if m.is_dir() => Err(fail(path, format!("{what}: is a directory, not a file"))),
        Ok(_) => std::fs::File::open(path)
            .map(drop)
            .map_err(|e| fail(path, format!("{what}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_root_is_created_and_probed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        check_storage_root(&root).unwrap();
        assert!(root.is_dir());
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "no probe left behind"
        );
    }

    #[test]
    fn a_file_is_not_a_storage_root() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = check_storage_root(file.path()).unwrap_err().to_string();
        assert!(
            err.contains("not a directory") && err.contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn unreadable_files_are_named() {
        let err = check_readable("htpasswd file", Path::new("/nonexistent/htpasswd"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/htpasswd: htpasswd file: "),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = check_readable("TLS key", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
