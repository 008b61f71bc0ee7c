//! Hostile input, byte for byte: a table of raw HTTP/1.1 requests (path
//! traversal in names, tags and digests, NUL bytes, invalid UTF-8, oversized
//! names and headers, wrong content types, absurd pagination and ranges,
//! bodies longer or shorter than announced, requests cut off midway, unknown
//! methods), each with the 4xx and spec error code it must get. Never a 5xx,
//! never a panic, never a hang.
//!
//! The server's storage root is `<tmp>/root`; its sibling `<tmp>/canary`
//! holds a secret. Afterwards the canary must be untouched, its secret in no
//! response, and every file the server wrote must lie under `<tmp>/root/v1/`.

#![allow(clippy::unwrap_used)]

#[path = "../common/raw.rs"]
mod raw;
mod rows;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use raw::{exchange, request, Ending, Outcome};
use registry_auth::{AuthenticatedOnly, Htpasswd, HtpasswdAuthenticator};
use registry_bin::{serve, Registry, ServeOptions};
use registry_storage::{FsBackend, Store};
use sha2::{Digest as _, Sha256};

const USER: &str = "mallory";
const PASS: &str = "correct horse";
const REPO: &str = "hostile";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// How long any single request may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(5);

/// Panics anywhere in the process (the server runs in it).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// What a row must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status, with this code first in a spec JSON error body.
    Spec(u16, &'static str),
    /// One of these statuses, any body (hyper's own answers carry none).
    Status(&'static [u16]),
    /// A 4xx, or the connection closed without an answer, within the deadline.
    ClosedOr4xx,
}

/// One request of the table.
struct Row {
    what: String,
    bytes: Vec<u8>,
    ending: Ending,
    expect: Expect,
}

/// The server as the table sees it, with what the setup pushed.
struct Target {
    addr: String,
    /// The `Authorization` header line of the test user.
    auth: Vec<u8>,
    /// A layer in `REPO`, and its length.
    blob: String,
    blob_len: usize,
    /// The config blob (`{}`) in `REPO`.
    config: String,
}

impl Target {
    /// A request with the test user's credentials.
    fn row(
        &self,
        what: &str,
        method: &str,
        target: &[u8],
        headers: &[&[u8]],
        body: &[u8],
        expect: Expect,
    ) -> Row {
        let mut all: Vec<&[u8]> = vec![&self.auth];
        all.extend_from_slice(headers);
        Row {
            what: what.to_owned(),
            bytes: request(method, target, &all, body),
            ending: Ending::KeepOpen,
            expect,
        }
    }

    /// A request without the test user's credentials.
    fn anonymous(
        &self,
        what: &str,
        method: &str,
        target: &[u8],
        headers: &[&[u8]],
        expect: Expect,
    ) -> Row {
        Row {
            what: what.to_owned(),
            bytes: request(method, target, headers, b""),
            ending: Ending::KeepOpen,
            expect,
        }
    }

    /// Exactly these bytes, then the writing half is closed.
    fn verbatim(&self, what: &str, bytes: Vec<u8>, expect: Expect) -> Row {
        Row {
            what: what.to_owned(),
            bytes,
            ending: Ending::HalfClose,
            expect,
        }
    }

    fn send(&self, bytes: &[u8]) -> Outcome {
        exchange(&self.addr, bytes, Ending::KeepOpen, DEADLINE)
    }

    /// Opens an upload session in `REPO`; returns its path.
    fn upload(&self) -> String {
        let target = format!("/v2/{REPO}/blobs/uploads/");
        match self.send(&request("POST", target.as_bytes(), &[&self.auth], b"")) {
            Outcome::Answered(r) if r.status == 202 => r.header("location").unwrap(),
            other => panic!("cannot open an upload: {other:?}"),
        }
    }

    /// Pushes a blob into `REPO` in one POST; returns its digest.
    fn push(&self, data: &[u8]) -> String {
        let target = format!("/v2/{REPO}/blobs/uploads/?digest={}", sha256(data));
        match self.send(&request("POST", target.as_bytes(), &[&self.auth], data)) {
            Outcome::Answered(r) if r.status == 201 => sha256(data),
            other => panic!("setup push failed: {other:?}"),
        }
    }

    /// An image manifest of the config and the layer.
    fn manifest(&self, media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            self.config, self.blob, self.blob_len
        )
    }

    /// GET with credentials.
    fn get(&self, path: &str, headers: &[&[u8]]) -> Outcome {
        let mut all: Vec<&[u8]> = vec![&self.auth];
        all.extend_from_slice(headers);
        self.send(&request("GET", path.as_bytes(), &all, b""))
    }
}

