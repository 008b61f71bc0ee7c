//! The synchronous file operations behind `FsBackend`, run on the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::backend::TEMP_PREFIX;

/// How often an operation that creates a file retries after a concurrent `delete` pruned
/// the directory it had just created. Each retry needs another delete to win the race.
const RETRIES: usize = 16;

/// A fresh temporary file name: hidden from `list`, refused as a key component.
pub(super) fn temp_name() -> String {
    format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// The directory holding `path` (every key path has one: it is under the root).
pub(super) fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "path has no parent"))
}

/// Creates `dir` and runs `create` (which makes a file in it), retrying when `create`
/// finds `dir` gone because a concurrent delete pruned it while it was still empty.
/// Also returns the directories it created, whose entries in their parents are not yet
/// durable (see [`sync_new_entries`]).
pub(super) fn in_dir<T>(
    dir: &Path,
    mut create: impl FnMut() -> io::Result<T>,
) -> io::Result<(T, Vec<PathBuf>)> {
    let mut made = Vec::new();
    let mut attempt = 0;
    loop {
        match create_dirs(dir, &mut made).and_then(|()| create()) {
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < RETRIES => attempt += 1,
            other => return other.map(|value| (value, made)),
        }
    }
}

/// Creates `dir` and its missing parents, adding each one created to `made` (outermost
/// first). A directory that exists, or that a concurrent call created first, is fine.
fn create_dirs(dir: &Path, made: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut created = fs::create_dir(dir);
    if matches!(&created, Err(e) if e.kind() == ErrorKind::NotFound) {
        create_dirs(parent(dir)?, made)?;
        created = fs::create_dir(dir);
    }
    match created {
        Ok(()) => {
            made.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes new entries (directories [`in_dir`] created, a new file) durable in their
/// parents, so a synced file cannot be lost with its directory. A parent pruned
/// meanwhile took the entry with it: nothing is left to sync.
pub(super) fn sync_new_entries(entries: &[PathBuf]) -> io::Result<()> {
    for entry in entries {
        match sync_dir(parent(entry)?) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Makes a directory entry change (create, rename, unlink) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes `start` and its ancestors below `root` while they are empty. `remove_dir`
/// refuses non-empty directories, so this never removes an object.
pub(super) fn prune(root: &Path, start: &Path) {
    let mut dir = start;
    while dir != root && dir.starts_with(root) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(up) => dir = up,
            None => break,
        }
    }
}

/// Creates the root if needed and proves it is a writable directory.
pub(super) fn check_root(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root)?;
    if !fs::metadata(root)?.is_dir() {
        return Err(io::Error::other("storage root is not a directory"));
    }
    let probe = root.join(temp_name());
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    fs::remove_file(&probe)
}

/// A whole small file; `None` when absent or a directory (a prefix is not an object).
pub(super) fn read_small(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(_) if path.is_dir() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Temp file in the same directory, write, fsync, rename over `path`, fsync the directory
/// (and the parents of directories created for it).
/// Without `durable`, the two fsyncs are skipped: still atomic, not yet durable.
pub(super) fn put_atomic(root: &Path, path: &Path, value: &[u8], durable: bool) -> io::Result<()> {
    let dir = parent(path)?;
    let tmp = dir.join(temp_name());
    let (mut file, made) = in_dir(dir, || {
        OpenOptions::new().write(true).create_new(true).open(&tmp)
    })?;
    let result = file
        .write_all(value)
        .and_then(|()| if durable { file.sync_data() } else { Ok(()) })
        .and_then(|()| fs::rename(&tmp, path))
        .and_then(|()| if durable { sync_dir(dir) } else { Ok(()) })
        .and_then(|()| {
            if durable {
                sync_new_entries(&made)
            } else {
                Ok(())
            }
        });
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        prune(root, dir);
    }
    result
}

/// Names in a directory, sorted, without temp files; empty when it does not exist (or is
/// a file: an object has no children).
pub(super) fn list(path: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) if path.is_file() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        // Every name the store writes is ASCII; anything else is not ours to list.
        if let Some(name) = entry.file_name().to_str() {
            if !name.starts_with(TEMP_PREFIX) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Moves `from` over `to`, creating `to`'s parents. `Ok(false)` when `from` is absent.
/// `from`'s directory stays even when this empties it (see [`Backend::rename`]).
///
/// [`Backend::rename`]: crate::Backend::rename
pub(super) fn rename(from: &Path, to: &Path) -> io::Result<bool> {
    // The move is the object's birth for garbage collection (see `Backend::rename`).
    // `from` is an upload's file, which only its one request writes.
    match OpenOptions::new().write(true).open(from) {
        Ok(file) => file.set_modified(std::time::SystemTime::now())?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let dir = parent(to)?;
    let (moved, made) = in_dir(dir, || match fs::rename(from, to) {
        Ok(()) => Ok(true),
        // NotFound is either a missing source (final) or a pruned target dir (retry).
        Err(e) if e.kind() == ErrorKind::NotFound && fs::symlink_metadata(from).is_err() => {
            Ok(false)
        }
        Err(e) => Err(e),
    })?;
    if moved {
        // The source's directory is not synced: a crash can only bring the entry back as
        // a leftover (upload garbage), never lose the target, and that fsync cost every
        // push a disk round trip for nothing.
        sync_dir(dir)?;
        sync_new_entries(&made)?;
    }
    Ok(moved)
}

/// Makes `path` a second name of the existing file `source` (a hard link), creating
/// `path`'s parents, and makes the new entry durable. The file's bytes are not touched.
pub(super) fn hard_link(source: &Path, path: &Path) -> io::Result<()> {
    let dir = parent(path)?;
    // NotFound from a missing source would be retried as a pruned directory: ask first.
    fs::metadata(source)?;
    let ((), made) = in_dir(dir, || fs::hard_link(source, path))?;
    sync_dir(dir)?;
    sync_new_entries(&made)
}

/// Deletes a file or a directory tree, then the directories that left empty.
pub(super) fn delete(root: &Path, path: &Path) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let removed = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => {}
        // A concurrent delete won: it reports the deletion.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let dir = parent(path)?;
    match sync_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    prune(root, dir);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_dir_reports_the_directories_it_made_outermost_first() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        let (_, made) = in_dir(&deep, || File::create(deep.join("f"))).unwrap();
        let expected: Vec<PathBuf> = ["a", "a/b", "a/b/c"]
            .iter()
            .map(|d| root.path().join(d))
            .collect();
        assert_eq!(made, expected);
        sync_new_entries(&made).unwrap();
        // Existing directories are not reported again.
        let (_, made) = in_dir(&deep, || File::create(deep.join("g"))).unwrap();
        assert!(made.is_empty());
    }
}
