//! Background work gives way to requests. While a pass runs, a [`Governor`] looks every
//! [`PERIOD`] at what else uses the CPUs: the user time of processes at normal priority
//! (the server beside `registry gc`, its clients, any other program; background threads
//! run at a raised nice value, so their user time is counted apart, as "nice") and,
//! inside the server, whether it answered a request. System time is no sign of traffic:
//! the kernel's own threads spend it on the pass's behalf (freed blocks, writeback), up
//! to half a CPU. While there is such traffic, background
//! threads are confined to one CPU (the last this process may use) and the pass starts
//! batches of storage calls one at a time, only within [`RUN`] out of every [`PERIOD`]
//! (the store takes a turn from the governor, a [`Pace`], for each batch). Traffic is
//! [`BUSY_PERIODS`] periods in a row with some, so a program's start does not slow a
//! pass; [`CALM_PERIODS`] without give it the whole machine again, so a pass beside an
//! idle server runs at full speed.
//!
//! Why both, when background threads already run under the idle scheduling policy:
//! measured on a 2-CPU VM (10 s windows, a small push/pull load, passes back to back
//! beside it), an idle-policy thread is preempted by requests, yet its presence on
//! every CPU still costs them. Pull p99 rose 68 to 72% beside passes; 35 to 118% beside
//! one or two `yes` loops under `chrt --idle`; 38 to 45% beside a pass run one fifth of
//! the time (stopped and continued by signals) on every CPU; 12 to 20% beside a pass
//! kept on one CPU; 6% (push p99 17%) beside a pass kept on one CPU and run one fifth of
//! the time, which this module does.
//!
//! Linux only: elsewhere `/proc` cannot be read, no CPU traffic is seen, and only the
//! server's own requests slow a pass down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use registry_storage::{Pace, Turn};
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet, Pid};
use tokio::sync::{watch, Semaphore};

/// How often the governor looks at the traffic; one duty cycle while there is some.
pub const PERIOD: Duration = Duration::from_millis(100);

/// How much of each [`PERIOD`] a pass runs while there is traffic.
pub const RUN: Duration = Duration::from_millis(20);

/// Periods in a row with some traffic after which a pass gives way.
pub const BUSY_PERIODS: u32 = 2;

/// Periods without traffic after which a pass runs at full speed again.
pub const CALM_PERIODS: u32 = 10;

/// User time of other processes that counts as traffic: this many clock ticks (1/100 s
/// of one CPU) in a [`PERIOD`], a fifth of a CPU. A small push and pull load (two
/// clients of each) makes 1 to 7 a period, mostly 2 or more; an idle machine, 0 to 1.
const BUSY_TICKS: u64 = 2;

/// How many requests this process has answered so far (the server's own traffic, whose
/// CPU time is this process's and so not "other work").
pub type Served = Box<dyn Fn() -> u64 + Send + Sync>;

/// Paces and places one runtime's background threads; see the module docs.
#[derive(Debug)]
pub struct Governor {
    /// The background threads, confined together.
    threads: Mutex<Vec<Pid>>,
    /// Where background threads may run: every CPU this process may use, and the one
    /// they keep to while there is traffic. `None` with a single CPU (nothing to leave
    /// free) or where affinity is unknown.
    cpus: Option<(CpuSet, CpuSet)>,
    /// Whether a pass is being watched: a watch that ended changes nothing more, even
    /// if its task was in the middle of a step when its guard dropped.
    watching: AtomicBool,
    /// Whether there is traffic now.
    yielding: AtomicBool,
    /// Open while a pass may start storage calls.
    gate: watch::Sender<bool>,
    /// While there is traffic, batches run one at a time: all those waiting at the gate
    /// would otherwise start at once when it opens, and run far longer than [`RUN`].
    one_at_a_time: Arc<Semaphore>,
}

impl Governor {
    /// A governor for threads started from this one (whose affinity they inherit).
    pub fn new() -> Arc<Governor> {
        let cpus = sched_getaffinity(None).ok().and_then(|all| {
            let last = (0..CpuSet::MAX_CPU).rev().find(|&cpu| all.is_set(cpu))?;
            if all.count() < 2 {
                return None;
            }
            let mut one = CpuSet::new();
            one.set(last);
            Some((all, one))
        });
        Arc::new(Governor {
            threads: Mutex::new(Vec::new()),
            cpus,
            watching: AtomicBool::new(false),
            yielding: AtomicBool::new(false),
            gate: watch::channel(true).0,
            one_at_a_time: Arc::new(Semaphore::new(1)),
        })
    }

    /// Puts the calling thread under the idle policy ([`super::lower_this_thread`]) and
    /// among the threads this governor places.
    pub fn enlist_this_thread(&self) {
        super::lower_this_thread();
        let tid = rustix::thread::gettid();
        let mut threads = self.threads();
        if self.yielding.load(Ordering::Relaxed) {
            self.place(tid, true);
        }
        threads.push(tid);
    }

