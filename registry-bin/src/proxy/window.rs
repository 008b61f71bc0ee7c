//! What a blob fetch keeps in memory for the clients that follow it, and how it waits
//! for them.
//!
//! A fetch keeps its latest segments, at least [`WINDOW`] bytes ([`Window`]); a client
//! whose position is in them is sent slices of those buffers ([`Recent::slice`]), with no
//! read of the file. Before it lets go of its oldest segment, the fetch waits, up to
//! [`PACE`], for the clients still reading it ([`Readers::wait_past`]).
//!
//! Why both, measured on 2 cores (a cold pull of 4 blobs of 64 MiB, 16 such pulls at
//! once):
//! - With only the last segment kept, a client that took all it was allowed was behind
//!   the next one and read the rest back from the file, a hop to the blocking pool per
//!   128 KiB (3,550 `pread`s and 1,338 `mmap`s in one cold pull). A 1 MiB window without
//!   the wait still read 2,180 times: a client that fell behind once stayed behind. With
//!   the window and the wait, none.
//! - A 4 MiB window without the wait read nothing back in a cold pull, but 16 pulls at
//!   once peaked at 62–67 MiB of RSS.
//!
//! A client slower than a segment per [`PACE`] is left behind and reads storage, so it
//! does not set the fetch's pace.
//!
//! ```text
//!   blob:   ... | evicted | seg k | seg k+1 | ... | seg n |  (n being written)
//!                         ^ start                         ^ written
//!   readers in [start, start + len(seg k)) hold seg k's eviction, up to PACE each
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

/// Bytes of the latest segments a fetch keeps. It must exceed a segment plus the
/// hold-back: a client that took all it was allowed stands the hold-back before the end
/// of the latest segment, so with one segment kept every next one would find it behind.
pub(super) const WINDOW: u64 = 1024 * 1024;

/// Longest wait for the readers of a segment before it is let go.
pub(super) const PACE: Duration = Duration::from_millis(50);

/// The bytes of the latest segments written, as clients see them.
#[derive(Debug, Clone)]
pub(super) struct Recent {
    /// Offset of the first byte.
    start: u64,
    chunks: Arc<[Bytes]>,
}

impl Recent {
    pub(super) fn empty() -> Recent {
        Recent {
            start: 0,
            chunks: Arc::from(Vec::new()),
        }
    }

    /// Offset just past the last byte.
    pub(super) fn end(&self) -> u64 {
        self.start + bytes_in(&self.chunks)
    }

    /// The bytes in `[from, to)` as shared slices of the segments' buffers (no copy), or
    /// `None` when `from` is not in the window (the reader fell behind it) or nothing is
    /// to be taken.
    pub(super) fn slice(&self, from: u64, to: u64) -> Option<Vec<Bytes>> {
        if from >= to || from < self.start {
            return None;
        }
        let mut at = self.start;
        let mut out = Vec::new();
        for chunk in self.chunks.iter() {
            let end = at + chunk.len() as u64;
            if end > from && at < to {
                let lo = usize::try_from(from.saturating_sub(at)).ok()?;
                let hi = usize::try_from(to.min(end) - at).ok()?;
                out.push(chunk.slice(lo..hi));
            }
            at = end;
        }
        (!out.is_empty()).then_some(out)
    }
}

/// The segments a fetch keeps, oldest first: the latest ones covering at least
/// [`WINDOW`] bytes.
#[derive(Debug, Default)]
pub(super) struct Window {
    start: u64,
    len: u64,
    segments: VecDeque<Arc<[Bytes]>>,
}

impl Window {
    /// Where the window will start once a segment of `adding` bytes is pushed: the
    /// bytes before it are let go.
    pub(super) fn start_after(&self, adding: u64) -> u64 {
        let mut len = self.len + adding;
        let mut start = self.start;
        for segment in &self.segments {
            let n = bytes_in(segment);
            if len - n < WINDOW {
                break;
            }
            len -= n;
            start += n;
        }
        start
    }

    /// Adds the segment just written, lets go of those no longer needed, and returns
    /// what clients may be sent from memory now.
    pub(super) fn push(&mut self, segment: Arc<[Bytes]>) -> Recent {
        let start = self.start_after(bytes_in(&segment));
        self.len += bytes_in(&segment);
        self.segments.push_back(segment);
        while self.start < start {
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            let n = bytes_in(&oldest);
            self.start += n;
            self.len -= n;
        }
        Recent {
            start: self.start,
            chunks: self
                .segments
                .iter()
                .flat_map(|s| s.iter().cloned())
                .collect(),
        }
    }

    /// The offset of the window's first byte.
    pub(super) fn start(&self) -> u64 {
        self.start
    }
}

fn bytes_in(chunks: &[Bytes]) -> u64 {
    chunks.iter().map(|c| c.len() as u64).sum()
}

/// Where the clients of a fetch are: for each, the offset up to which its connection
/// took the bytes it was given.
#[derive(Debug, Default)]
pub(super) struct Readers {
    positions: Mutex<Vec<Weak<AtomicU64>>>,
    moved: Notify,
}

