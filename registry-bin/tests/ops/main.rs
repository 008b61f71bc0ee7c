//! Operating the `registry` binary: config files, built-in TLS and
//! certificate rotation, health and metrics, reloads, start-up checks and
//! graceful shutdown. Every test runs the real binary on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod harness;
#[path = "../common/spawn.rs"]
mod spawn;
#[path = "../common/test_ca.rs"]
mod test_ca;
#[path = "../common/token_server.rs"]
mod token_server;

mod config;
mod lifecycle;
mod probes;
mod readonly;
mod s3;
mod tls;
mod token;
