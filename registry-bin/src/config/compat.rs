//! Keys of the standard registry's `config.yml` that this registry does not implement.
//!
//! A team switching from CNCF Distribution keeps its config file, so those keys must not
//! stop the start as unknown keys would. Each is either ignored with one warning line
//! (what it did is not needed here, or only tunes something this registry does its own
//! way) or refused, where ignoring it would be unsafe: serving from other storage than
//! the one configured, accepting clients a setting meant to keep out, or answering on
//! paths the clients do not use. The README's table lists the same keys.
//!
//! The schema accepts these keys as opaque values ([`Foreign`]), so the typed parse still
//! names every truly unknown key with its line; this module then looks them up in the
//! parsed tree.

use serde_yaml_ng::Value;

use super::load::ConfigError;

/// The value of a key this registry accepts only to warn about or refuse it.
pub type Foreign = Option<Value>;

/// What happens to a key of the standard registry that is not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// One warning line, then the key is ignored.
    Ignored(&'static str),
    /// The start stops, naming the key.
    Refused(&'static str),
}

use Treatment::{Ignored, Refused};

/// Every not-implemented key of Distribution 2.8's configuration reference, by dotted path.
const KEYS: &[(&str, Treatment)] = &[
    ("loglevel", Ignored("deprecated in the standard registry; use log.level")),
    ("log.accesslog", Ignored("every request is logged as one line at info level")),
    ("log.fields", Ignored("log lines carry their own fields")),
    ("log.hooks", Ignored("mail hooks are not implemented; alert on the logs instead")),
    ("storage.filesystem.maxthreads", Ignored("file IO runs on tokio's bounded blocking pool")),
    ("storage.cache", Ignored("tags and manifests are cached in memory by default")),
    ("storage.tag", Ignored("tag lookups are not limited separately")),
    ("storage.inmemory", Refused("only filesystem and S3 storage are implemented; refusing rather than serve from another storage than the one configured")),
    ("storage.s3.encrypt", Ignored("objects get the bucket's default encryption; set it on the bucket")),
    ("storage.s3.keyid", Ignored("objects get the bucket's default encryption key; set it on the bucket")),
    ("storage.s3.storageclass", Ignored("objects get the bucket's default storage class")),
    ("storage.s3.objectacl", Ignored("objects get the bucket's default ACL; grant access with a bucket policy")),
    ("storage.s3.useragent", Ignored("requests carry the registry's own user agent")),
    ("storage.s3.usedualstack", Ignored("the endpoint is used as configured")),
    ("storage.s3.accelerate", Ignored("the endpoint is used as configured")),
    ("storage.s3.multipartcopychunksize", Ignored("blob copies above 5 GiB use parts sized by the registry")),
    ("storage.s3.multipartcopymaxconcurrency", Ignored("blob copies above 5 GiB use parts sized by the registry")),
    ("storage.s3.multipartcopythresholdsize", Ignored("copies switch to parts at S3's 5 GiB limit")),
    ("storage.s3.loglevel", Ignored("S3 errors are logged at the registry's log level")),
    ("storage.azure", Refused("Azure storage is not implemented; refusing rather than serve from another storage than the one configured")),
    ("storage.gcs", Refused("GCS storage is not implemented; refusing rather than serve from another storage than the one configured")),
    ("storage.swift", Refused("Swift storage is not implemented; refusing rather than serve from another storage than the one configured")),
    ("storage.oss", Refused("OSS storage is not implemented; refusing rather than serve from another storage than the one configured")),
    ("auth.silly", Refused("the silly auth scheme is not implemented; refusing rather than serve without the auth configured")),
    ("middleware", Ignored("middleware (CloudFront, redirects) is not implemented; blobs are served directly")),
    ("reporting", Ignored("Bugsnag and New Relic reporting are not implemented; use /metrics")),
    ("redis", Ignored("not needed: caches are in memory and replicas share nothing")),
    ("health", Ignored("/healthz and /readyz check storage on every probe")),
    ("compatibility", Ignored("schema 1 manifests are refused")),
    ("validation", Ignored("manifests are always validated; foreign layer URLs are kept as pushed")),
    ("policy", Ignored("repository classes are not checked")),
    ("http.net", Ignored("the registry listens on TCP (a unix socket is refused below)")),
    ("http.prefix", Refused("serving the API under a path prefix is not implemented; clients would get 404 everywhere")),
    ("http.secret", Ignored("not needed: upload state is in storage, not in signed client state")),
    ("http.draintimeout", Ignored("on SIGTERM the registry finishes requests in flight, then exits")),
    ("http.headers", Ignored("the registry sets its own response headers")),
    ("http.http2", Ignored("HTTP/2 is served over TLS with ALPN, and HTTP/1.1 always")),
    ("http.h2c", Ignored("HTTP/2 without TLS is not served")),
    ("http.tls.clientcas", Refused("client certificate authentication is not implemented; refusing rather than let in clients without a certificate")),
    ("http.tls.letsencrypt", Refused("ACME certificates are not implemented; set http.tls.certificate and http.tls.key (e.g. from cert-manager)")),
    ("http.tls.minimumtls", Ignored("TLS 1.2 and 1.3 are served, with rustls' safe defaults")),
    ("http.tls.ciphersuites", Ignored("rustls' safe default cipher suites are used")),
    ("http.debug.tls", Ignored("the debug listener serves plain HTTP")),
];

/// Warnings for the not-implemented keys present in `tree`, or the first refusal.
pub fn check(tree: &Value) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for (key, treatment) in KEYS {
        let Some(value) = lookup(tree, key) else {
            continue;
        };
        match treatment {
            Ignored(why) => warnings.push(format!(
                "ignoring {key} (a key of the standard registry): {why}"
            )),
            Refused(why) => {
                return Err(ConfigError::Invalid {
                    key: (*key).to_owned(),
                    message: (*why).to_owned(),
                })
            }
        }
        if *key == "http.net" && value.as_str() == Some("unix") {
            return Err(ConfigError::Invalid {
                key: "http.net".into(),
                message: "listening on a unix socket is not implemented".into(),
            });
        }
    }
    Ok(warnings)
}

/// The value at a dotted path, if present (and not null).
fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    let mut node = tree;
    for part in key.split('.') {
        node = node.as_mapping()?.get(part)?;
    }
    (!node.is_null()).then_some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn the_official_image_config_starts_with_warnings() {
        // The config.yml shipped in the registry:2 image.
        let text = "version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n  headers:\n    X-Content-Type-Options: [nosniff]\nhealth:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n";
        let warnings = check(&tree(text)).unwrap();
        let keys: Vec<&str> = warnings
            .iter()
            .map(|w| w.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            ["log.fields", "storage.cache", "health", "http.headers"]
        );
    }

    #[test]
    fn unsafe_keys_are_refused_by_name() {
        for (text, key) in [
            (
                "http:\n  tls:\n    clientcas: [/ca.pem]\n",
                "http.tls.clientcas",
            ),
            ("http:\n  prefix: /reg\n", "http.prefix"),
            ("storage:\n  azure:\n    accountname: a\n", "storage.azure"),
            ("http:\n  net: unix\n", "http.net"),
        ] {
            match check(&tree(text)) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(check(&tree("http:\n  net: tcp\n")).is_ok());
        assert!(check(&tree("storage:\n  s3: ~\n")).unwrap().is_empty());
    }
}
