//! Debian's haproxy in front of several registries: round robin in http mode, so every
//! request (also on a kept-alive connection) picks a replica of its own; a replica that
//! stops answering is taken out after one failed check. Replicas join and leave through
//! haproxy's runtime API (its admin socket), as endpoints of a Kubernetes Service change
//! during a rolling update. Included with
//! `#[path = ".../common/haproxy.rs"] mod haproxy;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often a replica is checked, and when it is taken out or back in.
const CHECKS: &str = "check inter 200ms fall 1 rise 2";

/// haproxy in the foreground on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// Its config and admin socket.
    dir: tempfile::TempDir,
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
            .map(|(i, host)| format!("  server r{i} {host} {CHECKS}\n"))
            .collect();
        let admin = dir.path().join("admin.sock");
        let admin = admin.display();
        let mode = if http { "http" } else { "tcp" };
        let config = format!(
            "global\n  maxconn 512\n  stats socket {admin} mode 600 level admin\n\
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
        Haproxy { child, host, dir }
    }
}

impl Haproxy {
    /// One command on the admin socket; its answer.
    fn command(&self, command: &str) -> String {
        let mut socket =
            std::os::unix::net::UnixStream::connect(self.dir.path().join("admin.sock"))
                .expect("haproxy's admin socket");
        socket.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    }

    /// Adds the replica at `host` as server `name`, and waits until its checks pass
    /// and it takes requests.
    pub fn add(&self, name: &str, host: &str) {
        for command in [
            format!("add server replicas/{name} {host} {CHECKS}"),
            format!("enable health replicas/{name}"),
            format!("enable server replicas/{name}"),
        ] {
            let answer = self.command(&command);
            assert!(
                answer.trim().is_empty() || answer.contains("New server registered"),
                "{command}: {answer}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .command("show stat")
            .lines()
            .any(|line| line.starts_with(&format!("replicas,{name},")) && line.contains(",UP,"))
        {
            assert!(Instant::now() < deadline, "{name} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Takes server `name` out: no new request goes to it, the ones it serves go on.
    pub fn remove(&self, name: &str) {
        let answer = self.command(&format!("disable server replicas/{name}"));
        assert!(answer.trim().is_empty(), "disable {name}: {answer}");
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
