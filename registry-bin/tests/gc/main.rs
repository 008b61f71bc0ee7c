//! Garbage collection with the real `registry` binary (issue 14): the
//! commands an operator runs (`registry gc`, `garbage-collect`, `du`,
//! `config check`'s preview), the server's own schedule and its metrics,
//! retention policies, and passes racing pushes, mounts, deletes and
//! SIGKILL. Every server listens on 127.0.0.1 on a free port; every pass
//! from the command line is a separate process on the same storage, as in
//! production.
//!
//! Layout:
//! - `fixture`: the config file, the server, `registry` subcommands, what is on disk;
//! - `images`: image contents, pushes as clients make them, verified pulls;
//! - `walk`: a check of the storage tree that does not use the registry's code;
//! - `load`: pushers, mounters and a deleter, with the ledger of what was acknowledged;
//! - `cli`, `schedule`, `retention`, `stress`, `sigkill`: the tests;
//! - `replicas`: the stress load on three replicas sharing an S3 bucket (issue 15).

#![allow(clippy::unwrap_used)]

#[path = "../common/client.rs"]
mod client;
#[path = "../common/disk.rs"]
mod disk;
#[path = "../common/haproxy.rs"]
mod haproxy;
#[allow(dead_code, unused_imports)]
#[path = "../ops/harness.rs"]
mod harness;
#[path = "../common/rng.rs"]
mod rng;
#[path = "../../../registry-storage/tests/s3_env/mod.rs"]
mod s3_env;
#[path = "../common/spawn.rs"]
mod spawn;
#[path = "../common/test_ca.rs"]
mod test_ca;

mod fixture;
mod images;
mod load;
mod walk;

mod cli;
mod replicas;
mod retention;
mod schedule;
mod sigkill;
mod stress;
