//! One registry under test: a config file with `storage.gc` settings, the
//! server started from it (the ops harness), the `registry` maintenance
//! commands run against the same file in their own processes, and what the
//! storage root holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use crate::client::Client;
use crate::disk;
use crate::harness::Binary;
use crate::spawn;

/// Request lines are not logged (the load tests make thousands); start-up
/// lines and every warning are.
pub const LOG_FILTER: &str = "warn,registry_bin::app=info";
/// Per request of the test clients.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `registry` command may take before the test kills it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `storage.gc` and the listeners of one test registry.
#[derive(Debug, Clone, Copy)]
pub struct GcConfig<'a> {
    /// `storage.gc.delay`, e.g. `1s`.
    pub delay: Duration,
    /// `storage.gc.interval`; `None`: the server runs no pass itself.
    pub interval: Option<&'a str>,
    /// `storage.gc.retention` as a YAML list at column 0 (`- repositories: ...`).
    pub retention: Option<&'a str>,
    /// Whether to open the `http.debug` listener with `/metrics`.
    pub metrics: bool,
}

impl GcConfig<'_> {
    /// The whole config file for storage at `root`.
    pub fn render(&self, root: &Path) -> String {
        self.render_on(&format!(
            "  filesystem:\n    rootdirectory: {}\n",
            root.display()
        ))
    }

    /// The whole config file with `storage`, a driver's section indented under
    /// `storage:` (e.g. `  s3:\n    bucket: ...\n`).
    pub fn render_on(&self, storage: &str) -> String {
        let mut gc = format!("    delay: {}ms\n", self.delay.as_millis());
        if let Some(interval) = self.interval {
            gc += &format!("    interval: {interval}\n");
        }
        if let Some(retention) = self.retention {
            gc += "    retention:\n";
            for line in retention.lines() {
                gc += &format!("      {line}\n");
            }
        }
        let debug = if self.metrics {
            "  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n      path: /metrics\n"
        } else {
            ""
        };
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n{storage}  gc:\n{gc}http:\n  addr: 127.0.0.1:0\n{debug}"
        )
    }

    /// How long after a write a pass may delete it: `delay` plus the claim
    /// refresh (a quarter of it), and a margin for the clocks of two processes.
    pub fn grace(&self) -> Duration {
        self.delay + self.delay / 4 + Duration::from_millis(300)
    }
}

/// A running `registry serve` (auth off, 127.0.0.1) and its config file.
pub struct Registry {
    pub server: Binary,
    pub client: Client,
    /// The config file the server and every command read.
    pub config: PathBuf,
    /// `storage.filesystem.rootdirectory`.
    pub root: PathBuf,
}

impl Registry {
    /// Writes the config into a new folder and starts the server on it.
    pub fn start(gc: &GcConfig) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let config = dir.path().join("config.yml");
        std::fs::write(&config, gc.render(&root)).unwrap();
        let server = tokio::task::block_in_place(|| {
            Binary::start(dir, &config, &["--log-level", LOG_FILTER])
        });
        let client = Client::new(&server.url("http", ""), TIMEOUT);
        Registry {
            server,
            client,
            config,
            root,
        }
    }

    /// The config file's path, for command lines.
    pub fn config_arg(&self) -> String {
        self.config.display().to_string()
    }

    /// `http://<metrics listener>/metrics`.
    pub fn metrics_url(&self) -> String {
        let addr = self
            .server
            .metrics_addr
            .as_deref()
            .expect("no metrics listener");
        format!("http://{addr}/metrics")
    }

    /// Every blob data object on disk: digest to size.
    pub fn blobs(&self) -> BTreeMap<String, u64> {
        blob_sizes(&self.root)
    }

    /// Whether blob data for `digest` is on disk.
    pub fn has_blob(&self, digest: &str) -> bool {
        let (alg, hex) = digest.split_once(':').unwrap();
        self.root
            .join(format!("v1/blobs/{alg}/{}/{hex}/data", &hex[..2]))
            .is_file()
    }

    /// Every file under the storage root with its size and modification time:
    /// two equal snapshots mean nothing was written, touched or deleted.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (u64, SystemTime)> {
        disk::files(&self.root)
            .into_iter()
            .filter_map(|rel| {
                let meta = std::fs::metadata(self.root.join(&rel)).ok()?;
                Some((rel, (meta.len(), meta.modified().ok()?)))
            })
            .collect()
    }
}

/// Every `v1/blobs/<alg>/<2 hex>/<hex>/data` under `root`: digest to size.
pub fn blob_sizes(root: &Path) -> BTreeMap<String, u64> {
    let blobs = root.join("v1/blobs");
    disk::files(&blobs)
        .into_iter()
        .filter(|rel| !disk::is_temp(rel))
        .filter_map(|rel| {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let [alg, _, hex, data] = &parts[..] else {
                return None;
            };
            if data != "data" {
                return None;
            }
            let len = std::fs::metadata(blobs.join(&rel)).ok()?.len();
            Some((format!("{alg}:{hex}"), len))
        })
        .collect()
}

/// Runs `registry <args>` to completion (killed after [`COMMAND_TIMEOUT`]),
/// off the async threads.
pub async fn registry(args: &[&str]) -> Output {
    let mut cmd = spawn::command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("cannot run the registry binary");
    let pid = child.id();
    let wait = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(COMMAND_TIMEOUT, wait).await {
        Ok(output) => output.unwrap().unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("registry {args:?} did not finish in {COMMAND_TIMEOUT:?}");
        }
    }
}

/// Standard output of a command that must succeed.
pub async fn registry_ok(args: &[&str]) -> String {
    let output = registry(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "registry {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The generator of a randomized test: `GC_SEED` reproduces a run's contents
/// and timings (the machine's scheduling aside); the seed is printed.
pub fn seeded(test: &str) -> crate::rng::Rng {
    let seed = std::env::var("GC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(crate::rng::Rng::clock_seed);
    eprintln!("{test}: GC_SEED={seed}");
    crate::rng::Rng::new(seed)
}

/// The value of `series` (a whole name with labels) in a Prometheus text page.
pub async fn metric(url: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
