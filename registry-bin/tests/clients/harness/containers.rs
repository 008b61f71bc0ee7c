//! Per-test state for the containers/image tools (skopeo, podman, buildah):
//! a private storage root (vfs, no daemon, no mounts needed), private
//! `storage.conf`, `registries.conf`, `containers.conf` and auth file, so a
//! test never reads or writes `/var/lib/containers`, `/etc/containers` or
//! `/run/libpod`, and tests can run side by side.
//!
//! One thing stays shared: containers/image keeps root's blob-info cache
//! (which blob digests were seen in which repository of which registry,
//! the knowledge behind cross-repository mounts) in
//! `/var/lib/containers/cache`, and skopeo 1.9, podman 4.3 and buildah
//! 1.28 have no setting to move it. Entries are keyed by registry host and
//! port, and a mount it suggests that fails falls back to an upload, so
//! tests cannot pass or fail through it.

use std::path::PathBuf;
use std::process::Command;

use super::{need, run_fails, Endpoint, Scheme, PASS, USER};

/// One client's private configuration and storage.
#[derive(Debug)]
pub struct Containers {
    dir: tempfile::TempDir,
    endpoint: Endpoint,
}

impl Containers {
    pub fn new(endpoint: &Endpoint) -> Containers {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["root", "runroot", "tmp", "libpod-tmp", "certs"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(
            root.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/runroot\"\n",
                root.display()
            ),
        )
        .unwrap();
        // No search registries: every name in the tests is fully qualified.
        std::fs::write(
            root.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        std::fs::write(
            root.join("containers.conf"),
            format!(
                "[engine]\nevents_logger = \"none\"\ntmp_dir = \"{}/libpod-tmp\"\n",
                root.display()
            ),
        )
        .unwrap();
        std::fs::write(root.join("auth.json"), "{}").unwrap();
        if let Some(ca) = &endpoint.ca {
            // containers/image reads `*.crt` in a --cert-dir as extra CAs.
            std::fs::copy(ca, root.join("certs/ca.crt")).unwrap();
        }
        Containers {
            dir,
            endpoint: endpoint.clone(),
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The auth file `login` writes and every other command reads.
    pub fn auth_file(&self) -> PathBuf {
        self.path("auth.json")
    }

    fn command(&self, tool: &str) -> Command {
        need(tool, &format!("apt-get install {tool}"));
        let mut cmd = Command::new(tool);
        cmd.env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("REGISTRIES_CONFIG_PATH", self.path("registries.conf"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("REGISTRY_AUTH_FILE", self.auth_file())
            .env("TMPDIR", self.path("tmp"));
        cmd
    }

    pub fn skopeo(&self) -> Command {
        self.command("skopeo")
    }

    pub fn podman(&self) -> Command {
        let mut cmd = self.command("podman");
        cmd.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .arg("--tmpdir")
            .arg(self.path("libpod-tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"]);
        cmd
    }

    pub fn buildah(&self) -> Command {
        let mut cmd = self.command("buildah");
        cmd.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .args(["--storage-driver", "vfs"]);
        cmd
    }

    /// `<tool> login` as [`USER`] with `password`; writes the auth file.
    pub fn login(&self, mut tool: Command, password: &str) -> Command {
        tool.arg("login")
            .args(self.tls(""))
            .args(["-u", USER, "-p", password])
            .arg(&self.endpoint.host);
        tool
    }

    /// Over HTTPS, `<tool> login` with verification on but without the test
    /// CA must fail on the certificate: what the other steps pass with is
    /// the CA given to them, not a check left out. Nothing over HTTP.
    pub fn assert_login_needs_the_ca(&self, mut tool: Command, client: &str) {
        if self.endpoint.scheme == Scheme::Http {
            return;
        }
        tool.args(["login", "--tls-verify=true", "-u", USER, "-p", PASS])
            .arg(&self.endpoint.host);
        let stderr = run_fails(&format!("{client} login without the test CA"), &mut tool);
        assert!(
            stderr.contains("certificate signed by unknown authority"),
            "{client} login without the test CA: {stderr}"
        );
    }

    /// The TLS flag for a command option family: `""` (`--tls-verify`),
    /// `"src-"` or `"dest-"` (skopeo copy).
    pub fn tls(&self, prefix: &str) -> Vec<String> {
        match self.endpoint.scheme {
            Scheme::Http => vec![format!("--{prefix}tls-verify=false")],
            Scheme::Https => vec![
                format!("--{prefix}tls-verify=true"),
                format!("--{prefix}cert-dir={}", self.path("certs").display()),
            ],
        }
    }
}
