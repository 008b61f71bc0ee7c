//! The `registry` command line.
//!
//! Precedence: flags override `REGISTRY_*` environment variables, which
//! override the config file, which overrides the built-in defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, HtpasswdConfig, TlsConfig};

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
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print an htpasswd line (bcrypt) for a user.
    Htpasswd(crate::commands::htpasswd::HtpasswdArgs),
    /// Print a Kubernetes image pull Secret for this registry.
    PullSecret(crate::commands::pull_secret::PullSecretArgs),
    /// Run one garbage collection pass now, against the storage of a running server
    /// (the standard registry's `garbage-collect`, with its flags, runs online here).
    #[command(alias = "garbage-collect")]
    Gc(GcArgs),
    /// Report the bytes each repository holds (logical and unique).
    Du(DuArgs),
    /// Import a standard registry's (CNCF Distribution) filesystem storage, verified.
    Import(crate::commands::import::ImportArgs),
}

/// The config file, by flag or positionally as the standard registry takes it.
#[derive(Debug, Args, Default)]
pub struct ConfigFile {
    /// YAML config file (see docs: `log`, `storage`, `auth`, `http`).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// The config file as a positional argument, as the standard registry takes
    /// it: `registry serve /etc/docker/registry/config.yml`.
    #[arg(value_name = "CONFIG", conflicts_with = "config")]
    pub config_path: Option<PathBuf>,
}

impl ConfigFile {
    /// The config file, given either way.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.config.as_deref().or(self.config_path.as_deref())
    }
}

