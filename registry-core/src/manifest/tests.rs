//! Manifest validation tests: the four media types, mismatches, malformed
//! and oversize documents, references, subject and referrers.

use super::*;
use crate::digest::Algorithm;
use proptest::prelude::*;

fn d(content: &str) -> String {
    Digest::of(Algorithm::Sha256, content.as_bytes()).to_string()
}

fn image(media_type: Option<&str>, extra: &str) -> String {
    let mt = media_type
        .map(|m| format!(r#""mediaType":"{m}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":3}}]{extra}}}"#,
        d("config"),
        d("layer")
    )
}

fn index(media_type: Option<&str>) -> String {
    let mt = media_type
        .map(|m| format!(r#""mediaType":"{m}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt}"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        d("child")
    )
}

#[test]
fn accepts_the_four_media_types() {
    for (ct, body, kind) in [
        (
            OCI_MANIFEST,
            image(Some(OCI_MANIFEST), ""),
            ManifestKind::Image,
        ),
        (
            DOCKER_MANIFEST,
            image(Some(DOCKER_MANIFEST), ""),
            ManifestKind::Image,
        ),
        (OCI_INDEX, index(Some(OCI_INDEX)), ManifestKind::Index),
        (DOCKER_LIST, index(Some(DOCKER_LIST)), ManifestKind::Index),
    ] {
        let m = validate(Some(ct), body.as_bytes()).unwrap();
        assert_eq!((m.media_type, m.kind), (ct, kind));
    }
}

#[test]
fn references_are_reported() {
    let m = validate(Some(OCI_MANIFEST), image(None, "").as_bytes()).unwrap();
    let blobs: Vec<String> = m.required_blobs().map(|b| b.digest.to_string()).collect();
    assert_eq!(blobs, vec![d("config"), d("layer")]);
    let i = validate(Some(OCI_INDEX), index(None).as_bytes()).unwrap();
    assert_eq!(i.required_blobs().count(), 0);
    assert_eq!(i.manifests[0].digest.to_string(), d("child"));
}

#[test]
fn foreign_layers_are_not_required() {
    let body = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{}","size":1}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":1,"urls":["https://example.com/l"]}}]}}"#,
        d("c"),
        d("l")
    );
    let m = validate(Some(DOCKER_MANIFEST), body.as_bytes()).unwrap();
    assert_eq!(m.required_blobs().count(), 1);
}

#[test]
fn generic_content_type_falls_back_to_the_body() {
    let m = validate(
        Some("application/json"),
        image(Some(DOCKER_MANIFEST), "").as_bytes(),
    )
    .unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
    let m = validate(None, index(None).as_bytes()).unwrap();
    assert_eq!(m.media_type, OCI_INDEX);
    let m = validate(
        Some(&format!("{OCI_MANIFEST}; charset=utf-8")),
        image(None, "").as_bytes(),
    )
    .unwrap();
    assert_eq!(m.media_type, OCI_MANIFEST);
}

#[test]
fn refuses_mismatched_and_malformed() {
    let cases: Vec<(Option<&str>, String)> = vec![
        (Some(OCI_INDEX), image(Some(OCI_MANIFEST), "")),
        (Some(OCI_MANIFEST), image(Some(DOCKER_MANIFEST), "")),
        (Some(OCI_MANIFEST), index(None)),
        (Some(OCI_INDEX), image(None, "")),
        (Some("text/plain"), image(None, "")),
        (
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            image(None, ""),
        ),
        (Some(OCI_MANIFEST), "not json".into()),
        (Some(OCI_MANIFEST), "[]".into()),
        (
            Some(OCI_MANIFEST),
            image(None, "").replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
        ),
        (
            Some(OCI_MANIFEST),
            image(None, "").replace("sha256:", "sha256:zz"),
        ),
        (
            Some(OCI_MANIFEST),
            image(None, "").replace("\"size\":2", "\"size\":-2"),
        ),
        (
            Some(OCI_MANIFEST),
            r#"{"schemaVersion":2,"layers":[]}"#.into(),
        ),
        (None, r#"{"schemaVersion":2}"#.into()),
    ];
    for (ct, body) in cases {
        let err = validate(ct, body.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ManifestInvalid, "{ct:?} {body}");
    }
}

#[test]
fn refuses_oversize() {
    let padding = " ".repeat(MAX_MANIFEST_BYTES);
    let body = format!("{}{padding}", image(None, ""));
    let err = validate(Some(OCI_MANIFEST), body.as_bytes()).unwrap_err();
    assert_eq!((err.code, err.status), (ErrorCode::SizeInvalid, 413));
}

#[test]
fn subject_and_artifact_type() {
    let extra = format!(
        r#","artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7}},"annotations":{{"k":"v"}}"#,
        d("subject")
    );
    let m = validate(Some(OCI_MANIFEST), image(None, &extra).as_bytes()).unwrap();
    assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), d("subject"));
    assert_eq!(
        m.effective_artifact_type(),
        Some("application/vnd.example.sbom")
    );
    let plain = validate(Some(OCI_MANIFEST), image(None, "").as_bytes()).unwrap();
    assert_eq!(
        plain.effective_artifact_type(),
        Some("application/vnd.oci.image.config.v1+json")
    );

    let me = Digest::of(Algorithm::Sha256, b"me");
    let entry = m.referrer_descriptor(me.clone(), 99);
    let all: serde_json::Value =
        serde_json::from_slice(&referrers_index(vec![entry.clone()], None)).unwrap();
    assert_eq!(all["mediaType"], OCI_INDEX);
    assert_eq!(all["schemaVersion"], 2);
    assert_eq!(all["manifests"][0]["digest"], me.to_string());
    assert_eq!(
        all["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    assert_eq!(all["manifests"][0]["annotations"]["k"], "v");
    assert_eq!(all["manifests"][0]["size"], 99);
    let none: serde_json::Value =
        serde_json::from_slice(&referrers_index(vec![entry], Some("other/type"))).unwrap();
    assert_eq!(none["manifests"].as_array().map(Vec::len), Some(0));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate(Some(OCI_MANIFEST), &body);
        let _ = validate(None, &body);
    }
}
