//! A full disk: the real binary stores on a 24 MiB tmpfs mounted for the
//! test (CI and this machine run as root; elsewhere the test fails and says
//! why). A filler file leaves about 8 MiB free, then:
//! - a 40 MiB one-shot push fails with 507 Insufficient Storage, code
//!   `UNKNOWN`, a message saying the storage is full, and leaves nothing:
//!   no blob under that digest, no upload data, the free space as before;
//! - a 40 MiB chunk fails the same way, and cancelling the upload frees
//!   what it held;
//! - earlier blobs still pull, the server stays ready;
//! - once the filler is deleted, a 12 MiB push that could not fit before
//!   succeeds.

#![allow(clippy::unwrap_used)]

#[path = "common/binary.rs"]
mod binary;
#[path = "common/client.rs"]
mod client;
#[path = "common/disk.rs"]
mod disk;
#[path = "common/raw.rs"]
mod raw;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/spawn.rs"]
mod spawn;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use binary::Binary;
use client::{sha256, Client};
use raw::{read_response, Outcome, Response};
use rng::Rng;

const MIB: u64 = 1024 * 1024;
const DISK: u64 = 24 * MIB;
const LEFT_FREE: u64 = 8 * MIB;

/// A tmpfs mounted at `dir`, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Tmpfs {
                dir: dir.to_owned(),
            },
            Ok(out) => panic!(
                "cannot mount a {bytes}-byte tmpfs at {} for the disk-full test \
                 (it needs root or CAP_SYS_ADMIN): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("cannot run mount for the disk-full test: {e}"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let plain = Command::new("umount").arg(&self.dir).status();
        if !plain.is_ok_and(|s| s.success()) {
            // Still busy (a process we could not reap): detach it instead.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Bytes available on the filesystem holding `path`, as `df` reports them.
fn available(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Sends a request with a large body while reading: the server may answer
/// (and stop reading) before the body is done, and that answer is the result.
fn send_streaming(addr: &str, head: &[u8], body: &[u8], timeout: Duration) -> Outcome {
    let stream = TcpStream::connect(addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let (head, body) = (head.to_vec(), body.to_vec());
    let sending = std::thread::spawn(move || {
        if writer.write_all(&head).is_err() {
            return;
        }
        for chunk in body.chunks(256 * 1024) {
            if writer.write_all(chunk).is_err() {
                return; // the server stopped reading: its answer tells why
            }
        }
    });
    let mut reader = stream;
    let outcome = read_response(&mut reader, Instant::now() + timeout, false);
    // Unblocks the sender if the server neither reads nor closes.
    let _ = reader.shutdown(Shutdown::Both);
    sending.join().unwrap();
    outcome
}

fn head(method: &str, target: &str, length: usize) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Checks the answer to a write that ran out of space; returns what is wrong.
fn check_full(what: &str, outcome: &Outcome) -> Option<String> {
    let Outcome::Answered(r) = outcome else {
        return Some(format!("{what}: no answer: {outcome:?}"));
    };
    let message = full_message(r);
    if r.status == 507
        && r.error_codes() == Some(vec!["UNKNOWN".into()])
        && message.contains("storage is full")
    {
        None
    } else {
        Some(format!(
            "{what}: want 507 UNKNOWN \"storage is full\", got {} {}",
            r.status,
            r.text()
        ))
    }
}

fn full_message(r: &Response) -> String {
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every file inside some `_uploads` under `root`.
fn upload_files(root: &Path) -> Vec<PathBuf> {
    disk::files(root)
        .into_iter()
        .filter(|f| disk::is_upload(f))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_cleanly_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let tmpfs = Tmpfs::mount(&mnt, DISK);
    let root = mnt.join("data");
    let mut server = tokio::task::block_in_place(|| Binary::start(&root));
    let client = Client::new(&server.url(""), Duration::from_secs(60));
    let mut rng = Rng::new(Rng::clock_seed());
    // Failures that wait for the 507 mapping are gathered, so every other
    // property is still checked and reported.
    let mut failures = Vec::new();

    let early = rng.bytes(MIB as usize);
    let early_digest = client.push_monolithic("full/app", &early).await.unwrap();
    let filler = mnt.join("filler");
    let filler_len = available(&mnt).saturating_sub(LEFT_FREE);
    std::fs::write(&filler, vec![0x5a; filler_len as usize]).unwrap();
    let free_before = available(&mnt);
    assert!(free_before <= LEFT_FREE + MIB, "{free_before} bytes free");

    // A 40 MiB one-shot push.
    let big = rng.bytes(40 * MIB as usize);
    let big_digest = sha256(&big);
    let target = format!("/v2/full/app/blobs/uploads/?digest={big_digest}");
    let outcome = tokio::task::block_in_place(|| {
        send_streaming(
            &server.addr,
            &head("POST", &target, big.len()),
            &big,
            Duration::from_secs(60),
        )
    });
    failures.extend(check_full("one-shot push", &outcome));
    if let Outcome::Answered(r) = &outcome {
        assert!(r.status >= 500, "a failed write answered {}", r.status);
    }
    assert_eq!(
        client.head_blob("full/app", &big_digest).await.unwrap(),
        None
    );
    let left = upload_files(&root);
    assert!(
        left.is_empty(),
        "upload data left after a failed one-shot push: {left:?}"
    );
    let free_after = available(&mnt);
    assert!(
        free_after + MIB / 2 >= free_before,
        "the failed push still holds space: {free_before} bytes free before, {free_after} after"
    );

    // A 40 MiB chunk: fails too; cancelling the upload frees its bytes.
    let res = reqwest::Client::new()
        .post(server.url("/v2/full/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let outcome = tokio::task::block_in_place(|| {
        send_streaming(
            &server.addr,
            &head("PATCH", &location, big.len()),
            &big,
            Duration::from_secs(60),
        )
    });
    failures.extend(check_full("chunk", &outcome));
    if let Outcome::Answered(r) = &outcome {
        assert!(r.status >= 500, "a failed chunk answered {}", r.status);
    }
    // A full disk gives the partial upload's space back at once: the upload
    // is gone, and the client starts over once space is freed.
    let res = reqwest::Client::new()
        .get(server.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the failed upload was removed");
    let left = upload_files(&root);
    assert!(
        left.is_empty(),
        "upload data left after a full disk: {left:?}"
    );
    let free_after = available(&mnt);
    assert!(
        free_after + MIB / 2 >= free_before,
        "a cancelled upload still holds space: {free_before} bytes free before, {free_after} after"
    );

    // What was there still pulls; the server is ready.
    let pulled = client.get_blob("full/app", &early_digest).await.unwrap();
    assert_eq!(
        pulled.as_deref(),
        Some(&early[..]),
        "an earlier blob after the failures"
    );
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // Space freed: a push that could not fit before now succeeds.
    std::fs::remove_file(&filler).unwrap();
    let late = rng.bytes(12 * MIB as usize);
    let late_digest = client.push_monolithic("full/app", &late).await.unwrap();
    let pulled = client.get_blob("full/app", &late_digest).await.unwrap();
    assert_eq!(pulled.map(|b| sha256(&b)), Some(late_digest));
    let (count, problems) = disk::BlobCheck::default().run(&root);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(count, 2, "exactly the two blobs that were pushed");

    server.kill();
    drop(tmpfs);
    assert!(
        failures.is_empty(),
        "the full disk is not reported as the spec error clients understand:\n{}",
        failures.join("\n")
    );
}
