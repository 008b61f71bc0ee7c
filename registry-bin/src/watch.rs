//! Noticing that a file changed, for reloads without a restart.
//!
//! Kubernetes updates a mounted Secret by swapping a symlink to a new
//! directory, so modification times of the visible path are unreliable;
//! the watcher compares a hash of the content instead. Polling a few small
//! files every couple of seconds costs nothing measurable.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// Hash of the files' contents; a missing file hashes as absent, so a file
/// that disappears and comes back counts as a change.
fn fingerprint(paths: &[PathBuf]) -> Vec<Option<[u8; 32]>> {
    paths
        .iter()
        .map(|p| {
            std::fs::read(p)
                .ok()
                .map(|bytes| Sha256::digest(&bytes).into())
        })
        .collect()
}

/// Calls `on_change` (on a blocking thread) whenever the content of any of
/// `paths` changes, checking every `interval`, until the runtime stops.
pub fn spawn_watch<F>(
    paths: Vec<PathBuf>,
    interval: Duration,
    on_change: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() + Send + Sync + 'static,
{
    let on_change = std::sync::Arc::new(on_change);
    tokio::spawn(async move {
        let mut last = fingerprint(&paths);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let watched = paths.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&watched)).await else {
                continue;
            };
            if now != last {
                last = now;
                let on_change = std::sync::Arc::clone(&on_change);
                let _ = tokio::task::spawn_blocking(move || on_change()).await;
            }
        }
    })
}