    /// Forgets the calling thread, which is ending.
    pub fn discharge_this_thread(&self) {
        let tid = rustix::thread::gettid();
        self.threads().retain(|&t| t != tid);
    }

    /// Watches the traffic until the returned guard is dropped (the end of a pass), which
    /// gives background threads the whole machine back. Must be called on the runtime
    /// whose threads this governor places.
    pub fn watch(self: &Arc<Self>, served: Option<Served>) -> Watching {
        self.watch_with(move || Sample::take(served.as_ref()))
    }

    /// [`Governor::watch`] with the traffic judged by `sample`.
    fn watch_with(self: &Arc<Self>, sample: impl FnMut() -> Sample + Send + 'static) -> Watching {
        self.watching.store(true, Ordering::Relaxed);
        let governor = self.clone();
        let task = tokio::spawn(async move { governor.govern(sample).await });
        Watching {
            governor: self.clone(),
            task,
        }
    }

    async fn govern(&self, mut sample: impl FnMut() -> Sample) {
        let mut last = sample();
        let (mut busy, mut calm) = (0, CALM_PERIODS);
        loop {
            if self.yielding.load(Ordering::Relaxed) {
                self.gate.send_replace(true);
                tokio::time::sleep(RUN).await;
                self.close_gate();
                tokio::time::sleep(PERIOD - RUN).await;
            } else {
                tokio::time::sleep(PERIOD).await;
            }
            let now = sample();
            if now.traffic_since(&last) {
                busy += 1;
                calm = 0;
                if busy >= BUSY_PERIODS {
                    self.set_yielding(true);
                }
            } else {
                busy = 0;
                if calm < CALM_PERIODS {
                    calm += 1;
                    if calm == CALM_PERIODS {
                        self.set_yielding(false);
                    }
                }
            }
            last = now;
        }
    }

    /// Enters or leaves the confined, paced mode (enters only while watching).
    fn set_yielding(&self, yielding: bool) {
        let threads = self.threads();
        self.apply(&threads, yielding && self.watching.load(Ordering::Relaxed));
    }

    /// Closes the gate for the rest of a period, while watching.
    fn close_gate(&self) {
        let _threads = self.threads();
        if self.watching.load(Ordering::Relaxed) {
            self.gate.send_replace(false);
        }
    }

    /// The end of a watch: full speed, and nothing more from its task.
    fn stop_watching(&self) {
        let threads = self.threads();
        self.watching.store(false, Ordering::Relaxed);
        self.apply(&threads, false);
    }

    /// Places every thread for `yielding` and opens the gate when not; under the lock
    /// of `threads`, so a thread enlisting meanwhile is placed too.
    fn apply(&self, threads: &[Pid], yielding: bool) {
        if self.yielding.swap(yielding, Ordering::Relaxed) != yielding {
            for &tid in threads {
                self.place(tid, yielding);
            }
            tracing::debug!(yielding, "background work and traffic");
        }
        if !yielding {
            self.gate.send_replace(true);
        }
    }

    /// Sets one thread's CPUs. Best effort: a thread that ended meanwhile, or a system
    /// that refuses, leaves the thread where it is, which is correct, only less kind.
    fn place(&self, tid: Pid, confined: bool) {
        if let Some((all, one)) = &self.cpus {
            let cpus = if confined { one } else { all };
            if let Err(e) = sched_setaffinity(Some(tid), cpus) {
                tracing::debug!(error = %e, "background thread keeps its CPUs");
            }
        }
    }

    fn threads(&self) -> MutexGuard<'_, Vec<Pid>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Pace for Governor {
    async fn turn(&self) -> Turn {
        let mut gate = self.gate.subscribe();
        loop {
            // The sender lives as long as `self`: this fails only never.
            let _ = gate.wait_for(|open| *open).await;
            if !self.yielding.load(Ordering::Relaxed) {
                return Turn::free();
            }
            let Ok(permit) = self.one_at_a_time.clone().acquire_owned().await else {
                return Turn::free(); // never closed
            };
            // The gate may have closed while this batch waited for the one before it.
            if *gate.borrow() {
                return Turn::holding(permit);
            }
        }
    }
}

/// The governor's watch over one pass; dropping it ends the watch.
#[derive(Debug)]
pub struct Watching {
    governor: Arc<Governor>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
        self.governor.stop_watching();
    }
}

/// The counters the traffic is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    /// User time of all CPUs at normal priority, in clock ticks (`/proc/stat`).
    user: Option<u64>,
    /// Requests this process answered.
    served: u64,
}

impl Sample {
    fn take(served: Option<&Served>) -> Sample {
        Sample {
            user: std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(user_ticks),
            served: served.map_or(0, |served| served()),
        }
    }

