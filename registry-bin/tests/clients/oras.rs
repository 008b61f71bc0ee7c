//! oras-py (the `oras` package on PyPI) with its basic-auth backend: the
//! flows live in `oras_flow.py`, which asserts what the client sees; these
//! tests run it and check the registry side.
//!
//! oras-py sends every request, upload bodies included, without
//! credentials first and repeats it after the 401; the chunked flow makes
//! that happen for each PATCH.

use std::process::Command;

use crate::harness::server::{replicas, workdir};
use crate::harness::{need, over_http_and_https, raw, run, Registry, Scheme, PASS, USER};

over_http_and_https!(
    artifact_with_artifact_type_push_pull_tags_and_delete,
    referrer_with_subject_found_through_the_referrers_api,
    chunked_upload_with_every_chunk_sent_twice,
);

/// Runs one flow of `oras_flow.py`; returns the digests it printed.
fn flow(registry: &Registry, name: &str) -> serde_json::Value {
    need("python3", "apt-get install python3");
    let has_oras = Command::new("python3")
        .args(["-c", "import oras.provider"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_oras,
        "oras-py is not installed: run `bash scripts/test` as root, or `pip install oras`"
    );
    let work = workdir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/oras_flow.py");
    let ep = &registry.endpoint;
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(name)
        .arg(ep.base_url())
        .arg(work.path())
        .args([USER, PASS])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if ep.scheme == Scheme::Https {
        cmd.arg(ep.ca.as_ref().unwrap());
    }
    let out = run(&format!("oras-py {name} flow"), &mut cmd);
    serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("oras-py {name} flow printed no result ({e}): {out}"))
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap()
}

fn artifact_with_artifact_type_push_pull_tags_and_delete(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let result = flow(&registry, "artifact");
    let digest = text(&result["artifact"]);
    let manifest = raw::assert_consistent(ep, "oras/artifact", digest, "oras-py push");
    assert_eq!(manifest["artifactType"], "application/vnd.test.report");
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "notes.bin"
    );
    assert_eq!(
        raw::tags(ep, "oras/artifact"),
        ["v2"],
        "tags after oras-py delete_tag"
    );
    let deleted = text(&result["deleted"]);
    let res = raw::get(ep, &format!("/v2/oras/artifact/manifests/{deleted}"));
    assert_eq!(
        res.status, 404,
        "manifest deleted by oras-py is still served"
    );
}

fn referrer_with_subject_found_through_the_referrers_api(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let result = flow(&registry, "referrer");
    let (subject, referrer) = (text(&result["subject"]), text(&result["referrer"]));
    let manifest =
        raw::assert_consistent(ep, "oras/subject", referrer, "oras-py push with subject");
    assert_eq!(manifest["subject"]["digest"], subject);
    let res = raw::get(ep, &format!("/v2/oras/subject/referrers/{subject}"));
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let listed = res.json();
    assert_eq!(listed["manifests"][0]["digest"], referrer);
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.test.signature"
    );
}

fn chunked_upload_with_every_chunk_sent_twice(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = &registry.endpoint;
    let before = registry.requests().len();
    let result = flow(&registry, "chunked");
    raw::assert_consistent(
        ep,
        "oras/chunked",
        text(&result["artifact"]),
        "oras-py chunked push",
    );
    let seen = registry.requests_since(before);
    let mut patches: Vec<u16> = seen
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    // 20 MB in 1 MB chunks: each PATCH refused once, then accepted.
    let mut expected = [401, 202].repeat(20);
    if replicas() {
        // Three processes' logs, read side by side: the counts, not the order.
        patches.sort_unstable();
        expected.sort_unstable();
    }
    assert_eq!(patches, expected, "{seen:#?}");
}
