//! `push-ceiling`: the fastest a verified, durable push can be on this machine.
//!
//! For every byte of a pushed blob, a registry that checks digests and syncs before
//! its `201` must at least: take the byte from a socket (which the client wrote into),
//! hash it with SHA-256, and write it to the page cache and on to the disk. This tool
//! times each of those stages alone, on bytes that stay in memory, and counts the CPU
//! each takes on the whole machine (both ends of the socket, the kernel's writeback
//! threads), from `/proc/stat`. Two bounds follow, which no registry can beat here
//! while its client shares the machine:
//!
//! - one push: SHA-256 on one core (a digest is one sequential stream), and the cores
//!   divided by the CPU the stages take per byte;
//! - pushes in parallel: the cores divided by that CPU.
//!
//! Nothing else is counted (HTTP parsing, scheduling, the client making its blob), so
//! the real bound is lower still. The disk's speed is reported but bounds nothing: the
//! probe writes and then syncs once (the standard library has no call that only starts
//! a write-back), and the registry's writer, which starts the write-back of every batch
//! at once, gets more out of the same disk. `benches/compare.sh` runs this before its rounds and
//! prints the bounds under its table. One JSON line on stdout.

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use clap::Parser;
use sha2::{Digest as _, Sha256};

/// Times the stages every verified, synced push goes through; prints the bounds
/// they put on push throughput here as one JSON line.
#[derive(Debug, Parser)]
#[command(name = "push-ceiling", version, about)]
struct Args {
    /// Directory for the disk stage's file (put it on the registry's storage disk).
    #[arg(long)]
    dir: PathBuf,
    /// Bytes each stage moves, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: usize,
    /// Runs of each stage; the medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// The bytes every stage moves, reused so that no stage pays to make them: large
/// enough to leave the CPU caches, small next to a stage's total.
const SOURCE: usize = 64 * 1024 * 1024;
/// Bytes per read, write and hash update.
const STEP: usize = 1024 * 1024;
/// `/proc/stat` counts in units of `USER_HZ`, which Linux fixes at 100 for user space.
const USER_HZ: f64 = 100.0;

/// One run of a stage: wall seconds and CPU seconds spent machine-wide.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// CPU seconds all cores spent busy since boot: user, nice, system, irq and softirq
/// (not idle, iowait or steal, which are time the machine did not work for us).
fn busy_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum();
    Ok(busy as f64 / USER_HZ)
}

fn timed(stage: impl FnOnce() -> io::Result<()>) -> io::Result<Timing> {
    let (cpu0, t0) = (busy_seconds()?, Instant::now());
    stage()?;
    let wall = t0.elapsed().as_secs_f64();
    Ok(Timing {
        wall,
        cpu: busy_seconds()? - cpu0,
    })
}

/// Incompressible bytes: SHA-256 of a counter, block after block.
fn source() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SOURCE);
    let mut counter = 0u64;
    while bytes.len() < SOURCE {
        bytes.extend_from_slice(&Sha256::digest(counter.to_le_bytes()));
        counter += 1;
    }
    bytes
}

/// The steps of `total` bytes taken from `source` in turn.
fn steps(source: &[u8], total: usize) -> impl Iterator<Item = &[u8]> {
    source.chunks(STEP).cycle().take(total.div_ceil(STEP))
}

fn hash(source: &[u8], total: usize) -> io::Result<()> {
    let mut state = Sha256::new();
    for step in steps(source, total) {
        state.update(step);
    }
    std::hint::black_box(state.finalize());
    Ok(())
}

/// One TCP stream over loopback: a thread writes, this one reads.
fn loopback(source: &[u8], total: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::scope(move |s| {
        let sender = s.spawn(move || -> io::Result<()> {
            let mut stream = TcpStream::connect(addr)?;
            steps(source, total).try_for_each(|step| stream.write_all(step))
        });
        // Closed before any early return, so a sender still connecting fails instead
        // of waiting forever for a reader.
        let accepted = listener.accept();
        drop(listener);
        let (mut stream, _) = accepted?;
        let mut buf = vec![0u8; STEP];
        let mut received = 0;
        while received < total {
            match stream.read(&mut buf)? {
                0 => break,
                n => received += n,
            }
        }
        sender
            .join()
            .map_err(|_| io::Error::other("sender panicked"))??;
        if received < total {
            return Err(io::Error::other("loopback stream ended early"));
        }
        Ok(())
    })
}

/// Appends to a new file and syncs it once at the end, then removes the file.
fn disk(source: &[u8], total: usize, path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    let written = steps(source, total)
        .try_for_each(|step| file.write_all(step))
        .and_then(|()| file.sync_data());
    let removed = std::fs::remove_file(path);
    written.and(removed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A stage's medians over its runs: GB/s and CPU seconds per GB.
struct Stage {
    gb_s: f64,
    cpu_s_per_gb: f64,
}

fn measure(
    runs: usize,
    total: usize,
    mut run: impl FnMut() -> io::Result<()>,
) -> io::Result<Stage> {
    let timings = (0..runs.max(1))
        .map(|_| timed(&mut run))
        .collect::<io::Result<Vec<Timing>>>()?;
    let gb = total as f64 / 1e9;
    Ok(Stage {
        gb_s: median(timings.iter().map(|t| gb / t.wall).collect()),
        cpu_s_per_gb: median(timings.iter().map(|t| t.cpu / gb).collect()),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn run(args: &Args) -> io::Result<serde_json::Value> {
    let total = args.mib * 1024 * 1024;
    let cores = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let source = source();
    let path = args
        .dir
        .join(format!("push-ceiling-{}", std::process::id()));
    let sha = measure(args.runs, total, || hash(&source, total))?;
    let net = measure(args.runs, total, || loopback(&source, total))?;
    let disk = measure(args.runs, total, || disk(&source, total, &path))?;
    let cpu_total = sha.cpu_s_per_gb + net.cpu_s_per_gb + disk.cpu_s_per_gb;
    let cpu_bound = cores / cpu_total;
    let one = sha.gb_s.min(cpu_bound);
    let parallel = (cores * sha.gb_s).min(cpu_bound);
    Ok(serde_json::json!({
        "probe": "push-ceiling",
        "cores": cores,
        "mib": args.mib,
        "runs": args.runs,
        "sha256_gb_s": round3(sha.gb_s),
        "loopback_gb_s": round3(net.gb_s),
        "disk_gb_s": round3(disk.gb_s),
        "cpu_s_per_gb": {
            "sha256": round3(sha.cpu_s_per_gb),
            "loopback": round3(net.cpu_s_per_gb),
            "disk": round3(disk.cpu_s_per_gb),
            "total": round3(cpu_total),
        },
        "one_push_gb_s": round3(one),
        "parallel_pushes_gb_s": round3(parallel),
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
