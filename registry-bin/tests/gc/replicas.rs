//! Issue 15's garbage collection with several replicas: three `registry serve` on one
//! S3 bucket behind haproxy (a replica of its own for every request), each running its
//! own pass every second, and `registry gc` in a loop in other processes, while the
//! stress test's pushers, mounters and deleter work through the balancer. Afterwards
//! every image acknowledged and not deleted pulls whole through the balancer, and the
//! bucket holds every live blob and at most 10% more.
//!
//! The S3 server is the one `scripts/test` starts (`scripts/s3-server`).

use std::collections::BTreeMap;
use std::time::Duration;

use registry_storage::s3::client::S3Client;

use crate::client::Client;
use crate::fixture::{registry_ok, seeded, GcConfig, LOG_FILTER, TIMEOUT};
use crate::haproxy::Haproxy;
use crate::harness::Binary;
use crate::s3_env;
use crate::stress::{assert_live_set_kept, race, survivors_pull_whole, DELAY};

/// S3 keeps modification times to the second: the wait after the load gets one more.
const TIME_RESOLUTION: Duration = Duration::from_secs(1);

/// `storage.s3` for `bucket`, under `/registry`, as the config file's driver section.
fn s3_section(bucket: &str) -> String {
    let s3 = s3_env::config(bucket, "registry");
    let (access, secret, _) = s3.credentials.expect("the test server's keys");
    format!(
        "  s3:\n    region: {}\n    regionendpoint: {}\n    bucket: {bucket}\n    \
         rootdirectory: /registry\n    accesskey: {access}\n    secretkey: {secret}\n    \
         forcepathstyle: true\n",
        s3.region, s3.endpoint
    )
}

/// Every blob data object in the bucket: digest to size.
async fn bucket_blobs(s3: &S3Client) -> BTreeMap<String, u64> {
    let mut blobs = BTreeMap::new();
    let mut next = None;
    loop {
        let page = s3
            .list("v1/blobs/", false, None, next.as_deref(), 1000)
            .await
            .expect("list the bucket");
        for (key, size, _) in page.objects {
            let parts: Vec<&str> = key.split('/').collect();
            if let ["v1", "blobs", alg, _, hex, "data"] = parts[..] {
                blobs.insert(format!("{alg}:{hex}"), size);
            }
        }
        next = page.next;
        if next.is_none() {
            return blobs;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_on_three_replicas_and_beside_them_lose_nothing() {
    let mut rng = seeded("replicas");
    let gc = GcConfig {
        delay: DELAY,
        interval: Some("1s"),
        retention: None,
        metrics: false,
    };
    let bucket = s3_env::unique_bucket();
    let s3 = s3_env::client_in(&bucket, "registry").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, gc.render_on(&s3_section(&bucket))).unwrap();
    let config_arg = config.display().to_string();
    let replicas: Vec<Binary> = (0..3)
        .map(|_| {
            tokio::task::block_in_place(|| {
                Binary::start(
                    tempfile::tempdir().unwrap(),
                    &config,
                    &["--log-level", LOG_FILTER],
                )
            })
        })
        .collect();
    let hosts: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let balancer = Haproxy::start(&hosts, true);
    let client = Client::new(&format!("http://{}", balancer.host), TIMEOUT);

    let (ledger, passes) = race(&client, config_arg.clone(), &mut rng, gc.delay).await;

    tokio::time::sleep(gc.grace() + TIME_RESOLUTION).await;
    let out = registry_ok(&["gc", "--delete-untagged", &config_arg]).await;
    let live = survivors_pull_whole(&client, &ledger).await;
    let stored = bucket_blobs(&s3).await;
    let (live_bytes, stored_bytes) = assert_live_set_kept(&live, &stored, &out);
    eprintln!(
        "replicas: {} images acknowledged, {} survived; live {} blobs {live_bytes} B, \
         bucket {} blobs {stored_bytes} B; registry gc passes {passes:?}; counts {:?}",
        ledger.pushed.len(),
        ledger.survivors().len(),
        live.len(),
        stored.len(),
        ledger.counts
    );
}
