//! The buffered appending writer: the push hot path.
//!
//! Frames from a request body are often small (16 KiB or less). Writing each one would
//! cost a hop to the blocking pool and a syscall per frame, so frames are kept (without
//! copying: they are `Bytes`) until about 1 MiB is pending, then written in one blocking
//! task that coalesces small frames into one buffer and writes large ones directly.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::blocking::{in_dir, parent, prune, sync_dir};
use super::run_blocking;
use crate::backend::BackendWriter;
use crate::error::StorageError;

/// Pending bytes that trigger a write.
const BUFFER: usize = 1024 * 1024;
/// Frames at least this large are written as they are instead of copied into the batch.
const DIRECT: usize = 64 * 1024;

pub(super) struct FsWriter {
    key: String,
    root: Arc<Path>,
    path: PathBuf,
    /// `None` after a failed write: the writer is broken, only `cancel` still works.
    file: Option<Arc<File>>,
    pending: Vec<Bytes>,
    pending_len: usize,
    /// Where small frames are gathered; kept between flushes so each flush does not
    /// allocate (and page-fault in) a fresh megabyte.
    batch: Vec<u8>,
    /// Size when opened, restored by `cancel`.
    start_len: u64,
    /// Whether this writer created the file, so `commit` must sync its directory entry.
    created: bool,
}

impl fmt::Debug for FsWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsWriter")
            .field("key", &self.key)
            .field("pending_len", &self.pending_len)
            .field("start_len", &self.start_len)
            .finish_non_exhaustive()
    }
}

impl FsWriter {
    pub(super) async fn open(
        key: &str,
        root: Arc<Path>,
        path: PathBuf,
    ) -> Result<FsWriter, StorageError> {
        let p = path.clone();
        let (file, start_len, created) =
            run_blocking(key, move || in_dir(parent(&p)?, || open_append(&p))).await?;
        Ok(FsWriter {
            key: key.to_owned(),
            root,
            path,
            file: Some(Arc::new(file)),
            pending: Vec::new(),
            pending_len: 0,
            batch: Vec::new(),
            start_len,
            created,
        })
    }

    fn file(&self) -> Result<Arc<File>, StorageError> {
        self.file.clone().ok_or_else(|| broken(&self.key))
    }

    /// Writes the pending frames in one blocking task.
    async fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = self.file()?;
        let chunks = std::mem::take(&mut self.pending);
        let mut batch = std::mem::take(&mut self.batch);
        self.pending_len = 0;
        let result = run_blocking(&self.key, move || {
            write_chunks(&file, &chunks, &mut batch)?;
            Ok(batch)
        })
        .await;
        match result {
            Ok(batch) => {
                self.batch = batch;
                Ok(())
            }
            Err(e) => {
                // Part of the batch may be on disk: appending more would leave a gap.
                self.file = None;
                Err(e)
            }
        }
    }
}

/// The error for any use of a writer after a failed write.
fn broken(key: &str) -> StorageError {
    StorageError::io(key, io::Error::other("writer failed earlier"))
}

/// Opens for appending, creating the file if needed; returns the file, its size and
/// whether it was created.
fn open_append(path: &Path) -> io::Result<(File, u64, bool)> {
    match OpenOptions::new().append(true).create_new(true).open(path) {
        Ok(file) => Ok((file, 0, true)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().append(true).open(path)?;
            let len = file.metadata()?.len();
            Ok((file, len, false))
        }
        Err(e) => Err(e),
    }
}

/// Writes `chunks` in order: small ones gathered into `batch` (left empty, capacity kept),
/// large ones directly.
fn write_chunks(mut file: &File, chunks: &[Bytes], batch: &mut Vec<u8>) -> io::Result<()> {
    batch.clear();
    for chunk in chunks {
        if chunk.len() >= DIRECT {
            if !batch.is_empty() {
                file.write_all(batch)?;
                batch.clear();
            }
            file.write_all(chunk)?;
        } else {
            if batch.capacity() == 0 {
                batch.reserve(BUFFER + DIRECT);
            }
            batch.extend_from_slice(chunk);
        }
    }
    if !batch.is_empty() {
        file.write_all(batch)?;
        batch.clear();
    }
    Ok(())
}

#[async_trait::async_trait]
impl BackendWriter for FsWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        if self.file.is_none() {
            return Err(broken(&self.key));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.pending_len += bytes.len();
        self.pending.push(bytes);
        if self.pending_len >= BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        self.flush().await?;
        let file = self.file()?;
        let (path, created) = (self.path.clone(), self.created);
        run_blocking(&self.key, move || {
            file.sync_data()?;
            let len = file.metadata()?.len();
            if created {
                sync_dir(parent(&path)?)?;
            }
            Ok(len)
        })
        .await
    }

    async fn cancel(self: Box<Self>) -> Result<(), StorageError> {
        let (path, start_len, file) = (self.path.clone(), self.start_len, self.file.clone());
        let (root, created) = (self.root.clone(), self.created);
        run_blocking(&self.key, move || {
            if created {
                // The object did not exist before this writer: it should not exist after.
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                prune(&root, parent(&path)?);
                return Ok(());
            }
            let file = match file {
                Some(file) => file,
                // The writer broke; reopen by path to undo what it may have written.
                None => match OpenOptions::new().write(true).open(&path) {
                    Ok(file) => Arc::new(file),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                },
            };
            file.set_len(start_len)
        })
        .await
    }
}
