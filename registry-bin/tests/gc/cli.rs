//! The maintenance commands an operator runs beside a serving registry:
//! `registry gc --dry-run`, `registry garbage-collect CONFIG
//! --delete-untagged` (the standard registry's spelling), `registry du
//! --json`, and `registry config check`'s retention preview.

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::fixture::{registry_ok, GcConfig, Registry};
use crate::images::{pull_verified, Blob, Image};
use crate::rng::Rng;

fn sum(objects: &BTreeMap<String, u64>) -> u64 {
    objects.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_garbage_collect_du_and_config_check() {
    let gc = GcConfig {
        delay: std::time::Duration::from_secs(1),
        interval: None,
        retention: None,
        metrics: false,
    };
    let registry = Registry::start(&gc);
    let config = registry.config_arg();
    let client = &registry.client;
    let mut rng = Rng::new(14);
    let base = Blob::new(rng.bytes(20_000));
    let image = |name: &str, rng: &mut Rng, len| {
        let config = Blob::new(format!(r#"{{"image":"{name}"}}"#).into_bytes());
        Image::new(config, vec![base.clone(), Blob::new(rng.bytes(len))])
    };
    let one_a = image("one:a", &mut rng, 5_000);
    let one_b = image("one:b", &mut rng, 7_000);
    let two_x = image("two:x", &mut rng, 3_000);
    one_a.push(client, "cli/one", "a").await;
    one_b.push(client, "cli/one", "b").await;
    two_x.push(client, "cli/two", "x").await;
    // `b` untagged (its manifest stays), and a blob no manifest names.
    client.delete_manifest("cli/one", "b").await.unwrap();
    let orphan = Blob::new(rng.bytes(4_000));
    client
        .push_monolithic("cli/two", &orphan.data)
        .await
        .unwrap();
    tokio::time::sleep(gc.grace()).await;

    // Dry runs say what would go and touch nothing.
    let before = registry.snapshot();
    let out = registry_ok(&["gc", "--dry-run", &config]).await;
    assert!(
        out.contains("would delete 0 tags, 0 manifests, 1 layer links, 1 blobs"),
        "{out}"
    );
    let out = registry_ok(&["gc", "-d", "-m", "--json", &config]).await;
    let report: Value = serde_json::from_str(&out).unwrap();
    let b_only: Vec<&Blob> = one_b.blobs().filter(|b| b.digest != base.digest).collect();
    let garbage = one_b.manifest.len() as u64 + b_only.iter().map(|b| b.len()).sum::<u64>();
    assert_eq!(report["dry_run"], true, "{out}");
    assert_eq!(
        report["deleted_manifests"],
        serde_json::json!([format!("cli/one@{}", one_b.digest)]),
        "{out}"
    );
    // The manifest's bytes are linked like a blob too: four links.
    assert_eq!(report["swept_links"], 4, "{out}");
    assert_eq!(report["deleted_blobs"], 4, "{out}");
    assert_eq!(report["freed_bytes"], garbage + orphan.len(), "{out}");
    assert_eq!(registry.snapshot(), before, "a dry run changed the storage");

    // A reader that leaves before the report (`| head`) ends it quietly: no panic.
    let mut early = crate::spawn::command();
    early
        .args(["gc", "--dry-run", "--json", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = early.spawn().unwrap();
    drop(child.stdout.take());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("panicked"),
        "{}: {stderr}",
        output.status
    );

    // The real pass, while clients pull what stays.
    let stop = Arc::new(AtomicBool::new(false));
    let puller = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        let kept = [
            ("cli/one", one_a.digest.clone()),
            ("cli/two", two_x.digest.clone()),
        ];
        tokio::spawn(async move {
            let mut pulls = 0;
            while !stop.load(Ordering::Relaxed) || pulls == 0 {
                for (repo, digest) in &kept {
                    pull_verified(&client, repo, digest, &mut HashSet::new()).await?;
                    pulls += 1;
                }
            }
            Ok::<_, String>(pulls)
        })
    };
    let out = registry_ok(&["garbage-collect", &config, "--delete-untagged"]).await;
    stop.store(true, Ordering::Relaxed);
    let pulls = puller.await.unwrap().unwrap();
    assert!(
        out.contains("deleted 0 tags, 1 manifests, 4 layer links, 4 blobs"),
        "{out}"
    );
    assert!(
        out.contains(&format!("manifest cli/one@{}", one_b.digest)),
        "{out}"
    );
    let mut live = one_a.objects();
    live.extend(two_x.objects());
    let on_disk = registry.blobs();
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>(),
        "blob data left after the pass"
    );
    assert_eq!(on_disk, live);
    assert_eq!(
        client.get_manifest("cli/one", &one_b.digest).await.unwrap(),
        None
    );
    for (repo, image) in [("cli/one", &one_a), ("cli/two", &two_x)] {
        let read = pull_verified(client, repo, &image.digest, &mut HashSet::new())
            .await
            .unwrap();
        assert_eq!(read, image.objects());
    }

    // du: what pulling each repository moves, and what only it holds.
    let out = registry_ok(&["du", "--json", &config]).await;
    let usage: Value = serde_json::from_str(&out).unwrap();
    let repos: BTreeMap<&str, &Value> = usage["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repository"].as_str().unwrap(), r))
        .collect();
    assert_eq!(repos.len(), 2, "{out}");
    for (repo, image) in [("cli/one", &one_a), ("cli/two", &two_x)] {
        let objects = image.objects();
        assert_eq!(repos[repo]["logical"], sum(&objects), "{repo}: {out}");
        assert_eq!(
            repos[repo]["unique"],
            sum(&objects) - base.len(),
            "{repo}: {out}"
        );
        assert_eq!(repos[repo]["missing"], 0, "{repo}: {out}");
    }
    assert_eq!(usage["stored"], sum(&live), "{out}");

    // config check previews what a retention policy would delete, and deletes nothing.
    let policy = GcConfig {
        retention: Some(
            "- repositories: [\"cli/two\"]\n  deleteuntagged: 0s\n  keeptags:\n    - patterns: [\"keep-*\"]\n",
        ),
        ..gc
    };
    let checked = registry.config.with_file_name("retention.yml");
    std::fs::write(&checked, policy.render(&registry.root)).unwrap();
    let before = registry.snapshot();
    let out = registry_ok(&["config", "check", &checked.display().to_string()]).await;
    for expected in [
        "retention today (dry run):".to_owned(),
        "would delete 1 tags, 1 manifests".to_owned(),
        "tag cli/two:x".to_owned(),
        format!("manifest cli/two@{}", two_x.digest),
        "configuration is valid".to_owned(),
    ] {
        assert!(out.contains(&expected), "no {expected:?} in:\n{out}");
    }
    assert_eq!(
        registry.snapshot(),
        before,
        "config check changed the storage"
    );
    eprintln!("{pulls} verified pulls during the pass");
}
