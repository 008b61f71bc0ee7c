//! The real `registry` binary on a storage folder: auth off, 127.0.0.1 and a
//! free port. Started with flags only (no config file), stopped with SIGKILL.
//!
//! Included with `#[path = "common/binary.rs"] mod binary;` by the test
//! binaries that need a process they can kill (crash, disk full).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
        cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
        for (key, _) in std::env::vars() {
            if key.starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .arg("serve")
            .arg("--storage")
            .arg(storage)
            .args(["--addr", "127.0.0.1:0", "--log-level", LOG_FILTER])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run the registry binary");
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        // Both pipes are drained for the whole life of the process, so the
        // server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for (pipe, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("registry listening") {
                        if let Some(tx) = &tx {
                            let _ = tx.send(line.clone());
                        }
                    }
                    let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() == KEEP_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            });
        }
        let mut binary = Binary {
            child: Some(child),
            addr: String::new(),
            lines,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                binary.addr = field(&line, "addr").unwrap_or_else(|| {
                    panic!("no addr= in the listening line: {line}");
                });
            }
            Err(_) => panic!(
                "the registry did not start; its last log lines:\n{}",
                binary.logs().join("\n")
            ),
        }
        binary
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

fn field(line: &str, name: &str) -> Option<String> {
    line.split(&format!("{name}="))
        .nth(1)?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}
