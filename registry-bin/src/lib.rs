//! An OCI Distribution registry server, as a library and as the `registry`
//! binary.
//!
//! Compose a [`Registry`] from a storage [`Store`](registry_storage::Store)
//! and the auth traits, then either call [`Registry::handle`] from your own
//! HTTP server or hand it to [`serve`] with a listener and a shutdown future:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use registry_bin::{serve, Registry, ServeOptions};
//! use registry_storage::{FsBackend, Store};
//!
//! let store = Store::new(Arc::new(FsBackend::new("./data")));
//! let registry = Registry::builder(store).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! serve(listener, registry, ServeOptions::default(), std::future::pending()).await
//! # }
//! ```
//!
//! # Layout
//! - [`registry`]: the builder, shared state, probes, the request path.
//! - [`dispatch`]: route to handler.
//! - [`server`]: `serve(listener, registry, options, shutdown)`, TLS, metrics listener.
//! - [`app`]: composition of `registry serve` from settings.
//! - [`config`]: the YAML config file, environment overrides, settings.
//! - [`preflight`]: start-up checks of the paths the config names.
//! - [`tls`]: rustls with certificates reloaded from their files.
//! - [`auth_file`]: htpasswd users reloaded from their file.
//! - [`watch`]: noticing that a file changed.
//! - [`metrics`]: Prometheus counters and histograms.
//! - [`maintenance`]: garbage collection on a schedule and from the command line.
//! - [`notify`]: events POSTed to webhooks, as CNCF Distribution sends them.
//! - [`proxy`]: the pull-through cache of upstream registries.
//! - [`idle`]: closing connections that neither read nor write.
//! - [`throttle`]: failed-login limits per address and per user.
//! - [`timestamp`]: times in UTC, for notifications and the web page.
//! - [`handlers`]: one module per group of endpoints.
//! - [`access`]: authentication on the blocking pool, authorization per route.
//! - [`body`]: the loop that streams request bodies into storage while hashing.
//! - [`sessions`]: upload hashes kept between requests, rebuilt from storage.
//! - [`http_error`]: the only place errors become responses.
//! - [`reply`]: response construction.
//! - [`cli`]: the command line of the `registry` binary.
//! - [`commands`]: set-up helpers: `registry htpasswd`, `registry pull-secret`.
//! - [`ui`]: the web page (`http.ui`), on the same port, behind the same users.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod app;
pub mod auth_file;
pub mod background;
pub mod body;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod handlers;
pub mod http_error;
pub mod idle;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod preflight;
pub mod proxy;
pub mod registry;
pub mod reply;
pub mod server;
pub mod sessions;
pub mod storage;
pub mod throttle;
pub mod timestamp;
pub mod tls;
pub mod ui;
pub mod watch;

pub use registry::{OverTls, PeerAddr, Registry, RegistryBuilder};
pub use server::{serve, serve_metrics, ServeOptions};
