//! How background work over the store yields to requests: a [`Pace`] gives a garbage
//! collection pass or a usage walk its [`Turn`] before each batch of storage calls (a
//! page of a listing, a batch of manifest reads, a batch of deletions), and the batch
//! runs while it holds the turn. The store decides only where a pass may pause; when it
//! pauses, and how many batches run at once, is the caller's policy (the server's
//! `background` module pauses passes while requests use the CPU).

use std::fmt;

use async_trait::async_trait;

/// Decides when background work over the store goes on.
#[async_trait]
pub trait Pace: Send + Sync {
    /// Returns when the next batch of storage calls may start.
    async fn turn(&self) -> Turn;
}

impl fmt::Debug for dyn Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pace")
    }
}

/// A batch's permission to run, held until its storage calls end.
#[must_use = "a turn counts while it is held"]
pub struct Turn(Option<Box<dyn Send + Sync>>);

impl Turn {
    /// A turn that limits nothing.
    pub fn free() -> Turn {
        Turn(None)
    }

    /// A turn that lasts as long as `guard` (a semaphore's permit, say).
    pub fn holding(guard: impl Send + Sync + 'static) -> Turn {
        Turn(Some(Box::new(guard)))
    }
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Turn(held)"
        } else {
            "Turn(free)"
        })
    }
}
