//! The `oci-client` crate (a dev-dependency) driving the registry from Rust:
//! push by tag in 4 MiB PATCHes with `Content-Range`, its monolithic push
//! (POST, then the whole blob in one PUT), pull by tag and by digest, a two-platform index
//! resolved per platform, cross-repository mounts, tag pages (`n`, `last`)
//! and the referrers API. oci-client cannot delete.

use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::harness::image::{OCI_INDEX, OCI_LAYER, OCI_MANIFEST};
use crate::harness::{
    over_http_and_https, raw, sha256_digest, Blob, Endpoint, Image, Index, Registry, Scheme, PASS,
    USER,
};

over_http_and_https!(
    async: push_in_4_mib_chunks_pull_by_tag_and_digest,
    monolithic_push_in_one_put,
    two_platform_index_resolved_per_platform,
    mounts_tag_pages_and_referrers,
);

fn auth() -> RegistryAuth {
    RegistryAuth::Basic(USER.to_owned(), PASS.to_owned())
}

/// An oci-client for `endpoint`; `monolithic` sends each blob in one PUT;
/// `arch` is the platform it picks from an index.
pub(crate) fn client(endpoint: &Endpoint, monolithic: bool, arch: &'static str) -> Client {
    // The workspace's rustls has no default provider; ring is the one it builds.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (protocol, extra_root_certificates) = match endpoint.scheme {
        Scheme::Http => (ClientProtocol::Http, Vec::new()),
        Scheme::Https => (
            ClientProtocol::Https,
            vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(endpoint.ca.as_ref().unwrap()).unwrap(),
            }],
        ),
    };
    let resolver = move |entries: &[ImageIndexEntry]| {
        entries
            .iter()
            .find(|e| {
                let platform = serde_json::to_value(&e.platform).unwrap();
                platform["architecture"] == arch && platform["os"] == "linux"
            })
            .map(|e| e.digest.clone())
    };
    Client::new(ClientConfig {
        protocol,
        extra_root_certificates,
        use_monolithic_push: monolithic,
        platform_resolver: Some(Box::new(resolver)),
        ..Default::default()
    })
}

fn reference(endpoint: &Endpoint, repo: &str, reference: &str) -> Reference {
    endpoint.image_ref(repo, reference).parse().unwrap()
}

/// Pushes `image` with `Client::push` (oci-client writes its own manifest).
pub(crate) async fn push(client: &Client, target: &Reference, image: &Image) -> String {
    let layers: Vec<ImageLayer> = image
        .layers
        .iter()
        .map(|l| ImageLayer::new(l.data.clone(), OCI_LAYER.to_owned(), None))
        .collect();
    let config = Config::oci_v1(image.config.data.clone(), None);
    let manifest: OciImageManifest = serde_json::from_slice(&image.manifest.data).unwrap();
    let pushed = client
        .push(target, &layers, config, &auth(), Some(manifest))
        .await
        .unwrap_or_else(|e| panic!("oci-client push {target}: {e}"));
    pushed.manifest_url
}

/// Pushes a manifest as the exact bytes given.
async fn push_raw(client: &Client, target: &Reference, manifest: &Blob) {
    client
        .store_auth_if_needed(target.resolve_registry(), &auth())
        .await;
    let content_type = manifest.media_type.parse().unwrap();
    client
        .push_manifest_raw(target, manifest.data.clone(), content_type)
        .await
        .unwrap_or_else(|e| panic!("oci-client push_manifest_raw {target}: {e}"));
}

/// Pulls `target` and compares config and every layer with `image`.
pub(crate) async fn assert_pull(client: &Client, target: &Reference, image: &Image, step: &str) {
    let pulled = client
        .pull(target, &auth(), vec![OCI_LAYER])
        .await
        .unwrap_or_else(|e| panic!("{step}: {e}"));
    assert!(
        pulled.config.data == image.config.data,
        "{step}: config differs"
    );
    // `Client::pull` returns layers in the order their downloads finished.
    let mut got: Vec<String> = pulled
        .layers
        .iter()
        .map(|l| sha256_digest(&l.data))
        .collect();
    let mut want: Vec<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{step}: pulled layers");
}

async fn push_in_4_mib_chunks_pull_by_tag_and_digest(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = registry.endpoint.clone();
    let client = client(&ep, false, "amd64");
    // A 9.5 MB layer: three PATCHes of at most 4 MiB.
    let image = Image::build(100, "amd64", [9_500_000, 60_000, 3_000]);
    let before = registry.requests().len();
    push(&client, &reference(&ep, "oc/app", "v1"), &image).await;
    let pushed = registry.requests_since(before);
    let patches = pushed
        .iter()
        .filter(|r| r.route == "upload_patch" && r.status == 202)
        .count();
    // 3 + 1 + 1 layers, 1 config.
    assert_eq!(patches, 6, "oci-client chunked push: {pushed:#?}");
    raw::assert_blobs(&ep, "oc/app", &image.blobs(), "after oci-client push");
    let served = raw::manifest(&ep, "oc/app", "v1", "after oci-client push");
    let digest = served.header("docker-content-digest").to_owned();

    assert_pull(
        &client,
        &reference(&ep, "oc/app", "v1"),
        &image,
        "oci-client pull by tag",
    )
    .await;
    let by_digest = reference(&ep, "oc/app", &digest);
    assert_pull(&client, &by_digest, &image, "oci-client pull by digest").await;
    if ep.scheme == Scheme::Https {
        // Without the test CA among its roots, the same pull fails.
        let untrusting = Client::new(ClientConfig {
            protocol: ClientProtocol::Https,
            ..Default::default()
        });
        let refused = untrusting.pull(&by_digest, &auth(), vec![OCI_LAYER]).await;
        assert!(refused.is_err(), "oci-client pull without the test CA");
    }
    let (bytes, got) = client
        .pull_manifest_raw(&by_digest, &auth(), &[OCI_MANIFEST])
        .await
        .unwrap();
    assert_eq!(
        (bytes.to_vec(), got),
        (served.body, digest),
        "manifest by digest"
    );
}

