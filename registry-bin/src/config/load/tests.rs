//! Precedence and error messages of the config loader.

use super::*;

fn write(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_without_a_file() {
    let (config, warnings) = load(None, env(&[])).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.http.addr, "127.0.0.1:5000");
    assert!(config.storage.delete.enabled);
    assert!(warnings.is_empty());
}

#[test]
fn file_values_apply() {
    let f = write(
        "version: 0.1\nlog:\n  level: debug\n  formatter: json\nstorage:\n  filesystem:\n    rootdirectory: /srv/reg\n  delete:\n    enabled: false\nauth:\n  htpasswd:\n    realm: Corp\n    path: /etc/htpasswd\nhttp:\n  addr: :5000\n  relativeurls: false\n  host: https://reg.example.com\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n  debug:\n    addr: 127.0.0.1:5001\n",
    );
    let (c, _) = load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.log.formatter, "json");
    assert_eq!(
        c.storage.filesystem.rootdirectory,
        PathBuf::from("/srv/reg")
    );
    assert!(!c.storage.delete.enabled);
    let h = c.auth.htpasswd.unwrap();
    assert_eq!(
        (h.realm.as_str(), h.path.to_str().unwrap()),
        ("Corp", "/etc/htpasswd")
    );
    assert_eq!(c.http.addr, ":5000");
    assert!(!c.http.relativeurls);
    assert_eq!(c.http.tls.unwrap().key, PathBuf::from("/k.pem"));
    let debug = c.http.debug.unwrap();
    assert_eq!(debug.addr, "127.0.0.1:5001");
    assert!(debug.prometheus.enabled);
    assert_eq!(debug.prometheus.path, "/metrics");
}

