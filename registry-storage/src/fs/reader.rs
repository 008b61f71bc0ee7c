//! The chunked read stream: one blocking read of up to `READ_CHUNK` bytes per item, so
//! memory is bounded by one chunk however large the blob.

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
pub(super) const READ_CHUNK: usize = 512 * 1024;

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
    let stream = futures::stream::try_unfold((file, remaining), move |(file, remaining)| {
        let key = key.clone();
        async move {
            if remaining == 0 {
                return Ok(None);
            }
            // At most READ_CHUNK, so it fits a usize.
            let want = remaining.min(READ_CHUNK as u64) as usize;
            let (file, buf) = tokio::task::spawn_blocking(move || read_chunk(file, want))
                .await
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::new(e.kind(), format!("reading {key}: {e}")))?;
            if buf.is_empty() {
                // The file shrank under us; end rather than spin.
                return Ok(None);
            }
            let remaining = remaining - buf.len() as u64;
            Ok(Some((Bytes::from(buf), (file, remaining))))
        }
    });
    Ok(Box::pin(stream))
}

/// Reads up to `want` bytes, fewer only at end of file.
fn read_chunk(mut file: File, want: usize) -> io::Result<(File, Vec<u8>)> {
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok((file, buf))
}
