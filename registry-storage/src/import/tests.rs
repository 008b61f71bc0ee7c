//! The import over small Distribution layouts written by the tests, into a filesystem
//! store: what arrives, what is skipped and why, re-runs, hard links.

use std::path::Path;
use std::sync::Arc;

use registry_core::manifest::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use registry_core::{Algorithm, Digest, RepoName, Tag, UploadId};

use super::*;
use crate::fs::FsBackend;
use crate::layout;
use crate::Backend;

/// A Distribution storage being written: `<root>/docker/registry/v2/...`.
struct Source {
    root: tempfile::TempDir,
}

impl Source {
    fn new() -> Source {
        Source {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn v2(&self) -> std::path::PathBuf {
        self.root.path().join(V2)
    }

    fn write(&self, key: &str, data: &[u8]) {
        let path = self.v2().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    /// Stores `data` as a blob (not linked anywhere).
    fn blob(&self, data: &[u8]) -> Digest {
        let digest = Digest::of(Algorithm::Sha256, data);
        self.write(&Distribution::blob_key(&digest), data);
        digest
    }

    /// Links `digest` into `repo` under `dir` (`_layers` or `_manifests/revisions`).
    fn link(&self, repo: &str, dir: &str, digest: &Digest) {
        let key = format!(
            "repositories/{repo}/{dir}/{}/{}/link",
            digest.algorithm().as_str(),
            digest.hex()
        );
        self.write(&key, digest.to_string().as_bytes());
    }

    fn layer(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = self.blob(data);
        self.link(repo, "_layers", &digest);
        digest
    }

    fn manifest(&self, repo: &str, body: &str) -> Digest {
        let digest = self.blob(body.as_bytes());
        self.link(repo, "_manifests/revisions", &digest);
        digest
    }

    fn tag(&self, repo: &str, tag: &str, digest: &Digest) {
        let key = format!("repositories/{repo}/_manifests/tags/{tag}/current/link");
        self.write(&key, digest.to_string().as_bytes());
    }

    /// An image manifest of `media_type` (None: no `mediaType` field) over blobs in `repo`.
    fn image(&self, repo: &str, media_type: Option<&str>, layers: &[&[u8]], extra: &str) -> Digest {
        let config = self.layer(repo, b"{}");
        let layers: Vec<String> = layers
            .iter()
            .map(|data| {
                descriptor(
                    "application/octet-stream",
                    &self.layer(repo, data),
                    data.len(),
                )
            })
            .collect();
        let media = media_type.map_or(String::new(), |t| format!("\"mediaType\":\"{t}\","));
        let body = format!(
            "{{\"schemaVersion\":2,{media}\"config\":{},\"layers\":[{}]{extra}}}",
            descriptor("application/vnd.oci.image.config.v1+json", &config, 2),
            layers.join(",")
        );
        self.manifest(repo, &body)
    }
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> String {
    format!("{{\"mediaType\":\"{media_type}\",\"digest\":\"{digest}\",\"size\":{size}}}")
}

fn mint() -> UploadId {
    let random = uuid::Uuid::new_v4().into_bytes();
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&random[6..]);
    UploadId::mint(1_700_000_000_000, bits)
}

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

async fn run(source: &Source, target: &Path, transfer: Transfer) -> Summary {
    let store = Store::new(Arc::new(FsBackend::new(target)));
    let distribution = Distribution::open(source.root.path()).unwrap();
    let options = Options {
        transfer,
        mint: &mint,
        concurrency: 2,
    };
    import(&store, &distribution, &options, &Progress::default())
        .await
        .unwrap()
}

fn store(target: &Path) -> Store {
    Store::new(Arc::new(FsBackend::new(target)))
}

#[tokio::test]
async fn everything_comes_across_and_damage_is_named_and_left_out() {
    let source = Source::new();
    let docker = source.image("team/app/web", Some(DOCKER_MANIFEST), &[b"layer one"], "");
    let untagged = source.image("team/app/web", Some(OCI_MANIFEST), &[b"layer two"], "");
    // No mediaType: detected from its shape, as a push with a generic type would be.
    let bare = source.image("solo", None, &[b"layer one"], "");
    let index = source.manifest(
        "team/app/web",
        &format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{}]}}",
            descriptor(OCI_MANIFEST, &untagged, 10)
        ),
    );
    let subject = format!(",\"subject\":{}", descriptor(OCI_MANIFEST, &untagged, 10));
    let referrer = source.image("team/app/web", Some(OCI_MANIFEST), &[b"sig"], &subject);
    source.tag("team/app/web", "v1", &docker);
    source.tag("team/app/web", "multi", &index);
    source.tag("solo", "latest", &bare);

    // Damage: a corrupt layer (and the manifest needing it, and its tag), a missing
    // layer, a manifest whose bytes do not match its digest, a schema 1 manifest.
    let bad = source.image("broken", Some(OCI_MANIFEST), &[b"will rot"], "");
    let rotten = Digest::of(Algorithm::Sha256, b"will rot");
    source.write(&Distribution::blob_key(&rotten), b"has rotted");
    source.tag("broken", "bad", &bad);
    let gone = Digest::of(Algorithm::Sha256, b"never stored");
    source.link("broken", "_layers", &gone);
    let forged = source.manifest("broken", "{\"schemaVersion\":2,\"config\":{}}");
    source.write(&Distribution::blob_key(&forged), b"{\"schemaVersion\":2}");
    let schema1 = source.manifest("broken", "{\"schemaVersion\":1,\"name\":\"broken\"}");
    // Uploads in progress are not imported.
    source.write("repositories/solo/_uploads/abc/data", b"partial");

    let target = tempfile::tempdir().unwrap();
    let summary = run(&source, target.path(), Transfer::Copy).await;

    assert_eq!(summary.repositories, 3);
    assert_eq!(
        summary.manifests,
        Count {
            imported: 5,
            present: 0
        }
    );
    assert_eq!(
        summary.tags,
        Count {
            imported: 3,
            present: 0
        }
    );
    assert_eq!(
        summary.referrers,
        Count {
            imported: 1,
            present: 0
        }
    );
    // {} config, layer one, layer two, sig; `will rot` and `never stored` skipped.
    assert_eq!(
        summary.blobs,
        Count {
            imported: 4,
            present: 0
        }
    );
    assert_eq!(summary.bytes, 2 + 9 + 9 + 3);
    assert_eq!(
        summary.links,
        Count {
            imported: 7,
            present: 0
        }
    );
    let skipped: Vec<String> = summary.skipped.iter().map(ToString::to_string).collect();
    let actual_rotten = Digest::of(Algorithm::Sha256, b"has rotted");
    let actual_forged = Digest::of(Algorithm::Sha256, b"{\"schemaVersion\":2}");
    let expected = [
        format!("blob {gone}: missing: linked, but its data file is gone"),
        format!("blob {rotten}: corrupt: its data hashes to {actual_rotten}"),
        format!("manifest {bad} in broken: needs blobs not imported: {rotten}"),
        format!("manifest {forged} in broken: corrupt: its bytes hash to {actual_forged}"),
        format!("manifest {schema1} in broken: not accepted: schemaVersion must be 2"),
        format!("tag bad in broken: points at {bad}, which was not imported"),
    ];
    let mut sorted = skipped.clone();
    sorted.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(summary.skipped.iter().any(|s| s.reason.is_damage()));

    let store = store(target.path());
    let web = repo("team/app/web");
    assert_eq!(
        store.resolve_tag(&web, &tag("v1")).await.unwrap(),
        Some(docker.clone())
    );
    assert_eq!(
        store.resolve_tag(&web, &tag("multi")).await.unwrap(),
        Some(index.clone())
    );
    let stored = store.get_manifest(&web, &docker).await.unwrap().unwrap();
    assert_eq!(stored.media_type, DOCKER_MANIFEST);
    let stored = store
        .get_manifest(&repo("solo"), &bare)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.media_type, OCI_MANIFEST);
    assert_eq!(
        store
            .get_manifest(&web, &index)
            .await
            .unwrap()
            .unwrap()
            .media_type,
        OCI_INDEX
    );
    assert!(store.has_manifest(&web, &untagged).await.unwrap());
    assert!(store
        .has_referrer(&web, &untagged, &referrer)
        .await
        .unwrap());
    let one = Digest::of(Algorithm::Sha256, b"layer one");
    assert_eq!(
        store.repo_blob_size(&repo("solo"), &one).await.unwrap(),
        Some(9)
    );
    assert_eq!(store.blob_size(&rotten).await.unwrap(), None);
    assert!(!store.has_manifest(&repo("broken"), &bad).await.unwrap());
    assert_eq!(
        store
            .resolve_tag(&repo("broken"), &tag("bad"))
            .await
            .unwrap(),
        None
    );
    assert!(store.list_uploads(&repo("solo")).await.unwrap().is_empty());
    assert!(store
        .list_uploads(&repo("broken"))
        .await
        .unwrap()
        .is_empty());

    // Run again: nothing written, everything counted as present, the same skips.
    let again = run(&source, target.path(), Transfer::Copy).await;
    assert!(again.wrote_nothing(), "{again:?}");
    assert_eq!(
        again.manifests,
        Count {
            imported: 0,
            present: 5
        }
    );
    assert_eq!(
        again.blobs,
        Count {
            imported: 0,
            present: 4
        }
    );
    assert_eq!(
        again.referrers,
        Count {
            imported: 0,
            present: 1
        }
    );
    assert_eq!(again.skipped.len(), expected.len());
}

