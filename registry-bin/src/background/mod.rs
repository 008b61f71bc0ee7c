//! Threads for background work: garbage collection passes and `registry du` walk the
//! whole store and delete thousands of objects, work that should take the CPU requests
//! leave idle rather than add to their latency. They run on a runtime of their own whose
//! threads, workers and blocking pool alike, run under Linux's idle scheduling policy
//! (`SCHED_IDLE`), and at a lower nice value ([`NICE`] above the process's) where that
//! policy is refused.
//!
//! Why the idle policy and not only a nice value: at nice +10 a pass still doubled the
//! pull p99 of a small load beside it (4.1 → 8.3 ms, three windows of 10 s), because a
//! request thread that wakes does not always preempt a running background thread at
//! once. An idle-policy thread is preempted by any other: the same run with the passes
//! under `chrt --idle` had pull p99 3.4 → 4.6 ms and push p99 unchanged, the passes
//! taking 3.7 s instead of 2.0 s beside the load.
//!
//! Both are per thread on Linux and inherited by the threads a thread starts, so the
//! runtime's start hook sets them on every one of its threads and on no request thread.
//! The thread that runs `block_on` (the main thread of `registry gc` and `registry du`,
//! the server's schedule thread) enlists too ([`Governor::enlist_this_thread`]): it
//! polls the pass's own future (the walk's bookkeeping, the manifests' parsing, the
//! live set), which otherwise ran at normal priority.
//! `thread-priority` and `rustix` give the system calls safe signatures (this crate
//! forbids `unsafe`).
//!
//! The idle policy is not enough on its own: a [`Governor`] also keeps the threads to one
//! CPU and pauses passes most of the time while requests are served (`governor.rs`).

mod governor;

use std::sync::Arc;

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
    ThreadSchedulePolicy,
};

pub use governor::{Governor, Served, Watching};

/// How much lower than the process's the nice value of background threads is where the
/// idle policy is refused: at nice +10 a thread gets about a tenth of the CPU a request
/// thread gets when both want it, and all of it when requests leave the CPU idle.
pub const NICE: i32 = 10;

/// The idle scheduling policy.
const IDLE: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);

/// A runtime for background work: one worker (a pass is mostly waits on storage, which
/// its own blocking threads carry) and the blocking pool, all at the lowest priority and
/// placed by the returned governor, which also paces the passes of a store given it
/// (`Store::with_pace`) while it watches ([`Governor::watch`]).
pub fn runtime() -> std::io::Result<(tokio::runtime::Runtime, Arc<Governor>)> {
    let governor = Governor::new();
    let (enlist, discharge) = (governor.clone(), governor.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("registry-background")
        .enable_all()
        .on_thread_start(move || enlist.enlist_this_thread())
        .on_thread_stop(move || discharge.discharge_this_thread())
        .build()?;
    Ok((runtime, governor))
}

/// Puts the calling thread under the idle policy, then raises its nice value by
/// [`NICE`] (within the system's range), which counts only if the policy was refused.
/// Best effort: a system that refuses both leaves the work at normal priority, which is
/// correct, only less kind to requests.
fn lower_this_thread() {
    let nice = rustix::process::getpriority_process(None);
    // The crate also sets the thread's nice value to the idle policy's only priority,
    // 0, which an unprivileged process already at a higher nice value may not do: that
    // error comes after the policy is set, and the nice value below applies anyway.
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, IDLE) {
        tracing::debug!(error = ?e, "background thread: idle scheduling policy refused");
    }
    let lowered =
        nice.and_then(|nice| rustix::process::setpriority_process(None, (nice + NICE).min(19)));
    if let Err(e) = lowered {
        tracing::debug!(error = %e, "background thread keeps its nice value");
    }
}

#[cfg(test)]
mod tests {
    use thread_priority::thread_schedule_policy;

    use super::*;

    /// The calling thread's policy and nice value.
    fn priority() -> (ThreadSchedulePolicy, i32) {
        let policy = thread_schedule_policy().unwrap();
        (policy, rustix::process::getpriority_process(None).unwrap())
    }

    #[test]
    fn background_threads_run_idle_and_the_caller_keeps_its_priority() {
        let before = priority();
        let (runtime, _) = runtime().unwrap();
        let worker = runtime.block_on(async { tokio::spawn(async { priority() }).await.unwrap() });
        let blocking =
            runtime.block_on(async { tokio::task::spawn_blocking(priority).await.unwrap() });
        let expected = (IDLE, (before.1 + NICE).min(19));
        assert_eq!((worker, blocking), (expected, expected));
        assert_eq!(priority(), before, "the calling thread keeps its own");
        let lowered = std::thread::spawn(|| {
            lower_this_thread();
            priority()
        });
        assert_eq!(lowered.join().unwrap(), expected, "a thread that asks");
    }
}
