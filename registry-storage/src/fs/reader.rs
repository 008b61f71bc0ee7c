//! The chunked read stream: one blocking read of up to `READ_CHUNK` bytes per item, so
//! memory is bounded by two chunks however large the blob.
//!
//! The stream reads one chunk ahead: when the consumer takes chunk `k`, the read of
//! chunk `k + 1` starts on the blocking pool while `k` is being sent, so disk (or page
//! cache) reads overlap the socket writes. Chunks are read into fresh, uninitialised
//! capacity (`read_to_end` over a `take`), never zero-filled first.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::run_blocking;
use crate::backend::{read_window, ByteStream};
use crate::error::StorageError;

/// Bytes per stream item: large enough that the per-chunk hop to the blocking pool is
/// noise next to the copy, small enough to keep many concurrent downloads cheap.
pub(super) const READ_CHUNK: usize = 1024 * 1024;

/// Opens `path` at `offset`. The window is fixed now: if the file grows meanwhile (an
/// upload being appended to), the stream still ends where the file ended at open.
pub(super) async fn open(
    key: &str,
    path: PathBuf,
    offset: u64,
    len: Option<u64>,
) -> Result<ByteStream, StorageError> {
    let opened = run_blocking(key, move || -> io::Result<Option<(File, u64)>> {
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        let (start, end) = read_window(meta.len(), offset, len);
        file.seek(SeekFrom::Start(start))?;
        Ok(Some((file, end - start)))
    })
    .await?;
    let Some((file, remaining)) = opened else {
        return Err(StorageError::NotFound {
            key: key.to_owned(),
        });
    };
    let key: Arc<str> = Arc::from(key);
    let first = (remaining > 0).then(|| start_read(file, remaining));
    let stream = futures::stream::try_unfold((first, remaining), move |(next, remaining)| {
        let key = key.clone();
        async move {
            let Some(task) = next else {
                return Ok(None);
            };
            let (file, buf) = task
                .await
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::new(e.kind(), format!("reading {key}: {e}")))?;
            if buf.is_empty() {
                // The file shrank under us; end rather than spin.
                return Ok(None);
            }
            let asked = remaining.min(READ_CHUNK as u64);
            let remaining = remaining - buf.len() as u64;
            // A short read means the file shrank: this chunk is the last.
            let next =
                (remaining > 0 && buf.len() as u64 == asked).then(|| start_read(file, remaining));
            Ok(Some((Bytes::from(buf), (next, remaining))))
        }
    });
    Ok(Box::pin(stream))
}

type ReadTask = tokio::task::JoinHandle<io::Result<(File, Vec<u8>)>>;

/// Starts reading the next chunk (at most `READ_CHUNK` of the `remaining` bytes).
///
/// The buffer is allocated here, on the async worker, not in the blocking task: the
/// allocator (glibc) gives every thread that allocates its own arena and keeps freed
/// megabytes in it, so buffers born on dozens of blocking threads would pin dozens of
/// arenas' worth of memory. Born here, they recycle through the workers' few arenas.
fn start_read(file: File, remaining: u64) -> ReadTask {
    // At most READ_CHUNK, so it fits a usize.
    let want = remaining.min(READ_CHUNK as u64) as usize;
    let buf = Vec::with_capacity(want);
    tokio::task::spawn_blocking(move || read_chunk(file, buf, want))
}

/// Reads up to `want` bytes, fewer only at end of file, into `buf`'s uninitialised
/// capacity.
fn read_chunk(file: File, mut buf: Vec<u8>, want: usize) -> io::Result<(File, Vec<u8>)> {
    (&file).take(want as u64).read_to_end(&mut buf)?;
    Ok((file, buf))
}
