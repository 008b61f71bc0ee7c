//! CI smoke run: every workload of `registry-load`, scaled down, against this
//! registry served in process (basic auth, filesystem storage, the caches on,
//! as the binary composes it). Every JSON line must say `"ok": true`.

use std::process::Command;
use std::sync::Arc;

use registry_auth::{AuthenticatedOnly, CachingAuthenticator, Htpasswd, HtpasswdAuthenticator};
use registry_bin::{serve, Registry, ServeOptions};
use registry_storage::{CacheConfig, FsBackend, Store};

#[test]
fn every_workload_runs_against_this_registry() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let users = Htpasswd::parse(&format!("ci:{hash}\n")).unwrap();
    let store = Store::new(Arc::new(FsBackend::new(dir.path()))).with_cache(CacheConfig::default());
    let registry = Registry::builder(store)
        .authenticator(Arc::new(CachingAuthenticator::new(
            HtpasswdAuthenticator::new(users, "smoke"),
        )))
        .authorizer(Arc::new(AuthenticatedOnly))
        .build();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve(listener, registry, ServeOptions::default(), async {
        let _ = stopped.await;
    }));

    let output = Command::new(env!("CARGO_BIN_EXE_registry-load"))
        .args(["--url", &url, "--user", "ci", "--password", "pw"])
        .args(["--workload", "all", "--label", "smoke"])
        .args(["--size-mib", "4", "--chunk-mib", "1", "--pull-repeats", "2"])
        .args([
            "--clients",
            "4",
            "--duration",
            "0.5",
            "--max-requests",
            "2000",
        ])
        .args(["--pushers", "1", "--pullers", "2", "--layer-kib", "64,16"])
        .args(["--max-seconds", "60"])
        .args(["--server-pid", &std::process::id().to_string()])
        .output()
        .unwrap();
    let _ = stop.send(());
    let _ = runtime.block_on(server);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "push-1g",
            "push-4x256m",
            "push-chunked",
            "pull-1g",
            "manifest-get",
            "mixed-push",
            "mixed-pull"
        ]
    );
    for line in &lines {
        assert_eq!(line["ok"], true, "{line}");
        assert_eq!(line["label"], "smoke");
        assert!(
            line["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0),
            "{line}"
        );
    }
    assert_eq!(lines[0]["bytes"], 4 << 20);
    assert!(lines[4]["requests"].as_u64().is_some_and(|n| n > 0));
    assert!(lines[6]["images"].as_u64().is_some_and(|n| n > 0));
}

/// `push-ceiling`, scaled down: every stage runs, the bounds follow from the stages
/// (one push never above SHA-256 on one core, nor above the cores over the CPU per
/// byte), and the disk stage leaves no file behind.
#[test]
fn the_push_ceiling_probe_reports_consistent_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_push-ceiling"))
        .args(["--mib", "64", "--runs", "1", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let f = |key: &str| line[key].as_f64().unwrap_or(-1.0);
    for key in ["sha256_gb_s", "loopback_gb_s", "disk_gb_s", "one_push_gb_s"] {
        assert!(f(key) > 0.0, "{key}: {line}");
    }
    assert!(f("one_push_gb_s") <= f("sha256_gb_s"), "{line}");
    assert!(f("one_push_gb_s") <= f("parallel_pushes_gb_s"), "{line}");
    let cpu = &line["cpu_s_per_gb"];
    let parts = ["sha256", "loopback", "disk"].map(|k| cpu[k].as_f64().unwrap_or(-1.0));
    assert!(parts.iter().all(|&p| p >= 0.0), "{line}");
    let total = cpu["total"].as_f64().unwrap_or(-1.0);
    assert!((parts.iter().sum::<f64>() - total).abs() < 0.01, "{line}");
    let cpu_bound = f("cores") / total;
    assert!(f("one_push_gb_s") <= cpu_bound + 0.01, "{line}");
    assert!(f("parallel_pushes_gb_s") <= cpu_bound + 0.01, "{line}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
