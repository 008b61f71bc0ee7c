//! Composition of the `registry serve` process from checked [`Settings`]:
//! start-up checks, storage, auth with reload, TLS with reload, the main
//! and metrics listeners, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry_auth::{
    AllowAll, Anonymous, AuthenticatedOnly, Authenticator, Authorizer, CachingAuthenticator,
    TokenAuthenticator, TokenAuthorizer, TokenVerifier, TrustBundle,
};
use registry_storage::{CacheConfig, Store};
use tokio::net::TcpListener;

use crate::auth_file::HtpasswdFile;
use crate::config::{Settings, StorageSettings, TokenSettings};
use crate::maintenance;
use crate::notify::{source_addr, Notifier, SourceRecord};
use crate::preflight::check_readable;
use crate::proxy::Proxy;
use crate::server::{serve, serve_metrics, ServeOptions};
use crate::storage::open_backend;
use crate::tls::ReloadingCert;
use crate::ui::UiOptions;
use crate::watch::spawn_watch;
use crate::Registry;

/// How long a blob redirect's presigned URL serves (the standard registry's 20 minutes):
/// long enough for a slow pull of a large layer to start, short for a leaked URL.
const REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);

/// How often mounted files (htpasswd, certificates) are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Checks what `settings` names without starting anything: the htpasswd
/// file parses, the token root bundle holds certificates, the certificate
/// and key load and match, the storage root is a directory or can be
/// created. Returns one line per check.
pub fn check(settings: &Settings) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    match &settings.storage {
        StorageSettings::Filesystem(root) if root.exists() => {
            if !root.is_dir() {
                return Err(format!(
                    "{}: the storage root exists but is not a directory",
                    root.display()
                ));
            }
            report.push(format!("storage root {} exists", root.display()));
        }
        StorageSettings::Filesystem(root) => {
            report.push(format!("storage root {} will be created", root.display()));
        }
        StorageSettings::S3(_) => {
            // The bucket is checked by `check_storage`, which needs the network.
        }
    }
    if let Some((path, _)) = &settings.htpasswd {
        check_readable("htpasswd file", path).map_err(|e| e.to_string())?;
        let users = HtpasswdFile::load(path, "check").map_err(|e| e.to_string())?;
        drop(users);
        report.push(format!("htpasswd {} loads", path.display()));
    }
    if let Some(token) = &settings.token {
        let bundle = load_bundle(token)?;
        report.push(format!(
            "token root bundle {} loads ({} certificate{})",
            token.rootcertbundle.display(),
            bundle.len(),
            if bundle.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(tls) = &settings.tls {
        check_readable("TLS certificate", &tls.certificate).map_err(|e| e.to_string())?;
        check_readable("TLS key", &tls.key).map_err(|e| e.to_string())?;
        ReloadingCert::load(&tls.certificate, &tls.key).map_err(|e| e.to_string())?;
        report.push(format!(
            "TLS certificate {} and key load",
            tls.certificate.display()
        ));
    }
    for endpoint in &settings.notifications.endpoints {
        report.push(format!(
            "notification endpoint {} posts to {}",
            endpoint.name,
            without_password(&endpoint.url)
        ));
    }
    // Builds the clients: password files are read here.
    let proxy = Proxy::new(&settings.upstreams)?;
    for upstream in proxy.upstreams() {
        report.push(format!(
            "proxy upstream {} ({}) caches {}{}",
            upstream.label,
            upstream.url,
            match &upstream.prefix {
                Some(prefix) => format!("repositories under {prefix}/"),
                None => "every repository not stored here".into(),
            },
            match upstream.evict {
                Some(after) => format!(
                    "; garbage collection evicts what was not pulled for {} s",
                    after.as_secs()
                ),
                None => String::new(),
            }
        ));
    }
    settings.check_exposure()?;
    Ok(report)
}

/// Runs the server until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    settings.check_exposure()?;
    let backend = open_backend(&settings.storage).await?;

    let (authenticator, authorizer): Auth = match (&settings.token, &settings.htpasswd) {
        (Some(token), _) => token_auth(token)?,
        (None, Some((path, realm))) => {
            check_readable("htpasswd file", path).map_err(|e| e.to_string())?;
            let file = Arc::new(HtpasswdFile::load(path, realm).map_err(|e| e.to_string())?);
            tracing::info!(file = %path.display(), "basic auth on");
            // bcrypt once per credential, not per request (registry-auth/src/cache.rs).
            let users = Arc::new(CachingAuthenticator::new(Arc::clone(&file)));
            let (watched, cache) = (Arc::clone(&file), Arc::clone(&users));
            spawn_watch(vec![path.clone()], RELOAD_INTERVAL, move || {
                match watched.reload() {
                    Ok(count) => {
                        // A removed user or a changed password must not live on in the cache.
                        cache.invalidate();
                        tracing::info!(users = count, file = %watched.path().display(), "htpasswd reloaded")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "htpasswd changed but cannot be loaded; keeping the previous users")
                    }
                }
            });
            let authorizer: Arc<dyn Authorizer> = match &settings.access {
                Some(rules) => {
                    tracing::info!(anonymous_pull = rules.allows_anonymous(), "access rules on");
                    Arc::clone(rules) as Arc<dyn Authorizer>
                }
                None => Arc::new(AuthenticatedOnly),
            };
            (users, authorizer)
        }
        (None, None) => {
            tracing::warn!("auth is off: anyone who can reach this address can push and pull (set auth.htpasswd.path or --htpasswd)");
            (Arc::new(Anonymous), Arc::new(AllowAll))
        }
    };

    let mut options = ServeOptions {
        header_read_timeout: settings.limits.header_timeout,
        idle_timeout: settings.limits.idle_timeout,
        ..ServeOptions::default()
    };
    if let Some(tls) = &settings.tls {
        check_readable("TLS certificate", &tls.certificate).map_err(|e| e.to_string())?;
        check_readable("TLS key", &tls.key).map_err(|e| e.to_string())?;
        let cert = ReloadingCert::load(&tls.certificate, &tls.key).map_err(|e| e.to_string())?;
        options.tls = Some(cert.server_config());
        let watched = Arc::clone(&cert);
        spawn_watch(
            cert.paths().to_vec(),
            RELOAD_INTERVAL,
            move || match watched.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but cannot be loaded; keeping the previous certificate")
                }
            },
        );
    }

    let listener = TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;

    let store = Store::new(backend).with_gc_delay(settings.gc.delay);
    // Tags and manifests are cached in memory only where no other process writes them:
    // on shared object storage every replica reads the current tag (one small GET).
    let store = match &settings.storage {
        StorageSettings::Filesystem(_) => store.with_cache(CacheConfig::default()),
        StorageSettings::S3(_) => store,
    };
    let mut builder = Registry::builder(store);
    if !settings.notifications.endpoints.is_empty() {
        builder = builder.events(notifier(&settings, local.port())?);
    }
    if !settings.upstreams.is_empty() {
        let proxy = Proxy::new(&settings.upstreams)?;
        builder = builder.proxy(proxy);
    }
    let registry = builder
        .authenticator(authenticator)
        .authorizer(authorizer)
        .delete_enabled(settings.delete_enabled)
        .read_only(settings.read_only)
        .redirect_blobs(settings.redirect.then_some(REDIRECT_EXPIRY))
        .urls(settings.urls.clone())
        .throttle(
            settings.limits.throttle_failures,
            settings.limits.throttle_window,
        )
        .upload_slots(settings.limits.uploads)
        .body_timeout(settings.limits.body_timeout)
        .ui(settings.ui_prefix.clone().map(|prefix| UiOptions {
            prefix,
            usage: None,
        }))
        .build();
    if registry.proxy().is_some() {
        // Unreachable upstreams are logged, not fatal: they may come back, and what is
        // cached is served meanwhile.
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Some(proxy) = registry.proxy() {
                proxy.warn_unreachable().await;
            }
        });
    }
    if let Some((age, interval)) = settings.upload_purging {
        spawn_upload_purging(registry.clone(), age, interval);
    }
    match settings.gc.interval {
        Some(_) if settings.read_only => {
            tracing::warn!("read-only mode: the garbage collection schedule is off")
        }
        Some(interval) => {
            tracing::info!(
                interval_secs = interval.as_secs(),
                delay_secs = settings.gc.delay.as_secs(),
                policies = settings.gc.retention.len(),
                "garbage collection scheduled"
            );
            maintenance::spawn_schedule(registry.clone(), &settings, interval)?;
        }
        None => {}
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics = match &settings.metrics {
        Some((addr, path)) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (http.debug.addr): {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(addr = %local, path = %path, "metrics listening");
            let task = serve_metrics(
                listener,
                registry.clone(),
                path.clone(),
                stopped(stop_rx.clone()),
            );
            Some(tokio::spawn(task))
        }
        None => None,
    };
    // Logged last: tests and scripts wait for this line.
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if settings.read_only {
        tracing::warn!(
            "read-only mode (storage.maintenance.readonly.enabled): pushes and deletes are refused"
        );
    }
    tracing::info!(addr = %local, scheme = %scheme, storage = %settings.storage, "registry listening");
    let main = serve(listener, registry, options, stopped(stop_rx));
    tokio::pin!(main);
    tokio::select! {
        result = &mut main => result.map_err(|e| e.to_string())?,
        () = shutdown => {
            let _ = stop_tx.send(true);
            main.await.map_err(|e| e.to_string())?;
        }
    }
    if let Some(task) = metrics {
        let _ = stop_tx.send(true);
        let _ = task.await;
    }
    tracing::info!("registry stopped");
    Ok(())
}