    /// Whether requests, or other programs, ran since `before`.
    fn traffic_since(&self, before: &Sample) -> bool {
        let user = match (self.user, before.user) {
            (Some(now), Some(then)) => now.saturating_sub(then),
            _ => 0,
        };
        user >= BUSY_TICKS || self.served > before.served
    }
}

/// The user time at normal priority of all CPUs: the first field of `/proc/stat`'s
/// first line (time at a raised nice value is the second; guest time is within the first).
fn user_ticks(stat: &str) -> Option<u64> {
    stat.lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ticks_are_the_first_field() {
        let stat = "cpu  100 2 30 5000 70 4 6 1 0 0\ncpu0 50 1 15 2500 35 2 3 0 0 0\n";
        assert_eq!(user_ticks(stat), Some(100));
        assert_eq!(user_ticks("cpu0 1 2 3\n"), None);
        assert_eq!(user_ticks(""), None);
    }

    fn sample(user: u64, served: u64) -> Sample {
        Sample {
            user: Some(user),
            served,
        }
    }

    #[test]
    fn traffic_is_user_time_or_a_request() {
        let before = sample(1000, 5);
        // A tick is noise; two are traffic.
        assert!(!sample(1001, 5).traffic_since(&before));
        assert!(sample(1002, 5).traffic_since(&before));
        // The server's own request.
        assert!(sample(1000, 6).traffic_since(&before));
        // Unknown counters: only requests count.
        let blind = Sample {
            user: None,
            served: 5,
        };
        assert!(!blind.traffic_since(&blind));
    }

    #[test]
    fn traffic_keeps_enlisted_threads_to_one_cpu() {
        let governor = Governor::new();
        let cpus = |tid| sched_getaffinity(Some(tid)).unwrap().count();
        let all = cpus(rustix::thread::gettid());
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let enlisted = governor.clone();
        let thread = std::thread::spawn(move || {
            enlisted.enlist_this_thread();
            tid_tx.send(rustix::thread::gettid()).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = tid_rx.recv().unwrap();
        governor.watching.store(true, Ordering::Relaxed); // as during a pass
        governor.set_yielding(true);
        let confined = cpus(tid);
        governor.set_yielding(false);
        let released = cpus(tid);
        done_tx.send(()).unwrap();
        thread.join().unwrap();
        if all < 2 {
            assert_eq!(
                (confined, released),
                (all, all),
                "one CPU: nothing to leave free"
            );
        } else {
            assert_eq!((confined, released), (1, all));
        }
        assert_eq!(
            cpus(rustix::thread::gettid()),
            all,
            "a thread not enlisted stays put"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_pauses_passes_and_calm_releases_them() {
        let governor = Governor::new();
        // Requests answered in every period while `traffic` is set.
        let traffic = Arc::new(AtomicBool::new(false));
        let on = traffic.clone();
        let mut served = 0;
        let watching = governor.watch_with(move || {
            served += u64::from(on.load(Ordering::Relaxed));
            sample(0, served)
        });
        // Half a period off the governor's samples, so no two events are at once.
        tokio::time::sleep(PERIOD * 3 + PERIOD / 2).await;
        assert!(*governor.gate.borrow(), "no traffic: open");
        // One busy period is a blip, not traffic.
        traffic.store(true, Ordering::Relaxed);
        tokio::time::sleep(PERIOD).await;
        traffic.store(false, Ordering::Relaxed);
        tokio::time::sleep(PERIOD * 2).await;
        assert!(!governor.yielding.load(Ordering::Relaxed), "a blip");
        traffic.store(true, Ordering::Relaxed);
        tokio::time::sleep(PERIOD * 2 + RUN * 2).await;
        assert!(governor.yielding.load(Ordering::Relaxed));
        assert!(!*governor.gate.borrow(), "traffic: closed after its run");
        // A batch waiting at the gate goes on within the period, one at a time.
        let turn = tokio::time::timeout(PERIOD, governor.turn()).await.unwrap();
        assert!(tokio::time::timeout(RUN / 2, governor.turn())
            .await
            .is_err());
        drop(turn);
        let _next = tokio::time::timeout(PERIOD, governor.turn()).await.unwrap();
        traffic.store(false, Ordering::Relaxed);
        tokio::time::sleep(PERIOD * (CALM_PERIODS + 2)).await;
        assert!(!governor.yielding.load(Ordering::Relaxed), "calm again");
        assert!(*governor.gate.borrow());
        traffic.store(true, Ordering::Relaxed);
        tokio::time::sleep(PERIOD * 3).await;
        assert!(governor.yielding.load(Ordering::Relaxed));
        drop(watching);
        assert!(
            !governor.yielding.load(Ordering::Relaxed),
            "the end of a pass frees it"
        );
        assert!(*governor.gate.borrow());
        // A step of the ended watch's task changes nothing more.
        governor.set_yielding(true);
        governor.close_gate();
        assert!(!governor.yielding.load(Ordering::Relaxed));
        assert!(*governor.gate.borrow());
    }
}
