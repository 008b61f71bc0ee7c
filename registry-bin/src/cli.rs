//! The `registry` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A private OCI container image registry.
#[derive(Debug, Parser)]
#[command(name = "registry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry server.
    Serve(ServeArgs),
    /// Print an htpasswd line (bcrypt) for a user.
    Htpasswd(crate::commands::htpasswd::HtpasswdArgs),
    /// Print a Kubernetes image pull Secret for this registry.
    PullSecret(crate::commands::pull_secret::PullSecretArgs),
}

/// `registry serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000", env = "REGISTRY_HTTP_ADDR")]
    pub addr: SocketAddr,
    /// Folder that holds blobs, manifests, tags and uploads.
    #[arg(
        long,
        default_value = "./data",
        env = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"
    )]
    pub storage: PathBuf,
    /// htpasswd file with bcrypt entries (`htpasswd -Bbn USER PASS`); without
    /// it, auth is off.
    #[arg(long, env = "REGISTRY_AUTH_HTPASSWD_PATH")]
    pub htpasswd: Option<PathBuf>,
    /// Realm sent in the `WWW-Authenticate` challenge.
    #[arg(
        long,
        default_value = "Registry Realm",
        env = "REGISTRY_AUTH_HTPASSWD_REALM"
    )]
    pub realm: String,
    /// Log level: error, warn, info, debug or trace (or a `RUST_LOG` filter).
    #[arg(long, default_value = "info", env = "REGISTRY_LOG_LEVEL")]
    pub log_level: String,
    /// Allow serving without authentication on a non-loopback address.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// Refuse DELETE of manifests, tags and blobs.
    #[arg(long)]
    pub no_delete: bool,
}

impl ServeArgs {
    /// Refuses an open registry on a public address unless asked for.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.htpasswd.is_none() && !self.addr.ip().is_loopback() && !self.allow_anonymous {
            return Err(format!(
                "refusing to serve {} without authentication: anyone who can reach it could push and pull.\n\
                 Create an htpasswd file (`htpasswd -Bbn USER PASSWORD > htpasswd`) and pass `--htpasswd htpasswd`,\n\
                 or pass `--allow-anonymous` if this network is trusted.",
                self.addr
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["registry", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(a) => a,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = serve(&[]);
        assert_eq!(a.addr.to_string(), "127.0.0.1:5000");
        assert_eq!(a.storage, PathBuf::from("./data"));
        assert!(a.htpasswd.is_none());
        assert!(a.check_exposure().is_ok());
    }

    #[test]
    fn public_address_needs_auth_or_an_explicit_flag() {
        let err = serve(&["--addr", "0.0.0.0:5000"])
            .check_exposure()
            .unwrap_err();
        assert!(err.contains("--htpasswd"), "{err}");
        assert!(serve(&["--addr", "0.0.0.0:5000", "--allow-anonymous"])
            .check_exposure()
            .is_ok());
        assert!(serve(&["--addr", "0.0.0.0:5000", "--htpasswd", "x"])
            .check_exposure()
            .is_ok());
    }
}
