//! The real `registry` binary on a storage folder: auth off, 127.0.0.1 and a
//! free port. Started with flags only (no config file), stopped with SIGKILL.
//!
//! Included with `#[path = "common/binary.rs"] mod binary;` by the test
//! binaries that need a process they can kill (crash, disk full), next to
//! `#[path = "common/spawn.rs"] mod spawn;`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};

use crate::spawn;

/// Request lines are not logged (the crash test makes thousands); the
/// "registry listening" line and every warning and error are.
const LOG_FILTER: &str = "warn,registry_bin::app=info";
/// How many recent log lines are kept for failure messages.
const KEEP_LINES: usize = 200;

/// A running `registry serve`; killed (SIGKILL) on drop.
pub struct Binary {
    child: Option<Child>,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Binary {
    /// Starts `registry serve --storage <storage>` and waits until it listens.
    pub fn start(storage: &Path) -> Binary {
        let mut cmd = spawn::command();
        cmd.arg("serve").arg("--storage").arg(storage).args([
            "--addr",
            "127.0.0.1:0",
            "--log-level",
            LOG_FILTER,
        ]);
        let started = spawn::start(cmd, true);
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let keep = |kept: &mut VecDeque<String>, line: String| {
            if kept.len() == KEEP_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        };
        {
            let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
            for line in started.startup {
                keep(&mut kept, line);
            }
        }
        // Both pipes keep being drained (spawn's reader threads); the most
        // recent lines stay for failure messages.
        let sink = Arc::clone(&lines);
        let rx = started.lines;
        std::thread::spawn(move || {
            for line in rx {
                keep(&mut sink.lock().unwrap_or_else(|e| e.into_inner()), line);
            }
        });
        Binary {
            child: Some(started.child),
            addr: started.addr,
            lines,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, then reap the process. No shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The most recent log lines (stdout and stderr), oldest first.
    pub fn logs(&self) -> Vec<String> {
        let kept = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}