#[tokio::test]
async fn a_rerun_writes_only_what_is_missing() {
    let source = Source::new();
    let image = source.image("a/b", Some(OCI_MANIFEST), &[b"one", b"two"], "");
    source.tag("a/b", "t", &image);
    let target = tempfile::tempdir().unwrap();
    run(&source, target.path(), Transfer::Copy).await;

    // As if the first run had been killed: a blob, a link, the manifest and the tag gone.
    let backend = FsBackend::new(target.path());
    let two = Digest::of(Algorithm::Sha256, b"two");
    let ab = repo("a/b");
    for key in [
        layout::blob_data(&two),
        layout::layer_link(&ab, &two),
        layout::revision_link(&ab, &image),
        layout::tag_link(&ab, &tag("t")),
    ] {
        assert!(backend.delete(&key).await.unwrap(), "{key}");
    }
    let summary = run(&source, target.path(), Transfer::Copy).await;
    assert_eq!(
        summary.blobs,
        Count {
            imported: 1,
            present: 2
        }
    );
    assert_eq!(
        summary.links,
        Count {
            imported: 1,
            present: 2
        }
    );
    assert_eq!(summary.repositories, 1);
    assert_eq!(
        summary.manifests,
        Count {
            imported: 1,
            present: 0
        }
    );
    assert_eq!(
        summary.tags,
        Count {
            imported: 1,
            present: 0
        }
    );
    assert_eq!(summary.bytes, 3);
    assert!(summary.skipped.is_empty());
    assert_eq!(
        store(target.path())
            .resolve_tag(&ab, &tag("t"))
            .await
            .unwrap(),
        Some(image)
    );
}