/// The notification sink: one queue and sending task per endpoint, and
/// the `source` of its events (this host and port, and an id of this start).
fn notifier(settings: &Settings, port: u16) -> Result<Arc<Notifier>, String> {
    let source = SourceRecord {
        addr: source_addr(port),
        instance_id: uuid::Uuid::new_v4().to_string(),
    };
    for endpoint in &settings.notifications.endpoints {
        tracing::info!(endpoint = %endpoint.name, url = %without_password(&endpoint.url), queue = endpoint.queue_size, "notifications on");
    }
    Notifier::start(settings.notifications.clone(), source)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// An endpoint URL fit for logs: a password in it is left out.
fn without_password(url: &reqwest::Url) -> reqwest::Url {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url
}

/// The root bundle of `auth.token`, readable and with at least one certificate.
fn load_bundle(token: &TokenSettings) -> Result<TrustBundle, String> {
    let path = &token.rootcertbundle;
    check_readable("token root bundle (auth.token.rootcertbundle)", path)
        .map_err(|e| e.to_string())?;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    TrustBundle::from_pem(&pem)
        .map_err(|e| format!("auth.token.rootcertbundle: {}: {e}", path.display()))
}

/// Who the caller is and what they may do.
type Auth = (Arc<dyn Authenticator>, Arc<dyn Authorizer>);

/// Bearer tokens from the token server: its grants are all a caller may do.
fn token_auth(token: &TokenSettings) -> Result<Auth, String> {
    let bundle = load_bundle(token)?;
    tracing::info!(
        realm = %token.realm,
        service = %token.service,
        issuer = %token.issuer,
        bundle = %token.rootcertbundle.display(),
        key_ids = ?bundle.key_ids().collect::<Vec<_>>(),
        "token auth on"
    );
    let verifier = TokenVerifier::new(&token.issuer, &token.service, bundle);
    Ok((
        Arc::new(TokenAuthenticator::new(verifier, &token.realm)),
        Arc::new(TokenAuthorizer),
    ))
}

/// Removes abandoned uploads (with their data) every `interval`.
fn spawn_upload_purging(registry: Registry, age: Duration, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match registry.purge_uploads(age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    uploads = n,
                    older_than_secs = age.as_secs(),
                    "purged abandoned uploads"
                ),
                Err(e) => tracing::warn!(error = %e, "purging abandoned uploads failed"),
            }
        }
    });
}
