//! The HTTP client of one upstream registry: authentication as the upstream asks for it
//! (Basic, or the Bearer token flow), manifests with the client's `Accept` list, blobs
//! as streams.
//!
//! Requests go out anonymous (or with a token cached for their scope); a 401 names the
//! scheme in `WWW-Authenticate`. For `Basic` the configured credentials are sent from
//! then on. For `Bearer` a token is fetched from the challenge's realm for
//! `repository:<name>:pull`, with the credentials as Basic auth when configured, and kept
//! until it expires. Redirects (Docker Hub and ghcr.io answer blob GETs with a 307 to a
//! CDN) are followed by reqwest, which drops `Authorization` when the next hop is another
//! host or port (`remove_sensitive_headers` in reqwest's redirect.rs), so credentials
//! never reach the storage host.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::challenge::Challenge;
use crate::config::{Password, UpstreamSettings};

/// Tokens without `expires_in` live this long (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A token is dropped this long before it expires, so it does not expire in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);

/// Why the upstream could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No connection, a timeout, or a broken response.
    #[error("unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The upstream refused our credentials (or wants some and none are configured).
    #[error("refused the credentials (HTTP {0})")]
    Unauthorized(u16),
    /// The token service did not give a token.
    #[error("token service {realm}: {message}")]
    Token {
        /// The token endpoint.
        realm: String,
        /// What went wrong.
        message: String,
    },
    /// A password file cannot be read.
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How requests to the upstream authenticate, learnt from its challenges.
#[derive(Debug, Default)]
struct AuthState {
    /// The upstream asked for Basic auth.
    basic: bool,
    /// Tokens by scope, with the instant they stop being used.
    tokens: HashMap<String, (String, Instant)>,
}

