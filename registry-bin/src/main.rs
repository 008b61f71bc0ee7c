//! The `registry` binary: reads the command line and config, composes the
//! server (see `app.rs`), and runs it until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use registry_bin::cli::{Cli, Command, ConfigCommand, ConfigFile, ServeArgs};
use registry_bin::config::{load, LogFormat, Settings, StorageSettings};
use registry_bin::{app, commands, maintenance};
use registry_storage::Pace;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Htpasswd(args) => {
            return commands::stdio(|i, o| commands::htpasswd::run(args, i, o))
        }
        Command::PullSecret(args) => {
            return commands::stdio(|i, o| commands::pull_secret::run(args, i, o))
        }
        Command::Gc(args) => maintain(&args.file, |s, pace| {
            maintenance::gc_command(s, &args, pace)
        }),
        Command::Du(args) => maintain(&args.file, |s, pace| {
            maintenance::du_command(s, args.json, pace)
        }),
        Command::Import(args) => match import(&args) {
            // Ran to the end but left objects out (listed in the summary).
            Ok(false) => return ExitCode::from(1),
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn settings(
    file: Option<&std::path::Path>,
    args: &ServeArgs,
) -> Result<(Settings, Vec<String>), String> {
    let (mut config, warnings) = load(file, std::env::vars()).map_err(|e| e.to_string())?;
    args.apply(&mut config);
    let settings = Settings::from_config(&config).map_err(|e| e.to_string())?;
    Ok((settings, warnings))
}

fn config_check(file: &std::path::Path) -> Result<(), String> {
    let (settings, warnings) = settings(Some(file), &ServeArgs::default())?;
    for warning in warnings {
        println!("warning: {warning}");
    }
    for line in app::check(&settings)? {
        println!("ok: {line}");
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let storage_exists = match &settings.storage {
        StorageSettings::Filesystem(root) => root.is_dir(),
        StorageSettings::S3(_) => {
            // The bucket, the credentials, the clock and conditional deletes, as the
            // server checks them at start.
            runtime.block_on(registry_bin::storage::open_backend(&settings.storage))?;
            println!("ok: {} answers", settings.storage);
            true
        }
    };
    if !(settings.gc.retention.is_empty() && settings.gc.evict.is_empty()) && storage_exists {
        // What the retention policies and eviction rules would delete today, without
        // deleting it.
        let preview = runtime.block_on(maintenance::preview(&settings))?;
        println!("retention today (dry run):\n{preview}");
    }
    println!("{}: configuration is valid", file.display());
    Ok(())
}

/// Runs a maintenance command on the storage `file` configures, with its warnings on
/// standard error (standard output is the command's report).
fn maintain<F, Fut>(file: &ConfigFile, command: F) -> Result<(), String>
where
    F: FnOnce(Settings, Arc<dyn Pace>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (settings, warnings) = settings(file.path(), &ServeArgs::default())?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    // A pass or a walk beside a running server: background work, this thread included,
    // since `block_on` polls the command's future here; it yields to the server's traffic.
    let (runtime, governor) = registry_bin::background::runtime()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    governor.enlist_this_thread();
    runtime.block_on(async {
        let _watching = governor.watch(None);
        command(settings, governor.clone()).await
    })
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let (settings, warnings) = settings(args.file.path(), args)?;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .map_err(|e| format!("log.level: {e}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match settings.log_format {
        LogFormat::Text => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(app::run(settings, shutdown_signal()))
}

/// `registry import`: the target storage is the one `registry serve` would use.
fn import(args: &commands::import::ImportArgs) -> Result<bool, String> {
    let target = ServeArgs {
        storage: args.storage.clone(),
        ..ServeArgs::default()
    };
    let (settings, warnings) = settings(args.config.as_deref(), &target)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    commands::import::run(args, &settings.storage)
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
