//! Threads for background work: garbage collection passes and `registry du` walk the
//! whole store and delete thousands of objects, work that should take the CPU requests
//! leave idle rather than add to their latency. They run on a runtime of their own whose
//! threads, workers and blocking pool alike, run at a lower CPU priority ([`NICE`] above
//! the process's).
//!
//! On Linux a thread's nice value is its own (`setpriority` of the calling thread,
//! inherited by threads it starts), so the runtime's start hook lowers every one of its
//! threads and no request thread. `rustix` gives that one system call a safe signature
//! (this crate forbids `unsafe`); it is in the build through `tempfile` already.

/// How much lower than the process's the priority of background threads is: at nice +10
/// a thread gets about a tenth of the CPU a request thread gets when both want it, and
/// all of it when requests leave the CPU idle.
pub const NICE: i32 = 10;

/// A runtime for background work: one worker (a pass is mostly waits on storage, which
/// its own blocking threads carry) and the blocking pool, all at the lower priority.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("registry-background")
        .enable_all()
        .on_thread_start(lower_priority)
        .build()
}

/// Lowers the calling thread's priority by [`NICE`] (within the system's range). Best
/// effort: a system that refuses leaves the work at normal priority, which is correct,
/// only less kind to requests.
fn lower_priority() {
    let lowered = rustix::process::getpriority_process(None)
        .and_then(|nice| rustix::process::setpriority_process(None, (nice + NICE).min(19)));
    if let Err(e) = lowered {
        tracing::debug!(error = %e, "background thread keeps its priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_threads_run_at_a_lower_priority_than_the_caller() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let runtime = runtime().unwrap();
        let worker = runtime.block_on(async {
            tokio::spawn(async { rustix::process::getpriority_process(None).unwrap() })
                .await
                .unwrap()
        });
        let blocking = runtime.block_on(async {
            tokio::task::spawn_blocking(|| rustix::process::getpriority_process(None).unwrap())
                .await
                .unwrap()
        });
        let expected = (before + NICE).min(19);
        assert_eq!((worker, blocking), (expected, expected));
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            before,
            "the calling thread keeps its own"
        );
    }
}