/// One upstream registry. Its `Debug` leaves the password out.
pub struct UpstreamClient {
    http: reqwest::Client,
    base: String,
    credentials: Option<(String, String)>,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("base", &self.base)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// The `Accept` list sent when the client sent none: every manifest type this registry
/// stores, so the upstream does not fall back to schema 1.
pub fn default_accept() -> HeaderValue {
    HeaderValue::from_static(concat!(
        "application/vnd.oci.image.index.v1+json, ",
        "application/vnd.oci.image.manifest.v1+json, ",
        "application/vnd.docker.distribution.manifest.list.v2+json, ",
        "application/vnd.docker.distribution.manifest.v2+json"
    ))
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl UpstreamClient {
    /// A client for `settings`; reads the password file now.
    pub fn new(settings: &UpstreamSettings) -> Result<UpstreamClient, UpstreamError> {
        let credentials = match &settings.credentials {
            None => None,
            Some((user, Password::Inline(p))) => Some((user.clone(), p.clone())),
            Some((user, Password::File(path))) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    UpstreamError::PasswordFile {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                Some((user.clone(), text.trim_end_matches(['\r', '\n']).to_owned()))
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .user_agent(concat!(
                "registry/",
                env!("CARGO_PKG_VERSION"),
                " (pull-through cache)"
            ))
            .build()
            .map_err(UpstreamError::Unreachable)?;
        Ok(UpstreamClient {
            http,
            base: settings.url.clone(),
            credentials,
            auth: Mutex::new(AuthState::default()),
        })
    }

    fn state<T>(&self, f: impl FnOnce(&mut AuthState) -> T) -> T {
        f(&mut self.auth.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `GET|HEAD /v2/<remote>/manifests/<reference>` with the client's `Accept` values.
    pub async fn manifest(
        &self,
        remote: &str,
        reference: &str,
        accept: &[HeaderValue],
        head: bool,
    ) -> Result<reqwest::Response, UpstreamError> {
        let method = if head {
            reqwest::Method::HEAD
        } else {
            reqwest::Method::GET
        };
        let path = format!("/v2/{remote}/manifests/{reference}");
        self.send(method, remote, &path, accept).await
    }

    /// `GET|HEAD /v2/<remote>/blobs/<digest>`, redirects followed.
    pub async fn blob(
        &self,
        remote: &str,
        digest: &str,
        head: bool,
    ) -> Result<reqwest::Response, UpstreamError> {
        let method = if head {
            reqwest::Method::HEAD
        } else {
            reqwest::Method::GET
        };
        let path = format!("/v2/{remote}/blobs/{digest}");
        self.send(method, remote, &path, &[]).await
    }

    /// Whether the upstream answers `/v2/` at all (any status), for the start-up check.
    pub async fn reachable(&self) -> Result<(), UpstreamError> {
        self.http
            .get(format!("{}/v2/", self.base))
            .send()
            .await
            .map(drop)
            .map_err(UpstreamError::Unreachable)
    }

    /// Sends with what is known of the upstream's auth; on a 401, learns the challenge
    /// and sends once more.
    async fn send(
        &self,
        method: reqwest::Method,
        remote: &str,
        path: &str,
        accept: &[HeaderValue],
    ) -> Result<reqwest::Response, UpstreamError> {
        let scope = format!("repository:{remote}:pull");
        let url = format!("{}{path}", self.base);
        let build = |auth: Option<String>| {
            let mut request = self.http.request(method.clone(), &url);
            for value in accept {
                request = request.header(http::header::ACCEPT, value.clone());
            }
            if let Some(auth) = auth {
                request = request.header(http::header::AUTHORIZATION, auth);
            }
            request
        };
        let first = build(self.known_auth(&scope));
        let response = first.send().await.map_err(UpstreamError::Unreachable)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        let auth = match challenge {
            Some(Challenge::Basic) => {
                let basic = self.basic().ok_or(UpstreamError::Unauthorized(401))?;
                self.state(|s| s.basic = true);
                basic
            }
            Some(Challenge::Bearer { realm, service }) => {
                format!(
                    "Bearer {}",
                    self.token(&realm, service.as_deref(), &scope).await?
                )
            }
            None => return Err(UpstreamError::Unauthorized(401)),
        };
        let response = build(Some(auth))
            .send()
            .await
            .map_err(UpstreamError::Unreachable)?;
        match response.status() {
            StatusCode::UNAUTHORIZED => {
                // A token that no longer works must not be offered again.
                self.state(|s| s.tokens.remove(&scope));
                Err(UpstreamError::Unauthorized(401))
            }
            _ => Ok(response),
        }
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine as _;
        let (user, password) = self.credentials.as_ref()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {encoded}"))
    }

    /// The `Authorization` value to try first: a live token for the scope, or Basic once
    /// the upstream asked for it.
    fn known_auth(&self, scope: &str) -> Option<String> {
        let now = Instant::now();
        let (basic, token) = self.state(|s| {
            s.tokens.retain(|_, (_, until)| *until > now);
            (s.basic, s.tokens.get(scope).map(|(t, _)| t.clone()))
        });
        match token {
            Some(token) => Some(format!("Bearer {token}")),
            None if basic => self.basic(),
            None => None,
        }
    }

    /// Fetches a token for `scope` from `realm` and caches it until it expires.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, UpstreamError> {
        let fail = |message: String| UpstreamError::Token {
            realm: realm.to_owned(),
            message,
        };
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut request = self.http.get(realm).query(&query);
        if let Some(basic) = self.basic() {
            request = request.header(http::header::AUTHORIZATION, basic);
        }
        let response = request.send().await.map_err(UpstreamError::Unreachable)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(UpstreamError::Unauthorized(status.as_u16()));
        }
        if !status.is_success() {
            return Err(fail(format!("answered HTTP {status}")));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| fail(format!("not a token response: {e}")))?;
        let token = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the response has no token".into()))?;
        let lifetime = body
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .saturating_sub(TOKEN_MARGIN);
        if !lifetime.is_zero() {
            let until = Instant::now() + lifetime;
            self.state(|s| s.tokens.insert(scope.to_owned(), (token.clone(), until)));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use registry_core::manifest::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

    #[test]
    fn debug_output_leaves_the_password_out() {
        let settings = crate::config::parse_str(
            "proxy:\n  upstreams:\n    - prefix: a\n      url: https://a\n      username: u\n      password: s3cret\n",
        )
        .unwrap()
        .proxy
        .check()
        .unwrap();
        let client = super::UpstreamClient::new(&settings[0]).unwrap();
        let text = format!("{client:?}");
        assert!(
            text.contains("https://a") && !text.contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn the_default_accept_lists_every_stored_type() {
        let accept = super::default_accept();
        let accept = accept.to_str().unwrap();
        for media_type in [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST] {
            assert!(accept.split(", ").any(|t| t == media_type), "{media_type}");
        }
    }
}
