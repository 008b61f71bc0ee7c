//! What garbage collection asks of the file system: modification times, a paged walk in
//! key order, `touch`, and a delete that cannot remove a file written or touched after
//! its cutoff. Synchronous; run on the blocking pool like the rest of `blocking.rs`.
//!
//! How `delete_if_older` and `touch` stay exact without a lock, against writers in other
//! processes too: the delete first renames the file to a temporary name in the same
//! directory (one atomic step, after which no writer can reach it by its key), then looks
//! at its time. Too new: it links the file back (unless a newer file took the key
//! meanwhile, which then wins) and removes the temporary name. A `touch` sets the time
//! through a descriptor, then checks that the key still names the same inode: if the
//! delete's rename came first, the touch reports the object gone; if it came after, the
//! delete sees the new time and puts the file back. A `put` or `rename` onto the key
//! either lands before the delete's rename (the delete sees a new file) or after it (the
//! key holds the new file and only the old one goes).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::blocking::{parent, prune, sync_dir, temp_name};
use crate::backend::{ObjectEntry, ObjectMeta, TEMP_PREFIX};

/// Size and modification time of a file; `None` when absent or a directory.
pub(super) fn stat(path: &Path) -> io::Result<Option<ObjectMeta>> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
            size: meta.len(),
            modified: meta.modified()?,
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets the file's modification time to now; `false` when it is absent (or was deleted
/// while this ran). See the module docs for why the inode check makes this exact.
pub(super) fn touch(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(false);
    }
    let inode = meta.ino();
    file.set_modified(SystemTime::now())?;
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.ino() == inode),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes the file if it was modified before `cutoff`. See the module docs.
pub(super) fn delete_if_older(root: &Path, path: &Path, cutoff: SystemTime) -> io::Result<bool> {
    let dir = parent(path)?;
    let aside = dir.join(temp_name());
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let modified = fs::metadata(&aside)?.modified()?;
    if modified >= cutoff {
        // Written or touched after the cutoff: put it back, unless a newer file took the
        // key meanwhile (then that one is the object and this one is obsolete).
        match fs::hard_link(&aside, path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        fs::remove_file(&aside)?;
        return Ok(false);
    }
    fs::remove_file(&aside)?;
    // Not synced here: the caller records the directory and `sync_deletions` syncs each
    // directory once for a whole batch (a directory sync per deletion made a garbage
    // collection pass five times slower).
    prune(root, dir);
    Ok(true)
}

/// Makes the deletions in `dirs` durable: each directory is synced, or, when it was
/// pruned meanwhile, its nearest ancestor that still exists (so the directory's removal
/// is durable too), once.
pub(super) fn sync_deletions(root: &Path, dirs: &[PathBuf]) -> io::Result<()> {
    let mut synced: HashSet<&Path> = HashSet::new();
    for dir in dirs {
        let mut at: &Path = dir;
        loop {
            if synced.contains(at) {
                break;
            }
            match sync_dir(at) {
                Ok(()) => {
                    synced.insert(at);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::NotFound && at != root => match at.parent() {
                    Some(up) if up.starts_with(root) => at = up,
                    _ => break,
                },
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Up to `limit` files under `prefix_path` (whose key is `prefix`), in byte order of their
/// keys, after `start_after`; temporary files and anything under them excluded.
pub(super) fn list_objects(
    prefix_path: &Path,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> io::Result<Vec<ObjectEntry>> {
    let mut found = Vec::new();
    if limit > 0 {
        walk(prefix_path, prefix, start_after, limit, &mut found)?;
    }
    Ok(found)
}

/// Depth-first over `dir` in key order. A directory's keys all start with `name/`, so
/// ordering entries by `name/` (directories) and `name` (files) gives byte order of the
/// full keys, and a directory whose `key/` sorts before `start_after` without being its
/// prefix holds nothing after it and is skipped whole.
fn walk(
    dir: &Path,
    key: &str,
    start_after: Option<&str>,
    limit: usize,
    found: &mut Vec<ObjectEntry>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.is_file() => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue; // every name the store writes is ASCII
        };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let is_dir = entry.file_type()?.is_dir();
        let child = if key.is_empty() {
            name
        } else {
            format!("{key}/{name}")
        };
        let sort_key = if is_dir { format!("{child}/") } else { child };
        children.push((sort_key, is_dir));
    }
    children.sort();
    for (sort_key, is_dir) in children {
        if found.len() >= limit {
            break;
        }
        if is_dir {
            if let Some(after) = start_after {
                if sort_key.as_str() < after && !after.starts_with(&sort_key) {
                    continue;
                }
            }
            let child = &sort_key[..sort_key.len() - 1];
            walk(&dir.join(last(child)), child, start_after, limit, found)?;
        } else if start_after.is_none_or(|after| sort_key.as_str() > after) {
            let path = dir.join(last(&sort_key));
            // Deleted between the listing and now: not an object any more.
            if let Some(meta) = stat(&path)? {
                found.push(ObjectEntry {
                    key: sort_key,
                    meta,
                });
            }
        }
    }
    Ok(())
}

/// The last component of a key.
fn last(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}