impl Readers {
    /// A new reader at offset 0; it stops counting when the returned handle drops.
    pub(super) fn join(&self) -> Position {
        let at = Arc::new(AtomicU64::new(0));
        let mut positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        positions.retain(|p| p.strong_count() > 0);
        positions.push(Arc::downgrade(&at));
        Position { at }
    }

    /// Whether a reader is in `[from, to)`.
    fn any_in(&self, from: u64, to: u64) -> bool {
        let positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        positions
            .iter()
            .filter_map(Weak::upgrade)
            .any(|p| (from..to).contains(&p.load(Ordering::Acquire)))
    }

    /// Waits until no reader is in `[from, to)`, or [`PACE`] has passed.
    pub(super) async fn wait_past(&self, from: u64, to: u64) {
        let deadline = tokio::time::Instant::now() + PACE;
        while self.any_in(from, to) {
            // A move between the check and this wait leaves a permit: no wake-up is lost.
            if tokio::time::timeout_at(deadline, self.moved.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn moved(&self) {
        self.moved.notify_one();
    }
}

/// One reader's offset in [`Readers`].
#[derive(Debug)]
pub(super) struct Position {
    at: Arc<AtomicU64>,
}

impl Position {
    /// Records that the reader's connection took every byte before `offset`.
    pub(super) fn set(&self, offset: u64, readers: &Readers) {
        if self.at.swap(offset, Ordering::AcqRel) != offset {
            readers.moved();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent() -> Recent {
        let chunks: Vec<Bytes> = ["abcd", "ef", "ghij"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        Recent {
            start: 100,
            chunks: chunks.into(),
        }
    }

    fn joined(parts: Option<Vec<Bytes>>) -> Option<String> {
        parts.map(|parts| parts.iter().map(|b| String::from_utf8_lossy(b)).collect())
    }

    #[test]
    fn a_reader_in_the_window_gets_exactly_its_range_across_buffers() {
        let recent = recent();
        assert_eq!(
            joined(recent.slice(100, 110)).as_deref(),
            Some("abcdefghij")
        );
        assert_eq!(joined(recent.slice(103, 107)).as_deref(), Some("defg"));
        assert_eq!(joined(recent.slice(104, 106)).as_deref(), Some("ef"));
        assert_eq!(joined(recent.slice(109, 200)).as_deref(), Some("j"));
        assert_eq!(recent.end(), 110);
    }

    #[test]
    fn a_reader_outside_the_window_or_with_nothing_to_take_gets_none() {
        let recent = recent();
        assert_eq!(recent.slice(99, 105), None, "fell behind: read storage");
        assert_eq!(recent.slice(110, 120), None, "past the end");
        assert_eq!(recent.slice(105, 105), None, "nothing allowed yet");
        assert_eq!(Recent::empty().slice(0, 10), None);
    }

    fn segment(n: u64) -> Arc<[Bytes]> {
        let half = usize::try_from(n / 2).expect("small");
        vec![Bytes::from(vec![1u8; half]), Bytes::from(vec![2u8; half])].into()
    }

    #[test]
    fn the_window_keeps_what_a_reader_that_kept_up_needs_next() {
        const SEGMENT: u64 = 256 * 1024;
        const HOLD_BACK: u64 = 64 * 1024;
        let mut window = Window::default();
        let (mut written, mut pos) = (0u64, 0u64);
        for _ in 0..20 {
            written += SEGMENT;
            let next_start = window.start_after(SEGMENT);
            let recent = window.push(segment(SEGMENT));
            assert_eq!(recent.start, next_start, "start_after tells what push does");
            assert_eq!(recent.end(), written, "the window ends at what was written");
            assert!(recent.end() - recent.start < WINDOW + SEGMENT, "bounded");
            let allowed = written - HOLD_BACK;
            let got = recent.slice(pos, allowed).expect("a reader that kept up");
            assert_eq!(bytes_in(&got), allowed - pos);
            pos = allowed;
        }
        assert!(
            window.push(segment(0)).start >= written - WINDOW,
            "old segments go"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_waits_for_a_reader_in_the_segment_it_lets_go_but_not_for_ever() {
        let readers = Arc::new(Readers::default());
        let reader = readers.join();
        reader.set(10, &readers);
        let waited = tokio::time::Instant::now();
        tokio::spawn({
            let readers = Arc::clone(&readers);
            async move {
                tokio::time::sleep(PACE / 5).await;
                reader.set(20, &readers);
            }
        });
        readers.wait_past(0, 20).await;
        assert_eq!(waited.elapsed(), PACE / 5, "until the reader moved past");

        let stuck = readers.join();
        stuck.set(30, &readers);
        let waited = tokio::time::Instant::now();
        readers.wait_past(25, 40).await;
        assert_eq!(
            waited.elapsed(),
            PACE,
            "a reader that does not move is left behind"
        );
        readers.wait_past(0, 30).await;
        readers.wait_past(31, 40).await;
        assert_eq!(waited.elapsed(), PACE, "no reader in the range: no wait");
    }
}
