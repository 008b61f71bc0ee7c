//! Retention policies with the real binary: recent tags and tags matching a
//! pattern stay, with what they reach (signatures of them, an index's
//! children); the rest of the policy's repositories goes, down to the blob
//! data; a repository no policy names keeps everything.

use std::collections::HashSet;
use std::time::Duration;

use crate::fixture::{registry_ok, GcConfig, Registry};
use crate::images::{pull_verified, Blob, Image};
use crate::rng::Rng;

const POLICY: &str = "- repositories: [\"ci/**\"]
  deleteuntagged: 0s
  keeptags:
    - mostrecentlypushed: 2
    - patterns: [\"v*\"]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_recent_and_matching_tags_and_what_they_reach() {
    let gc = GcConfig {
        delay: Duration::from_secs(1),
        interval: None,
        retention: Some(POLICY),
        metrics: false,
    };
    let registry = Registry::start(&gc);
    let client = &registry.client;
    let mut rng = Rng::new(0x14);
    let base = Blob::new(rng.bytes(16_000));
    let mut image = |name: &str| {
        let config = Blob::new(format!(r#"{{"image":"{name}"}}"#).into_bytes());
        let len = rng.range(1_000, 8_000) as usize;
        Image::new(config, vec![base.clone(), Blob::new(rng.bytes(len))])
    };

    let mut tagged = Vec::new();
    for tag in ["v1.0", "t1", "t2", "t3", "t4", "t5"] {
        let image = image(tag);
        image.push(client, "ci/app", tag).await;
        tagged.push((tag, image));
        // Push times in storage are in milliseconds: keep them apart.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let newest = &tagged[5].1;
    let signature = Image::referrer(
        Blob::new(b"{}".to_vec()),
        Blob::new(b"signature of t5".to_vec()),
        newest,
    );
    signature.push(client, "ci/app", &signature.digest).await;
    let children = [image("amd64"), image("arm64")];
    for child in &children {
        child.push(client, "ci/multi", &child.digest).await;
    }
    let index = Image::index(&[&children[0], &children[1]]);
    index.push(client, "ci/multi", "multi").await;
    let unnamed = image("no policy");
    unnamed.push(client, "other/app", &unnamed.digest).await;
    tokio::time::sleep(gc.grace()).await;

    let out = registry_ok(&["gc", &registry.config_arg()]).await;
    assert!(out.contains("deleted 3 tags, 3 manifests"), "{out}");

    let tags = |repo: &'static str| async move {
        let mut tags = client.tags(repo).await.unwrap().unwrap();
        tags.sort();
        tags
    };
    assert_eq!(tags("ci/app").await, ["t4", "t5", "v1.0"], "{out}");
    assert_eq!(tags("ci/multi").await, ["multi"], "{out}");
    let mut seen = HashSet::new();
    for (tag, image) in &tagged {
        if ["t1", "t2", "t3"].contains(tag) {
            assert_eq!(
                client.get_manifest("ci/app", &image.digest).await.unwrap(),
                None,
                "{tag}"
            );
            for (digest, _) in image.objects().iter().filter(|(d, _)| **d != base.digest) {
                assert!(!registry.has_blob(digest), "{tag}: {digest} still on disk");
            }
        } else {
            let read = pull_verified(client, "ci/app", &image.digest, &mut seen)
                .await
                .unwrap();
            assert_eq!(read, image.objects(), "{tag}");
        }
    }
    for (repo, image) in [
        ("ci/app", &signature),
        ("ci/multi", &index),
        ("ci/multi", &children[0]),
        ("ci/multi", &children[1]),
        ("other/app", &unnamed),
    ] {
        pull_verified(client, repo, &image.digest, &mut seen)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{out}"));
    }
    assert!(registry.has_blob(&base.digest));
}