#[tokio::test]
async fn hard_links_share_the_file_and_corrupt_ones_are_removed() {
    use std::os::unix::fs::MetadataExt;
    let source = Source::new();
    let image = source.image("x", Some(OCI_MANIFEST), &[b"good", b"bad"], "");
    let bad = Digest::of(Algorithm::Sha256, b"bad");
    source.write(&Distribution::blob_key(&bad), b"BAD");
    // Target on the same file system as the source (both temp dirs).
    let target = tempfile::tempdir_in(source.root.path()).unwrap();
    let backend = FsBackend::new(target.path());
    let summary = run(&source, target.path(), Transfer::HardLink(backend.clone())).await;
    assert_eq!(
        summary.blobs,
        Count {
            imported: 2,
            present: 0
        }
    );
    assert_eq!(summary.manifests.imported, 0, "needs the bad blob");
    let good = Digest::of(Algorithm::Sha256, b"good");
    let ours = target.path().join(layout::blob_data(&good));
    let theirs = source.v2().join(Distribution::blob_key(&good));
    assert_eq!(
        std::fs::metadata(&ours).unwrap().ino(),
        std::fs::metadata(&theirs).unwrap().ino()
    );
    assert!(!target.path().join(layout::blob_data(&bad)).exists());
    assert!(store(target.path())
        .list_uploads(&repo("x"))
        .await
        .unwrap()
        .is_empty());
    let _ = image;
}

#[test]
fn a_missing_layout_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Distribution::open(dir.path()).unwrap_err();
    assert!(err.key().ends_with("docker/registry/v2"), "{err}");
}

#[tokio::test]
async fn hard_links_across_file_systems_are_refused_before_anything_is_written() {
    let source = Source::new();
    source.image("x", Some(OCI_MANIFEST), &[b"data"], "");
    // procfs is never the file system of a temp dir.
    let elsewhere = FsBackend::new("/proc");
    let store = Store::new(Arc::new(elsewhere.clone()));
    let distribution = Distribution::open(source.root.path()).unwrap();
    let options = Options {
        transfer: Transfer::HardLink(elsewhere),
        mint: &mint,
        concurrency: 2,
    };
    let err = import(&store, &distribution, &options, &Progress::default())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ImportError::CrossDevice {
            from: source.v2(),
            to: "/proc".into(),
        }
    );
}
