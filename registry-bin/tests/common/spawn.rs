//! Starting the real `registry` binary and waiting until it listens: the one
//! piece every harness that runs the binary shares (ops, clients, crash,
//! disk full). Included with `#[path = ".../common/spawn.rs"] mod spawn;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `registry` with a clean environment: no `RUST_LOG`, no colours, and no
/// `REGISTRY_*` variable of the machine running the tests.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A registry that logged "registry listening".
pub struct Started {
    pub child: Child,
    /// `127.0.0.1:<port>` from the listening line.
    pub addr: String,
    /// Every line up to and including the listening line.
    pub startup: Vec<String>,
    /// The lines that follow, as they come; read them or drop the receiver
    /// (the reader threads keep draining the pipes either way).
    pub lines: mpsc::Receiver<String>,
}

fn forward(pipe: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            // Keep draining after the receiver is gone, so the server never
            // blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
}

/// Spawns `cmd` with stdout piped (and stderr too with `capture_stderr`, its
/// lines mixed into the same stream) and waits up to 20 s for the listening
/// line. Panics with what the registry said if it exits or stays silent.
pub fn start(mut cmd: Command, capture_stderr: bool) -> Started {
    cmd.stdout(Stdio::piped());
    if capture_stderr {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("cannot run the registry binary");
    let (tx, lines) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        forward(stdout, tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward(stderr, tx.clone());
    }
    drop(tx);
    let mut startup = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let listening = line.contains("registry listening");
                startup.push(line);
                if listening {
                    break;
                }
            }
            Err(e) => panic!(
                "the registry did not start ({e}); it said:\n{}",
                startup.join("\n")
            ),
        }
    }
    let last = startup.last().map(String::as_str).unwrap_or_default();
    let addr =
        field(last, "addr").unwrap_or_else(|| panic!("no addr in the listening line: {last}"));
    Started {
        child,
        addr,
        startup,
        lines,
    }
}

/// A field of a log line, text (`name=value`) or JSON.
pub fn field(line: &str, name: &str) -> Option<String> {
    if line.starts_with('{') {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        return entry[name].as_str().map(str::to_owned);
    }
    line.split(&format!("{name}="))
        .nth(1)?
        .split_whitespace()
        .next()
        .map(|v| v.trim_matches('"').to_owned())
}