#[test]
fn environment_overrides_the_file() {
    let f = write("log:\n  level: debug\nstorage:\n  delete:\n    enabled: true\n");
    let (c, warnings) = load(
        Some(f.path()),
        env(&[
            ("REGISTRY_LOG_LEVEL", "warn"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "false"),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/from/env"),
            ("REGISTRY_AUTH_HTPASSWD_PATH", "/env/htpasswd"),
            ("REGISTRY_PORT", "tcp://10.0.0.1:5000"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(c.log.level, "warn");
    assert!(!c.storage.delete.enabled);
    assert_eq!(
        c.storage.filesystem.rootdirectory,
        PathBuf::from("/from/env")
    );
    let h = c.auth.htpasswd.unwrap();
    assert_eq!(h.path, PathBuf::from("/env/htpasswd"));
    assert_eq!(h.realm, "Registry Realm");
    assert_eq!(
        warnings,
        ["ignoring REGISTRY_PORT: it names no configuration key"]
    );
}

#[test]
fn unknown_keys_name_the_key_and_line() {
    let f = write("http:\n  addr: :5000\n  adr: :6000\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown field `adr`"), "{text}");
    assert!(text.contains("http"), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(matches!(err, ConfigError::File { line: Some(3), .. }));
}

#[test]
fn wrong_types_name_the_key_and_line() {
    let f = write("storage:\n  delete:\n    enabled: maybe\n");
    let text = load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(text.contains("storage.delete.enabled"), "{text}");
    assert!(text.contains("line 3"), "{text}");
    let f = write("log:\n  level: [1, 2]\n");
    let text = load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(text.contains("log.level"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn unknown_sections_and_bad_yaml() {
    let f = write("logging:\n  level: info\n");
    let text = load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(
        text.contains("unknown field `logging`") && text.contains("line 1"),
        "{text}"
    );
    let f = write("http: [\n");
    assert!(matches!(
        load(Some(f.path()), env(&[])),
        Err(ConfigError::File { .. })
    ));
    let missing = std::path::Path::new("/nonexistent/config.yml");
    let text = load(Some(missing), env(&[])).unwrap_err().to_string();
    assert!(text.contains("/nonexistent/config.yml"), "{text}");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let err = load(None, env(&[("REGISTRY_HTTP_RELATIVEURLS", "sometimes")])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("REGISTRY_HTTP_RELATIVEURLS"), "{text}");
    assert!(text.contains("sometimes"), "{text}");
}

#[test]
fn empty_file_is_all_defaults() {
    let f = write("");
    assert_eq!(load(Some(f.path()), env(&[])).unwrap().0, Config::default());
}

#[test]
fn access_rules_limits_and_durations() {
    let f = write(
        "auth:\n  htpasswd:\n    path: /h\n  groups:\n    cluster: [node]\n  access:\n    - repository: \"*\"\n      users: [ci]\n      actions: [pull, push]\n    - repository: \"public/*\"\n      anonymous: true\n      actions: [pull]\n  throttle:\n    failures: 5\n    window: 2m\nstorage:\n  maintenance:\n    uploadpurging:\n      age: 24h\n      interval: 30m\nhttp:\n  timeouts:\n    header: 10s\n    body: 500ms\n    idle: 90\n  limits:\n    uploads: 8\n",
    );
    let (c, _) = load(
        Some(f.path()),
        env(&[("REGISTRY_HTTP_LIMITS_UPLOADS", "16")]),
    )
    .unwrap();
    let s = crate::config::Settings::from_config(&c).unwrap();
    assert!(s.access.as_ref().unwrap().allows_anonymous());
    assert_eq!(s.limits.throttle_failures, 5);
    assert_eq!(
        s.limits.throttle_window,
        std::time::Duration::from_secs(120)
    );
    assert_eq!(
        s.upload_purging,
        Some((
            std::time::Duration::from_secs(86400),
            std::time::Duration::from_secs(1800)
        ))
    );
    assert_eq!(s.limits.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(s.limits.body_timeout, std::time::Duration::from_millis(500));
    assert_eq!(s.limits.idle_timeout, std::time::Duration::from_secs(90));
    assert_eq!(s.limits.uploads, 16);
}

#[test]
fn bad_rules_name_the_rule_and_field() {
    let base = "auth:\n  htpasswd:\n    path: /h\n  access:\n";
    let cases = [
        (
            "    - repository: \"Team/*\"\n      users: [a]\n      actions: [pull]\n",
            "auth.access[0].repository",
        ),
        (
            "    - repository: \"*\"\n      users: [a]\n      actions: [fly]\n",
            "auth.access[0].actions",
        ),
        (
            "    - repository: \"*\"\n      groups: [ghosts]\n      actions: [pull]\n",
            "ghosts",
        ),
        (
            "    - repository: \"*\"\n      actions: [pull]\n",
            "grants nothing",
        ),
        (
            "    - repository: \"*\"\n      users: [a]\n      actions: [pull]\n      extra: 1\n",
            "unknown field `extra`",
        ),
    ];
    for (rules, needle) in cases {
        let f = write(&format!("{base}{rules}"));
        let err = match load(Some(f.path()), env(&[])) {
            Err(e) => e.to_string(),
            Ok((c, _)) => crate::config::Settings::from_config(&c)
                .unwrap_err()
                .to_string(),
        };
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let f = write("storage:\n  maintenance:\n    uploadpurging:\n      age: soon\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("storage.maintenance.uploadpurging.age") && err.contains("line 4"),
        "{err}"
    );
}

#[test]
fn the_page_is_on_at_the_root_and_off_in_one_key() {
    let settings = |c: &Config| crate::config::Settings::from_config(c);
    let (c, _) = load(None, env(&[])).unwrap();
    assert_eq!(settings(&c).unwrap().ui_prefix.as_deref(), Some("/"));
    let f = write("http:\n  ui:\n    enabled: false\n");
    let (c, _) = load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(settings(&c).unwrap().ui_prefix, None);
    let (c, _) = load(None, env(&[("REGISTRY_HTTP_UI_PREFIX", "/ui")])).unwrap();
    assert_eq!(settings(&c).unwrap().ui_prefix.as_deref(), Some("/ui"));
    for bad in ["ui", "/v2", "/v2/ui", "/a b", "/<x>", "//"] {
        let (c, _) = load(None, env(&[("REGISTRY_HTTP_UI_PREFIX", bad)])).unwrap();
        let err = settings(&c).unwrap_err().to_string();
        assert!(err.contains("http.ui.prefix"), "{bad}: {err}");
    }
}

#[test]
fn token_auth_from_the_file_and_the_environment() {
    let f = write(
        "auth:\n  token:\n    realm: https://auth.example.com/token\n    service: reg\n    issuer: auth\n    rootcertbundle: /etc/ca.pem\n",
    );
    let (c, _) = load(
        Some(f.path()),
        env(&[
            ("REGISTRY_AUTH_TOKEN_SERVICE", "registry.example.com"),
            ("REGISTRY_AUTH_TOKEN_AUTOREDIRECT", "false"),
        ]),
    )
    .unwrap();
    let t = c.auth.token.unwrap();
    assert_eq!(t.realm, "https://auth.example.com/token");
    assert_eq!(t.service, "registry.example.com");
    assert_eq!(t.issuer, "auth");
    assert_eq!(t.rootcertbundle, PathBuf::from("/etc/ca.pem"));
    assert!(!t.autoredirect);
    // Every key from the environment alone.
    let (c, warnings) = load(
        None,
        env(&[
            ("REGISTRY_AUTH_TOKEN_REALM", "http://127.0.0.1:1/token"),
            ("REGISTRY_AUTH_TOKEN_SERVICE", "s"),
            ("REGISTRY_AUTH_TOKEN_ISSUER", "i"),
            ("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE", "/b.pem"),
            ("REGISTRY_AUTH_TOKEN_AUTOREDIRECT", "true"),
        ]),
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(c.auth.token.unwrap().autoredirect);
}

#[test]
fn token_auth_needs_every_key() {
    let f = write("auth:\n  token:\n    realm: r\n    service: s\n    issuer: i\n");
    let err = load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(err.contains("rootcertbundle"), "{err}");
}
