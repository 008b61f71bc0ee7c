//! Starting the real binary with a config file; test certificates come
//! from [`TestCa`] (`tests/common/test_ca.rs`, shared with `tests/clients`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use crate::test_ca::TestCa;

pub const USER: &str = "ops";
pub const PASS: &str = "ops-secret";

/// A running `registry serve`; killed on drop.
pub struct Binary {
    pub child: Child,
    pub addr: String,
    pub metrics_addr: Option<String>,
    pub dir: tempfile::TempDir,
    pub logs: mpsc::Receiver<String>,
}

/// A work folder with an htpasswd file for USER and a storage folder.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_htpasswd(&dir.path().join("htpasswd"), &[(USER, PASS)]);
    dir
}

pub fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    let text: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()))
        .collect();
    // Write then rename, as a Secret update does: the reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The config file of a test registry in `dir`; `extra_http` is spliced
/// into the `http:` section.
pub fn config(dir: &Path, extra_http: &str) -> PathBuf {
    let text = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  htpasswd:\n    realm: Ops\n    path: {}\n  throttle:\n    failures: 1000\nhttp:\n  addr: 127.0.0.1:0\n{extra_http}",
        dir.join("data").display(),
        dir.join("htpasswd").display()
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn registry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry"));
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn field(line: &str, name: &str) -> Option<String> {
    if line.starts_with('{') {
        // JSON log lines (log.formatter: json).
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        return entry[name].as_str().map(str::to_owned);
    }
    line.split(&format!("{name}="))
        .nth(1)?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

impl Binary {
    /// Starts `registry serve --config <config> [args]` and waits until it listens.
    pub fn start(dir: tempfile::TempDir, config: &Path, args: &[&str]) -> Binary {
        let mut child = registry()
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut metrics_addr = None;
        while addr.is_none() {
            let line = logs
                .recv_timeout(Duration::from_secs(20))
                .expect("registry did not start");
            if line.contains("metrics listening") {
                metrics_addr = field(&line, "addr");
            } else if line.contains("registry listening") {
                addr = field(&line, "addr");
            }
        }
        Binary {
            child,
            addr: addr.unwrap(),
            metrics_addr,
            dir,
            logs,
        }
    }

    /// Stops the registry with SIGTERM, waits for it to exit, and starts it
    /// again on the same folder and config (the port changes).
    pub fn restart(mut self) -> Binary {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let config = dir.path().join("config.yml");
        Binary::start(dir, &config, &[])
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .logs
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