/// `registry gc` (alias `garbage-collect`).
#[derive(Debug, Args, Default)]
pub struct GcArgs {
    /// The config file: its storage and `storage.gc` settings.
    #[command(flatten)]
    pub file: ConfigFile,
    /// Say what the pass would delete and free; delete nothing.
    #[arg(long, short = 'd')]
    pub dry_run: bool,
    /// Delete untagged manifests whatever their age and policy (still never within
    /// `storage.gc.delay`, never in a repository a policy protects).
    #[arg(long, short = 'm')]
    pub delete_untagged: bool,
    /// Print only the summary line, not every deleted tag and manifest.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `registry du`.
#[derive(Debug, Args, Default)]
pub struct DuArgs {
    /// The config file: its storage.
    #[command(flatten)]
    pub file: ConfigFile,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `registry config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (with the environment's `REGISTRY_*`
    /// overrides) and the files it names, without starting anything.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

/// `registry serve` flags; each overrides the config file and environment.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// The config file.
    #[command(flatten)]
    pub file: ConfigFile,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long)]
    pub addr: Option<String>,
    /// Folder that holds blobs, manifests, tags and uploads [default: ./data].
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// htpasswd file with bcrypt entries; without it, auth is off.
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    /// Realm sent in the `WWW-Authenticate` challenge [default: Registry Realm].
    #[arg(long)]
    pub realm: Option<String>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long)]
    pub log_format: Option<String>,
    /// PEM certificate chain for built-in HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for built-in HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow serving without authentication on a non-loopback address.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// Refuse DELETE of manifests, tags and blobs.
    #[arg(long)]
    pub no_delete: bool,
}

impl ServeArgs {
    /// Applies the flags that were given on top of `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(addr) = &self.addr {
            config.http.addr = addr.clone();
        }
        if let Some(storage) = &self.storage {
            config.storage.filesystem.rootdirectory = storage.clone();
        }
        if let Some(path) = &self.htpasswd {
            let realm = config.auth.htpasswd.as_ref().map(|h| h.realm.clone());
            config.auth.htpasswd = Some(HtpasswdConfig {
                path: path.clone(),
                realm: realm.unwrap_or_else(|| "Registry Realm".into()),
            });
        }
        if let (Some(realm), Some(h)) = (&self.realm, config.auth.htpasswd.as_mut()) {
            h.realm = realm.clone();
        }
        if let Some(level) = &self.log_level {
            config.log.level = level.clone();
        }
        if let Some(format) = &self.log_format {
            config.log.formatter = format.clone();
        }
        if let (Some(certificate), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.http.tls = Some(TlsConfig {
                certificate: certificate.clone(),
                key: key.clone(),
                ..TlsConfig::default()
            });
        }
        if self.allow_anonymous {
            config.auth.anonymous = true;
        }
        if self.no_delete {
            config.storage.delete.enabled = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Settings};

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["registry", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(a) => a,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    fn resolve(args: &[&str], file: Option<&str>, env: &[(&str, &str)]) -> Settings {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let path = file.map(|text| {
            std::fs::write(tmp.path(), text).unwrap();
            tmp.path()
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let (mut config, _) = load(path, env).unwrap();
        serve(args).apply(&mut config);
        Settings::from_config(&config).unwrap()
    }

    #[test]
    fn defaults() {
        let s = resolve(&[], None, &[]);
        assert_eq!(s.addr.to_string(), "127.0.0.1:5000");
        assert_eq!(s.storage.to_string(), "./data");
        assert!(s.htpasswd.is_none());
        assert!(s.delete_enabled);
        assert!(s.check_exposure().is_ok());
    }

    #[test]
    fn flags_override_environment_override_file() {
        let file = "http:\n  addr: 127.0.0.1:1000\nstorage:\n  filesystem:\n    rootdirectory: /file\nlog:\n  level: debug\n";
        let env = [
            ("REGISTRY_HTTP_ADDR", "127.0.0.1:2000"),
            ("REGISTRY_LOG_LEVEL", "warn"),
        ];
        let s = resolve(&[], Some(file), &[]);
        assert_eq!(
            (s.addr.port(), s.storage.to_string(), s.log_level.as_str()),
            (1000, "/file".to_owned(), "debug")
        );
        let s = resolve(&[], Some(file), &env);
        assert_eq!(
            (s.addr.port(), s.storage.to_string(), s.log_level.as_str()),
            (2000, "/file".to_owned(), "warn")
        );
        let s = resolve(
            &["--addr", "127.0.0.1:3000", "--log-level", "error"],
            Some(file),
            &env,
        );
        assert_eq!(
            (s.addr.port(), s.storage.to_string(), s.log_level.as_str()),
            (3000, "/file".to_owned(), "error")
        );
    }

    #[test]
    fn htpasswd_flag_keeps_the_file_realm_unless_given() {
        let file = "auth:\n  htpasswd:\n    realm: Corp\n    path: /file/htpasswd\n";
        let s = resolve(&["--htpasswd", "/flag/htpasswd"], Some(file), &[]);
        assert_eq!(
            s.htpasswd,
            Some((PathBuf::from("/flag/htpasswd"), "Corp".into()))
        );
        let s = resolve(&["--htpasswd", "/f", "--realm", "Flag"], Some(file), &[]);
        assert_eq!(s.htpasswd, Some((PathBuf::from("/f"), "Flag".into())));
    }

    #[test]
    fn public_address_needs_auth_or_an_explicit_flag() {
        let err = resolve(&["--addr", "0.0.0.0:5000"], None, &[])
            .check_exposure()
            .unwrap_err();
        assert!(err.contains("--htpasswd"), "{err}");
        assert!(
            resolve(&["--addr", "0.0.0.0:5000", "--allow-anonymous"], None, &[])
                .check_exposure()
                .is_ok()
        );
        assert!(
            resolve(&["--addr", "0.0.0.0:5000", "--htpasswd", "x"], None, &[])
                .check_exposure()
                .is_ok()
        );
    }

    #[test]
    fn tls_flags_go_together() {
        assert!(Cli::try_parse_from(["registry", "serve", "--tls-cert", "c.pem"]).is_err());
        let s = resolve(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], None, &[]);
        assert_eq!(s.tls.unwrap().key, PathBuf::from("k.pem"));
    }
}
