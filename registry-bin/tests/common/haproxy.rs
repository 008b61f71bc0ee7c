//! Debian's haproxy in front of several registries: round robin in http mode, so every
//! request (also on a kept-alive connection) picks a replica of its own; a replica that
//! stops answering is taken out after one failed check. Included with
//! `#[path = ".../common/haproxy.rs"] mod haproxy;`.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// haproxy in the foreground on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Balances over `backends` (`127.0.0.1:<port>` each): every request in `http`
    /// mode, every connection otherwise (TLS passed through to the replicas).
    pub fn start(backends: &[String], http: bool) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, host)| format!("  server r{i} {host} check inter 200ms fall 1 rise 2\n"))
            .collect();
        let mode = if http { "http" } else { "tcp" };
        let config = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode {mode}\n  timeout connect 2s\n  timeout client 120s\n  \
             timeout server 120s\n  retries 2\n  option redispatch\n\
             frontend registry\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n{servers}"
        );
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy is installed (apt-get install haproxy)");
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy does not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            child,
            host,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
