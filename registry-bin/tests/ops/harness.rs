//! Starting the real binary with a config file; test certificates come
//! from [`TestCa`] (`tests/common/test_ca.rs`, shared with `tests/clients`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;

use crate::spawn;
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

/// `registry` with a clean environment.
pub fn registry() -> Command {
    spawn::command()
}

impl Binary {
    /// Starts `registry serve --config <config> [args]` and waits until it listens.
    pub fn start(dir: tempfile::TempDir, config: &Path, args: &[&str]) -> Binary {
        let mut cmd = registry();
        cmd.arg("serve").arg("--config").arg(config).args(args);
        Binary::spawn(dir, cmd)
    }

    /// Starts `cmd` (a `registry serve` of the caller's making) and waits until it
    /// listens.
    pub fn spawn(dir: tempfile::TempDir, cmd: Command) -> Binary {
        let started = spawn::start(cmd, false);
        let metrics_addr = started
            .startup
            .iter()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| spawn::field(l, "addr"));
        Binary {
            child: started.child,
            addr: started.addr,
            metrics_addr,
            dir,
            logs: started.lines,
        }
    }

    /// Stops the registry with SIGTERM, waits for it to exit, and starts it
    /// again on the same folder and config (the port changes).
    pub fn restart(self) -> Binary {
        let dir = self.stop();
        let config = dir.path().join("config.yml");
        Binary::start(dir, &config, &[])
    }

    /// Stops the registry with SIGTERM, checks that it exited cleanly, and hands back
    /// its folder.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
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
