//! `registry gc` processes killed with SIGKILL at random moments while
//! clients push, mount and delete: a pass cut short anywhere leaves links
//! deleted before what they name, never after, so no tag points at a
//! missing manifest and no manifest at a missing blob; a clean pass then
//! finishes the job and nothing acknowledged and not deleted is lost.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::disk;
use crate::fixture::{seeded, GcConfig, Registry};
use crate::load::Load;
use crate::spawn;
use crate::stress::{settle_and_verify, DELAY};
use crate::walk;

const KILLS: usize = 20;
/// The kills stop here even if fewer than [`KILLS`] landed (the test then fails).
const KILL_TIME: Duration = Duration::from_secs(25);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_killed_at_random_moments_lose_nothing() {
    let started = Instant::now();
    let mut rng = seeded("sigkill");
    let gc = GcConfig {
        delay: DELAY,
        interval: None,
        retention: None,
        metrics: false,
    };
    let registry = Registry::start(&gc);
    let load = Load::start(&registry.client, &mut rng, gc.delay);
    // Kills land anywhere from start-up to the blob sweep: the window follows
    // how long the passes that were let finish took.
    let mut window = Duration::from_millis(300);
    let (mut kills, mut finished, mut attempts) = (0, 0, 0);
    let mut ends = Vec::new();
    while (kills < KILLS || started.elapsed() < gc.grace() * 2) && started.elapsed() < KILL_TIME {
        attempts += 1;
        let mut cmd = spawn::command();
        cmd.arg("gc").arg("-q");
        if attempts % 2 == 0 {
            cmd.arg("--delete-untagged");
        }
        cmd.arg(&registry.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let began = Instant::now();
        let mut child = cmd.spawn().expect("cannot run the registry binary");
        let let_finish = attempts % 6 == 0;
        let at = if let_finish {
            KILL_TIME
        } else {
            Duration::from_millis(rng.range(0, window.as_millis() as u64 + 1))
        };
        while began.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2).min(at)).await;
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                finished += 1;
                ends.push(status.code());
                if let_finish {
                    window = began.elapsed() + began.elapsed() / 5;
                }
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    let ledger = load.stop().await;
    ledger.assert_clean();
    assert!(
        kills >= KILLS,
        "only {kills} passes killed mid-way in {KILL_TIME:?} ({finished} finished first)"
    );

    // What the killed passes left, before any clean pass repairs anything.
    let tree = walk::check(&registry.root);
    assert!(
        tree.problems.is_empty(),
        "after {kills} killed passes: {:#?}",
        tree.problems
    );
    let (_, problems) = disk::BlobCheck::default().run(&registry.root);
    assert!(problems.is_empty(), "{problems:#?}");

    let summary = settle_and_verify(&registry, &gc, &ledger).await;
    eprintln!(
        "sigkill: {kills} kills, {finished} passes finished (exit codes {ends:?}), last window {window:?}; {summary}; counts {:?}; {:?}",
        ledger.counts,
        started.elapsed()
    );
}
