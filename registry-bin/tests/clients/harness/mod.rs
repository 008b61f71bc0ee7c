//! The shared harness: tools, the registry process (plain HTTP or HTTPS
//! with a test CA), test images, the registry as seen by plain requests (to
//! check what a client stored), the per-test state folders the container
//! tools need, and [`over_http_and_https!`], which runs a flow over both.

pub mod containerd;
pub mod containers;
pub mod distribution;
pub mod image;
pub mod raw;
pub mod server;
pub mod tar;
pub mod token_issuer;

use std::process::{Command, Output, Stdio};

pub use image::{Blob, Image, Index, Layout};
pub use server::{Endpoint, Registry, Scheme};

/// Makes two tests of each flow `fn <flow>(scheme: Scheme)` of the module:
/// `<flow>::http` and `<flow>::https`, so a failure names the client (the
/// module), the flow, the step (in the panic) and the scheme.
/// `async: <flows>` does the same for `async fn` flows, on a two-thread runtime.
macro_rules! over_http_and_https {
    ($($flow:ident),+ $(,)?) => {$(
        mod $flow {
            #[test]
            fn http() {
                super::$flow($crate::harness::Scheme::Http)
            }
            #[test]
            fn https() {
                super::$flow($crate::harness::Scheme::Https)
            }
        }
    )+};
    (async: $($flow:ident),+ $(,)?) => {$(
        mod $flow {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                super::$flow($crate::harness::Scheme::Http).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn https() {
                super::$flow($crate::harness::Scheme::Https).await
            }
        }
    )+};
}
pub(crate) use over_http_and_https;

pub const USER: &str = "ci";
/// A password with a colon and a space: clients must not split or trim it.
pub const PASS: &str = "pa55:word with space";

pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Fails the test, never skips it, when `tool` is not on `PATH`.
pub fn need(tool: &str, install: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is not installed: run `bash scripts/test` as root, which installs it \
         (Debian: {install})"
    );
}

/// Runs a step that must succeed; panics naming the step, with the output.
pub fn run(step: &str, cmd: &mut Command) -> String {
    succeeded(step, &output(step, cmd))
}

/// Like [`run`], but a first failure whose stderr contains one of `flakes` (a
/// known failure of the client itself, or of a replica the test killed, not of
/// the registry) is retried once. Any other failure, or a second one, fails the
/// test. `cmd` gets the attempt's number (1, then 2), so a retry can differ
/// from the first try.
pub fn run_retrying_once(step: &str, flakes: &[&str], cmd: impl Fn(u32) -> Command) -> String {
    let first = output(step, &mut cmd(1));
    let stderr = String::from_utf8_lossy(&first.stderr);
    if first.status.success() || !flakes.iter().any(|flake| stderr.contains(flake)) {
        return succeeded(step, &first);
    }
    eprintln!("{step}: retrying once after a known client flake:\n{stderr}");
    run(step, &mut cmd(2))
}

/// The step's stdout; panics naming the step, with the output, if it failed.
fn succeeded(step: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{step}: failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a step that must fail; returns its stderr.
pub fn run_fails(step: &str, cmd: &mut Command) -> String {
    let out = output(step, cmd);
    assert!(
        !out.status.success(),
        "{step}: succeeded but should have failed\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn output(step: &str, cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{step}: could not start {:?}: {e}", cmd.get_program()))
}

/// A command that fails with `stderr` on its first run (recorded in
/// `marker`) and succeeds after, counting its runs in `marker`.
#[cfg(test)]
fn flaky_once(marker: &std::path::Path, stderr: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo run >> "$1"; [ "$(wc -l < "$1")" -gt 1 ] || { echo "$2" >&2; exit 1; }"#)
        .arg("sh")
        .arg(marker)
        .arg(stderr);
    cmd
}

#[test]
fn only_the_named_flake_is_retried_and_only_once() {
    let dir = server::workdir();
    let runs = |m: &std::path::Path| std::fs::read_to_string(m).unwrap().lines().count();
    let flake = dir.path().join("flake");
    run_retrying_once("flake", &["known flake"], |_| {
        flaky_once(&flake, "a known flake")
    });
    assert_eq!(runs(&flake), 2);
    let other = dir.path().join("other");
    let failed = std::panic::catch_unwind(|| {
        run_retrying_once("other", &["known flake"], |_| {
            flaky_once(&other, "a real error")
        })
    });
    assert!(failed.is_err(), "another failure must fail the step");
    assert_eq!(runs(&other), 1, "and must not be retried");
}
