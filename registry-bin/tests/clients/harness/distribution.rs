//! CNCF Distribution 2.8 (Debian's `docker-registry`) on a free loopback port, as the
//! upstream of the pull-through cache tests: plain HTTP, htpasswd auth for
//! [`USER`]/[`PASS`] or Bearer tokens from a [`TokenIssuer`], and its access log kept so a
//! test can count the requests it served.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::token_issuer::{TokenIssuer, ISSUER, SERVICE};
use super::{need, Endpoint, Scheme, PASS, USER};

/// The `docker-registry` process; killed on drop.
pub struct Distribution {
    child: Child,
    pub endpoint: Endpoint,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// How the upstream authenticates its clients.
pub enum UpstreamAuth<'a> {
    /// htpasswd with [`USER`]/[`PASS`].
    Htpasswd,
    /// `auth.token` trusting this issuer.
    Token(&'a TokenIssuer),
}

/// A port that was free a moment ago (Distribution takes no port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Distribution {
    /// Starts `docker-registry serve` and waits (up to 20 s) until it accepts
    /// connections.
    pub fn start(auth: UpstreamAuth<'_>) -> Distribution {
        need("docker-registry", "docker-registry");
        need("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().unwrap();
        let auth = match auth {
            UpstreamAuth::Htpasswd => {
                let line = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASS])
                    .output()
                    .unwrap();
                assert!(line.status.success(), "htpasswd -Bbn failed");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &line.stdout).unwrap();
                format!(
                    "  htpasswd:\n    realm: upstream\n    path: {}\n",
                    path.display()
                )
            }
            UpstreamAuth::Token(issuer) => {
                let path = dir.path().join("root.pem");
                std::fs::write(&path, &issuer.root_pem).unwrap();
                format!(
                    "  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    issuer.realm,
                    path.display()
                )
            }
        };
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n{auth}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run docker-registry");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not start: {:#?}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Distribution {
            child,
            endpoint: Endpoint {
                scheme: Scheme::Http,
                host: format!("127.0.0.1:{port}"),
                ca: None,
            },
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.endpoint.base_url()
    }

    /// Requests it answered with `method` on a path containing `part`, from its
    /// "response completed" lines (waits until the log is quiet for 100 ms).
    pub fn served(&self, method: &str, part: &str) -> usize {
        let mut seen = usize::MAX;
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.log.lock().unwrap().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                l.contains("response completed")
                    && l.contains(&format!("http.request.method={method} "))
                    && l.contains(part)
            })
            .count()
    }

    /// Stops it (as an outage would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a registry config with `proxy` (YAML lines under `proxy:`) into `dir` and
/// passes it to `cmd` with `--config`.
pub fn with_proxy_config(dir: &Path, cmd: &mut Command, proxy: &str) {
    let path = dir.join("config.yml");
    std::fs::write(&path, format!("proxy:\n{proxy}")).unwrap();
    cmd.arg("--config").arg(path);
}
