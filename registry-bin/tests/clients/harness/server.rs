//! The real `registry` binary on a free loopback port, with an htpasswd
//! file made by `htpasswd -Bbn`, and the [`Endpoint`] every client helper
//! takes.
//!
//! With [`Scheme::Https`] the registry terminates TLS itself (`--tls-cert`,
//! `--tls-key`) with a server certificate for 127.0.0.1 signed by a test CA
//! made for that registry alone; the endpoint carries the CA's PEM file,
//! which each client helper hands to its client (`--cert-dir`, `hosts.toml`,
//! `tls_verify`, `extra_root_certificates`): certificates are verified.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::{need, PASS, USER};
use crate::haproxy::Haproxy;
use crate::spawn;
use crate::test_ca::TestCa;
use crate::token_server::TokenServer;

/// How clients reach the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP on 127.0.0.1: each client is told the registry is insecure.
    Http,
    /// HTTPS with a test CA: each client is given the CA (see the module doc).
    Https,
}

/// Where the registry listens and how to trust it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The PEM CA that signed the server certificate (HTTPS only).
    pub ca: Option<PathBuf>,
}

impl Endpoint {
    /// `http://127.0.0.1:<port>` or `https://...`.
    pub fn base_url(&self) -> String {
        match self.scheme {
            Scheme::Http => format!("http://{}", self.host),
            Scheme::Https => format!("https://{}", self.host),
        }
    }

    /// `docker://<host>/<repo>:<tag>` or `...@<digest>`.
    pub fn docker_ref(&self, repo: &str, reference: &str) -> String {
        format!("docker://{}", self.image_ref(repo, reference))
    }

    /// `<host>/<repo>:<tag>` or `<host>/<repo>@<digest>`.
    pub fn image_ref(&self, repo: &str, reference: &str) -> String {
        let sep = if reference.contains(':') { '@' } else { ':' };
        format!("{}/{repo}{sep}{reference}", self.host)
    }
}

/// One request as the registry logged it (Debug prints it on one line).
#[derive(Clone)]
pub struct Logged {
    pub method: String,
    pub route: String,
    pub repository: String,
    pub status: u16,
}

impl std::fmt::Debug for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.method, self.route, self.repository, self.status
        )
    }
}

/// The registry process (or, with `TEST_STORAGE=s3-replicas`, three of them on one S3
/// bucket behind haproxy); killed on drop.
#[derive(Debug)]
pub struct Registry {
    children: Vec<Child>,
    pub endpoint: Endpoint,
    /// Requests logged by every process, in the order they were read.
    log: Arc<Mutex<Vec<Logged>>>,
    _balancer: Option<Haproxy>,
    _data: tempfile::TempDir,
}

impl Registry {
    /// Starts `registry serve` with basic auth for [`USER`]/[`PASS`], over
    /// plain HTTP or over HTTPS with a certificate from a fresh test CA.
    pub fn start(scheme: Scheme) -> Registry {
        Registry::start_with(scheme, |_, _| ())
    }

    /// [`Registry::start`] with more arguments or environment from `extra`,
    /// which gets the registry's own folder and its command (e.g. for
    /// `--config <file>` written there; the harness's flags take precedence
    /// over the file).
    pub fn start_with(scheme: Scheme, extra: impl FnOnce(&Path, &mut Command)) -> Registry {
        Registry::start_on(scheme, None, extra)
    }

    /// Like [`Registry::start_with`], serving the storage at `storage` when
    /// given (left in place when the registry stops) instead of a fresh one.
    pub fn start_on(
        scheme: Scheme,
        storage: Option<&Path>,
        extra: impl FnOnce(&Path, &mut Command),
    ) -> Registry {
        need("htpasswd", "apache2-utils");
        Registry::launch(scheme, storage, "basic auth on", |cmd, dir| {
            let htpasswd = dir.join("htpasswd");
            let line = Command::new("htpasswd")
                .args(["-Bbn", USER, PASS])
                .output()
                .unwrap();
            assert!(line.status.success(), "htpasswd -Bbn failed");
            std::fs::write(&htpasswd, &line.stdout).unwrap();
            cmd.arg("--htpasswd").arg(&htpasswd);
            extra(dir, cmd);
        })
    }

    /// Starts `registry serve` trusting the tokens of `tokens` (configured
    /// through the `REGISTRY_AUTH_TOKEN_*` variables).
    pub fn start_with_tokens(scheme: Scheme, tokens: &TokenServer) -> Registry {
        Registry::launch(scheme, None, "token auth on", |cmd, _| {
            cmd.envs(tokens.registry_env());
        })
    }

