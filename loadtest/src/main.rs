//! `registry-load`: drives a running OCI registry over HTTP and prints one JSON
//! line per workload (throughput, latency percentiles, the server's peak RSS).
//!
//! It speaks only the Distribution API that every registry implements (POST +
//! PUT uploads, PATCH chunks with `Content-Range`, blob and manifest GETs), so
//! the same run can target this project's registry and CNCF Distribution.
//! Every request carries basic auth. Every workload is bounded by a request
//! count and by `--max-seconds`, and the tool stops by itself.
//!
//! # Layout
//! - this file: flags, the runtime, the loop over workloads.
//! - `client.rs`: the HTTP client and the registry operations.
//! - `data.rs`: deterministic blob contents and their digests.
//! - `report.rs`: latency percentiles, peak RSS, the JSON line.
//! - `workloads/`: one module per workload family.

#![forbid(unsafe_code)]

mod client;
mod data;
mod report;
mod workloads;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::client::Client;
use crate::workloads::Workload;

/// Load generator for OCI registries; one JSON line per workload on stdout.
#[derive(Debug, Parser)]
#[command(name = "registry-load", version, about)]
pub struct Args {
    /// Base URL of the registry, e.g. `http://127.0.0.1:5000`.
    #[arg(long)]
    pub url: String,
    /// Basic-auth user for pushes and pulls.
    #[arg(long)]
    pub user: String,
    /// Its password.
    #[arg(long)]
    pub password: String,
    /// User for the manifest-GET workload (e.g. one with a bcrypt cost of 10);
    /// defaults to `--user`.
    #[arg(long)]
    pub get_user: Option<String>,
    /// Its password; defaults to `--password`.
    #[arg(long)]
    pub get_password: Option<String>,
    /// Workloads to run, comma-separated: push-1g, push-4x256m, push-chunked,
    /// pull-1g, manifest-get, mixed, gc-fill, gc-latency, proxy-seed, proxy-pull, or `all`
    /// (the first six).
    #[arg(long, default_value = "all", value_delimiter = ',')]
    pub workload: Vec<String>,
    /// A label copied into every JSON line (e.g. `ours` or `distribution`).
    #[arg(long, default_value = "registry")]
    pub label: String,
    /// PID of the server, to report its peak RSS (VmHWM, reset before each
    /// workload when `/proc/<pid>/clear_refs` is writable). Several, comma-separated,
    /// for replicas behind a load balancer: the report gives the highest peak of any
    /// one of them (the memory each replica must be given).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Seed of the blob contents; use a different one per run so every push
    /// stores new bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Size of the large blob (push-1g, pull-1g) in MiB; push-4x256m pushes
    /// four blobs of a quarter of it, push-chunked half of it.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// PATCH chunk size of push-chunked, in MiB.
    #[arg(long, default_value_t = 10)]
    pub chunk_mib: u64,
    /// How many GETs of the large blob pull-1g makes; pulls in a row of each proxy-pull.
    #[arg(long, default_value_t = 3)]
    pub pull_repeats: u32,
    /// Concurrent clients of manifest-get and gc-fill.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Length of the timed workloads (manifest-get, mixed), in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Request cap of manifest-get (it stops at the cap or the duration).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// Pushers of the mixed workload.
    #[arg(long, default_value_t = 4)]
    pub pushers: usize,
    /// Pullers of the mixed workload.
    #[arg(long, default_value_t = 16)]
    pub pullers: usize,
    /// Layer sizes of the mixed workload's images, in KiB.
    #[arg(long, default_value = "1024,256", value_delimiter = ',')]
    pub layer_kib: Vec<u64>,
    /// Images gc-fill pushes (two small blobs each); half are deleted after.
    #[arg(long, default_value_t = 10_000)]
    pub gc_images: u64,
    /// Repositories gc-fill spreads them over.
    #[arg(long, default_value_t = 1_000)]
    pub gc_repos: u64,
    /// Bytes of each gc-fill layer.
    #[arg(long, default_value_t = 1024)]
    pub gc_layer_bytes: usize,
    /// Repository of proxy-seed and proxy-pull (through a cache: its name there).
    #[arg(long, default_value = "bench/proxy")]
    pub proxy_repo: String,
    /// Layers of the proxy-seed image (`--size-mib` split evenly).
    #[arg(long, default_value_t = 4)]
    pub proxy_layers: u64,
    /// Pulls at once of proxy-pull.
    #[arg(long, default_value_t = 1)]
    pub pulls: usize,
    /// What proxy-pull measures, in its report's name: `proxy-<phase>`.
    #[arg(long, default_value = "pull")]
    pub proxy_phase: String,
    /// Hard limit for any one workload, in seconds; a workload that hits it
    /// reports an error.
    #[arg(long, default_value_t = 120.0)]
    pub max_seconds: f64,
}

impl Args {
    fn max_time(&self) -> Duration {
        Duration::from_secs_f64(self.max_seconds)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let workloads = match Workload::parse_list(&args.workload) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = runtime.block_on(async {
        let client = Client::new(&args.url, &args.user, &args.password);
        let mut failed = false;
        for workload in workloads {
            let deadline = args.max_time();
            let reports = match tokio::time::timeout(deadline, workload.run(&client, &args)).await {
                Ok(reports) => reports,
                Err(_) => vec![report::Report::failed(
                    workload.name(),
                    format!("did not finish within {} s", args.max_seconds),
                )],
            };
            for mut r in reports {
                r.label = args.label.clone();
                failed |= r.error.is_some();
                println!("{}", r.to_json());
            }
        }
        failed
    });
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
