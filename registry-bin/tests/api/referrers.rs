//! The referrers API and `OCI-Subject`.

use crate::common::*;
use reqwest::Method;

#[tokio::test]
async fn referrers_are_listed_and_filtered() {
    let s = TestServer::with_auth().await;
    let (subject, subject_body) = s.push_image("ref", "v1", b"app").await;
    let empty = s.push_blob("ref", b"{}").await;
    let subject_field = format!(
        r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}}"#,
        subject_body.len()
    );
    let mut pushed = Vec::new();
    for (artifact_type, annotation) in [
        ("application/vnd.example.sbom", "sbom"),
        ("application/vnd.example.sig", "sig"),
    ] {
        let extra =
            format!(r#","artifactType":"{artifact_type}","annotations":{{"kind":"{annotation}"}}"#);
        let manifest = image_manifest(&empty, 2, &[], &format!("{subject_field}{extra}"));
        let res = s
            .put_manifest("ref", &sha256(manifest.as_bytes()), OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(res.status(), 201, "{manifest}");
        assert_eq!(res.headers()["oci-subject"], subject.as_str());
        pushed.push((sha256(manifest.as_bytes()), manifest.len(), artifact_type));
    }
    let res = s
        .req(Method::GET, &format!("/v2/ref/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], OCI_INDEX);
    assert!(!res.headers().contains_key("oci-filters-applied"));
    let index: serde_json::Value = res.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed: Vec<(String, u64, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["size"].as_u64().unwrap(),
                d["artifactType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let mut want: Vec<(String, u64, String)> = pushed
        .iter()
        .map(|(d, n, t)| (d.clone(), *n as u64, t.to_string()))
        .collect();
    want.sort();
    assert_eq!(listed, want);

    let res = s
        .req(
            Method::GET,
            &format!("/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sig"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["oci-filters-applied"], "artifactType");
    let index: serde_json::Value = res.json().await.unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(manifests[0]["annotations"]["kind"], "sig");

    // Deleting a referrer removes it from the list.
    let res = s
        .req(
            Method::DELETE,
            &format!("/v2/ref/manifests/{}", pushed[1].0),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = s
        .req(Method::GET, &format!("/v2/ref/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    let index: serde_json::Value = res.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn subject_may_be_pushed_later_and_unknown_subjects_list_empty() {
    let s = TestServer::with_auth().await;
    let empty = s.push_blob("later", b"{}").await;
    let future_subject = sha256(b"not yet pushed");
    let extra = format!(
        r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{future_subject}","size":10}}"#
    );
    let manifest = image_manifest(&empty, 2, &[], &extra);
    let res = s
        .put_manifest("later", "sig", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["oci-subject"], future_subject.as_str());
    let res = s
        .req(
            Method::GET,
            &format!("/v2/later/referrers/{future_subject}"),
        )
        .send()
        .await
        .unwrap();
    let index: serde_json::Value = res.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let res = s
        .req(
            Method::GET,
            &format!("/v2/later/referrers/{}", sha256(b"nobody")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let index: serde_json::Value = res.json().await.unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]));
    let res = s
        .req(Method::GET, "/v2/later/referrers/sha256:abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_codes(res).await, ["DIGEST_INVALID"]);
}
