//! The `registry` binary: reads flags, composes concrete types, serves.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use registry_auth::{
    AllowAll, Anonymous, AuthenticatedOnly, Authenticator, Authorizer, CachingAuthenticator,
    Htpasswd, HtpasswdAuthenticator,
};
use registry_bin::cli::{Cli, Command, ServeArgs};
use registry_bin::{serve, Registry, ServeOptions};
use registry_storage::{CacheConfig, FsBackend, Store};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => run_serve(args),
    }
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    if let Err(message) = args.check_exposure() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(args: ServeArgs) -> Result<(), String> {
    let backend = FsBackend::open(&args.storage)
        .await
        .map_err(|e| format!("storage {}: {e}", args.storage.display()))?;
    let (authenticator, authorizer): (Arc<dyn Authenticator>, Arc<dyn Authorizer>) = match &args
        .htpasswd
    {
        Some(path) => {
            let users = Htpasswd::load(path).map_err(|e| e.to_string())?;
            tracing::info!(users = users.len(), file = %path.display(), "basic auth on");
            (
                // bcrypt once per credential, not per request (registry-auth/src/cache.rs).
                Arc::new(CachingAuthenticator::new(HtpasswdAuthenticator::new(
                    users,
                    args.realm.clone(),
                ))),
                Arc::new(AuthenticatedOnly),
            )
        }
        None => {
            tracing::warn!("auth is off: anyone who can reach this address can push and pull (add --htpasswd FILE)");
            (Arc::new(Anonymous), Arc::new(AllowAll))
        }
    };
    let store = Store::new(Arc::new(backend)).with_cache(CacheConfig::default());
    let registry = Registry::builder(store)
        .authenticator(authenticator)
        .authorizer(authorizer)
        .delete_enabled(!args.no_delete)
        .build();
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(addr = %local, storage = %args.storage.display(), "registry listening");
    serve(
        listener,
        registry,
        ServeOptions::default(),
        shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("registry stopped");
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