/// Whether `outcome` is what `row` must get; the reason when not.
fn check(row: &Row, outcome: &Outcome, secret: &str) -> Result<(), String> {
    let response = match (outcome, row.expect) {
        (Outcome::TimedOut, _) => {
            return Err(format!("no answer and no close within {DEADLINE:?}"))
        }
        (Outcome::Closed, Expect::ClosedOr4xx) => return Ok(()),
        (Outcome::Closed, _) => return Err("closed without an answer".into()),
        (Outcome::Answered(r), _) => r,
    };
    if response.text().contains(secret) {
        return Err("the canary's secret is in the response".into());
    }
    let codes = response.error_codes();
    let first = codes.as_ref().and_then(|c| c.first()).map(String::as_str);
    let ok = match row.expect {
        Expect::Spec(status, code) => response.status == status && first == Some(code),
        Expect::Status(statuses) => statuses.contains(&response.status),
        Expect::ClosedOr4xx => (400..500).contains(&response.status),
    };
    if ok {
        Ok(())
    } else {
        let body: String = response.text().chars().take(300).collect();
        Err(format!("got {} {codes:?}: {body}", response.status))
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Starts the server with basic auth on `root`; returns its address.
fn start(runtime: &tokio::runtime::Runtime, root: &Path) -> String {
    let hash = bcrypt::hash(PASS, 4).unwrap();
    let users = Htpasswd::parse(&format!("{USER}:{hash}\n")).unwrap();
    let registry = Registry::builder(Store::new(Arc::new(FsBackend::new(root))))
        .authenticator(Arc::new(HtpasswdAuthenticator::new(users, "Hostile")))
        .authorizer(Arc::new(AuthenticatedOnly))
        .build();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(3),
        ..ServeOptions::default()
    };
    runtime.spawn(async move {
        serve(listener, registry, options, std::future::pending())
            .await
            .unwrap();
    });
    addr
}

#[test]
fn hostile_requests_get_4xx_and_touch_nothing_outside_the_root() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let canary = tmp.path().join("canary");
    std::fs::create_dir_all(&canary).unwrap();
    let secret = format!("CANARY-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(canary.join("secret"), &secret).unwrap();
    let canary_mtime = std::fs::metadata(canary.join("secret"))
        .unwrap()
        .modified()
        .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = start(&runtime, &root);
    let auth = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    let mut target = Target {
        addr,
        auth: auth.into_bytes(),
        blob: String::new(),
        blob_len: 0,
        config: String::new(),
    };
    let layer = b"hostile layer bytes".to_vec();
    target.blob = target.push(&layer);
    target.blob_len = layer.len();
    target.config = target.push(b"{}");
    let good = target.manifest(OCI_MANIFEST);
    let content_type = format!("Content-Type: {OCI_MANIFEST}");
    let put = request(
        "PUT",
        format!("/v2/{REPO}/manifests/good").as_bytes(),
        &[&target.auth, content_type.as_bytes()],
        good.as_bytes(),
    );
    match target.send(&put) {
        Outcome::Answered(r) if r.status == 201 => {}
        other => panic!("setup manifest push failed: {other:?}"),
    }

    let rows = rows::rows(&target);
    let started = Instant::now();
    let mut failures = Vec::new();
    for row in &rows {
        let outcome = exchange(&target.addr, &row.bytes, row.ending, DEADLINE);
        let seen = match &outcome {
            Outcome::Answered(r) => format!("{} {:?}", r.status, r.error_codes()),
            other => format!("{other:?}"),
        };
        eprintln!("{:<45} {seen}", row.what);
        if let Err(e) = check(row, &outcome, &secret) {
            failures.push(format!("{}: {e}", row.what));
        }
    }
    eprintln!("{} hostile rows in {:?}", rows.len(), started.elapsed());

    // Several ranges, or another unit, are ignored, as RFC 9110 allows: the
    // whole blob, never an error and never other bytes.
    let blob = format!("/v2/{REPO}/blobs/{}", target.blob);
    for range in ["bytes=0-0,5-", "items=0-1"] {
        let header = format!("Range: {range}");
        match target.get(&blob, &[header.as_bytes()]) {
            Outcome::Answered(r) if r.status == 200 && r.body == layer => {}
            other => failures.push(format!("ignored Range {range:?}: {other:?}")),
        }
    }

    // The server still serves; the good manifest is intact and the only tag.
    match target.get(&format!("/v2/{REPO}/manifests/good"), &[]) {
        Outcome::Answered(r) if r.status == 200 && r.body == good.as_bytes() => {}
        other => failures.push(format!("the good manifest after the table: {other:?}")),
    }
    match target.get(&format!("/v2/{REPO}/tags/list"), &[]) {
        Outcome::Answered(r)
            if r.status == 200 && r.body == br#"{"name":"hostile","tags":["good"]}"# => {}
        Outcome::Answered(r) => failures.push(format!("tags after the table: {}", r.text())),
        other => failures.push(format!("tags after the table: {other:?}")),
    }
    match target.get("/v2/_catalog", &[]) {
        Outcome::Answered(r) if r.status == 200 && r.body == br#"{"repositories":["hostile"]}"# => {
        }
        Outcome::Answered(r) => failures.push(format!("catalog after the table: {}", r.text())),
        other => failures.push(format!("catalog after the table: {other:?}")),
    }

    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the server panicked");

    // Nothing next to the root, the canary untouched, everything under v1/.
    let mut top: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["canary", "root"], "files appeared next to the root");
    assert_eq!(files(&canary), [PathBuf::from("secret")]);
    assert_eq!(
        std::fs::read_to_string(canary.join("secret")).unwrap(),
        secret
    );
    let mtime = std::fs::metadata(canary.join("secret")).unwrap().modified();
    assert_eq!(mtime.unwrap(), canary_mtime);
    let stored = files(&root);
    assert!(stored.iter().any(|f| f.ends_with("data")), "{stored:?}");
    for file in &stored {
        assert!(
            file.starts_with("v1/blobs") || file.starts_with(format!("v1/repositories/{REPO}")),
            "a file outside the layout: {}",
            file.display()
        );
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            !name.starts_with(".tmp-"),
            "temp file left: {}",
            file.display()
        );
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
}