    /// Starts the registry on `storage` (a fresh folder when `None`) with `auth`
    /// applied to its command; it must log `auth_line` on the way up.
    fn launch(
        scheme: Scheme,
        storage: Option<&Path>,
        auth_line: &str,
        auth: impl FnOnce(&mut Command, &Path),
    ) -> Registry {
        let data = tempfile::tempdir().unwrap();
        let storage = storage.map_or_else(|| data.path().join("storage"), Path::to_path_buf);
        let mut cmd = spawn::command();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--storage"])
            .arg(&storage)
            .stderr(Stdio::inherit());
        auth(&mut cmd, data.path());
        let ca = match scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let ca = TestCa::new("registry clients suite CA");
                let (cert, key) = (data.path().join("tls.crt"), data.path().join("tls.key"));
                ca.issue(&cert, &key);
                let pem = data.path().join("ca.pem");
                std::fs::write(&pem, &ca.pem).unwrap();
                cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
                Some(pem)
            }
        };
        let commands = if replicas() {
            // The same command three times, each on the bucket of this registry.
            let bucket = crate::replicas::new_bucket();
            let env = crate::replicas::s3_storage_env(&bucket);
            (0..3)
                .map(|_| {
                    let mut copy = Command::new(cmd.get_program());
                    copy.args(cmd.get_args()).stderr(Stdio::inherit());
                    for (key, value) in cmd.get_envs() {
                        match value {
                            Some(value) => copy.env(key, value),
                            None => copy.env_remove(key),
                        };
                    }
                    copy.envs(env.iter().cloned());
                    copy
                })
                .collect()
        } else {
            vec![cmd]
        };
        let want = match scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut children, mut hosts) = (Vec::new(), Vec::new());
        for cmd in commands {
            let started = spawn::start(cmd, false);
            assert!(
                started.startup.iter().any(|l| l.contains(auth_line)),
                "the registry did not log {auth_line:?}: {:#?}",
                started.startup
            );
            let listening = started
                .startup
                .last()
                .map(String::as_str)
                .unwrap_or_default();
            assert_eq!(
                spawn::field(listening, "scheme").as_deref(),
                Some(want),
                "registry does not serve {want}: {listening}"
            );
            let (child, host, lines) = (started.child, started.addr, started.lines);
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in lines {
                    if let Some(entry) = parse_request_line(&line) {
                        sink.lock().unwrap().push(entry);
                    }
                }
            });
            children.push(child);
            hosts.push(host);
        }
        // HTTPS is balanced per connection (haproxy passes TLS through), HTTP per request.
        let balancer = replicas().then(|| Haproxy::start(&hosts, scheme == Scheme::Http));
        let host = match &balancer {
            Some(balancer) => balancer.host.clone(),
            None => hosts.swap_remove(0),
        };
        Registry {
            children,
            endpoint: Endpoint { scheme, host, ca },
            log,
            _balancer: balancer,
            _data: data,
        }
    }

    /// Every request logged so far. The registry writes a request's line
    /// before its reply; this waits until the reader thread has caught up
    /// (no new line for 50 ms), so counts right after a client exits are whole.
    pub fn requests(&self) -> Vec<Logged> {
        let mut seen = usize::MAX;
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = self.log.lock().unwrap().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        self.log.lock().unwrap().clone()
    }

    /// Requests logged since the `from`-th one.
    pub fn requests_since(&self, from: usize) -> Vec<Logged> {
        self.requests().split_off(from)
    }

    /// Asserts that since request `from`, `client` put `layers` blobs into
    /// `repo` by cross-repository mount (POST answered 201) and uploaded
    /// only one (the config, which containers/image tools always re-send).
    pub fn assert_layers_mounted(&self, from: usize, repo: &str, layers: usize, client: &str) {
        let seen = self.requests_since(from);
        let mounts = seen
            .iter()
            .filter(|r| r.route == "upload_start" && r.repository == repo && r.status == 201)
            .count();
        let uploads = seen.iter().filter(|r| r.route == "upload_put").count();
        assert_eq!(
            mounts, layers,
            "{client}: cross-repository mounts into {repo}: {seen:#?}"
        );
        assert_eq!(
            uploads, 1,
            "{client}: only the config is uploaded to {repo}: {seen:#?}"
        );
    }
}

impl Registry {
    /// Stops every process with SIGTERM, as Kubernetes stops a pod, and checks that each
    /// exits cleanly once it has served what it had in hand.
    pub fn terminate(mut self) {
        for child in &mut self.children {
            let sent = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(sent.success(), "kill -TERM {}", child.id());
            let status = child.wait().unwrap();
            assert!(status.success(), "exit status after SIGTERM: {status}");
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether every registry of the suite is three replicas on one S3 bucket behind
/// haproxy (`TEST_STORAGE=s3-replicas`).
pub fn replicas() -> bool {
    std::env::var("TEST_STORAGE").is_ok_and(|v| v == "s3-replicas")
}

/// `... request method=GET route="blob_get" repository="a/b" status=200 ...`
fn parse_request_line(line: &str) -> Option<Logged> {
    if !line.contains(" request ") && !line.ends_with(" request") {
        return None;
    }
    let field = |name: &str| {
        let rest = line.split(&format!(" {name}=")).nth(1)?;
        let value = rest.split_whitespace().next()?;
        Some(value.trim_matches('"').to_owned())
    };
    Some(Logged {
        method: field("method")?,
        route: field("route")?,
        repository: field("repository")?,
        status: field("status")?.parse().ok()?,
    })
}

/// A scratch folder for one test, removed on drop. Its path is lowercase:
/// podman names an image pulled from `oci:<dir>` after the folder, and
/// image names must be lowercase.
pub fn workdir() -> tempfile::TempDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tempfile::Builder::new()
        .prefix(&format!("registry-clients-{}-{n}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap()
}

/// Writes `data` under `dir` and returns the path.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, data).unwrap();
    path
}