async fn monolithic_push_in_one_put(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = registry.endpoint.clone();
    let client = client(&ep, true, "amd64");
    let image = Image::small(101);
    let before = registry.requests().len();
    push(&client, &reference(&ep, "oc/mono", "v1"), &image).await;
    let pushed = registry.requests_since(before);
    let puts = pushed
        .iter()
        .filter(|r| r.route == "upload_put" && r.status == 201)
        .count();
    assert_eq!(puts, image.blobs().len(), "one PUT per blob: {pushed:#?}");
    assert!(
        !pushed.iter().any(|r| r.route == "upload_patch"),
        "oci-client monolithic push sent a PATCH: {pushed:#?}"
    );
    raw::assert_blobs(&ep, "oc/mono", &image.blobs(), "after monolithic push");
    assert_pull(
        &client,
        &reference(&ep, "oc/mono", "v1"),
        &image,
        "oci-client pull",
    )
    .await;
}

async fn two_platform_index_resolved_per_platform(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = registry.endpoint.clone();
    let index = Index::two_platforms(102);
    let pusher = client(&ep, false, "amd64");
    for image in &index.images {
        let target = reference(&ep, "oc/multi", &image.manifest.digest);
        pusher
            .store_auth_if_needed(target.resolve_registry(), &auth())
            .await;
        for blob in image.blobs() {
            pusher
                .push_blob(&target, blob.data.clone(), &blob.digest)
                .await
                .unwrap();
        }
        push_raw(&pusher, &target, &image.manifest).await;
    }
    let list: OciImageIndex = serde_json::from_slice(&index.index.data).unwrap();
    let tag = reference(&ep, "oc/multi", "v1");
    pusher
        .push_manifest_list(&tag, &auth(), list)
        .await
        .unwrap();
    let served = raw::manifest(&ep, "oc/multi", "v1", "after push_manifest_list");
    assert_eq!(served.header("content-type"), OCI_INDEX);
    let served_index: serde_json::Value = served.json();
    let expected: serde_json::Value = serde_json::from_slice(&index.index.data).unwrap();
    assert_eq!(
        served_index["manifests"], expected["manifests"],
        "index entries"
    );
    let list_digest = served.header("docker-content-digest").to_owned();

    for image in &index.images {
        let arch: &'static str = if image.arch == "amd64" {
            "amd64"
        } else {
            "arm64"
        };
        let puller = client(&ep, false, arch);
        for target in [tag.clone(), reference(&ep, "oc/multi", &list_digest)] {
            let step = format!("oci-client pull {target} for linux/{arch}");
            let (_, digest) = puller.pull_image_manifest(&target, &auth()).await.unwrap();
            assert_eq!(digest, image.manifest.digest, "{step}: resolved manifest");
            assert_pull(&puller, &target, image, &step).await;
        }
    }
}

async fn mounts_tag_pages_and_referrers(scheme: Scheme) {
    let registry = Registry::start(scheme);
    let ep = registry.endpoint.clone();
    let client = client(&ep, false, "amd64");
    let image = Image::small(103);
    let source = reference(&ep, "oc/src", "v1");
    push(&client, &source, &image).await;

    let target = reference(&ep, "oc/dst", "v1");
    let before = registry.requests().len();
    for blob in image.blobs() {
        client
            .mount_blob(&target, &source, &blob.digest)
            .await
            .unwrap();
    }
    let mounted = registry.requests_since(before);
    let mounts = mounted.iter().filter(|r| r.status == 201).count();
    assert_eq!(mounts, image.blobs().len(), "mount_blob: {mounted:#?}");
    for tag in ["v2", "v10", "v1", "a", "b"] {
        push_raw(&client, &reference(&ep, "oc/dst", tag), &image.manifest).await;
    }
    let all = client
        .list_tags(&target, &auth(), None, None)
        .await
        .unwrap();
    assert_eq!(all.tags, ["a", "b", "v1", "v10", "v2"], "list_tags");
    let page = client
        .list_tags(&target, &auth(), Some(2), Some("b"))
        .await
        .unwrap();
    assert_eq!(page.tags, ["v1", "v10"], "list_tags n=2 last=b");

    // An artifact whose subject is the image, found through the referrers API.
    let subject = format!(r#","subject":{}"#, image.manifest.descriptor(""));
    let config = Blob::new("application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let layer = Blob::new("application/vnd.test.sbom", b"sbom for the image".to_vec());
    for blob in [&config, &layer] {
        client
            .push_blob(&target, blob.data.clone(), &blob.digest)
            .await
            .unwrap();
    }
    let referrer = Blob::new(
        OCI_MANIFEST,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.test.sbom","config":{},"layers":[{}]{subject}}}"#,
            config.descriptor(""),
            layer.descriptor("")
        )
        .into_bytes(),
    );
    push_raw(
        &client,
        &reference(&ep, "oc/dst", &referrer.digest),
        &referrer,
    )
    .await;
    let of = reference(&ep, "oc/dst", &image.manifest.digest);
    let found = client
        .pull_referrers(&of, Some("application/vnd.test.sbom"))
        .await
        .unwrap();
    assert_eq!(found.manifests.len(), 1, "referrers of the image");
    assert_eq!(found.manifests[0].digest, referrer.digest);
    let none = client
        .pull_referrers(&of, Some("application/vnd.test.other"))
        .await
        .unwrap();
    assert!(
        none.manifests.is_empty(),
        "referrers filtered by artifactType"
    );
}
