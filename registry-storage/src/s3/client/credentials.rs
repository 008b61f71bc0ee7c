//! Where the signing keys come from: the config (or the `AWS_*` key variables), a web
//! identity exchanged with STS for temporary keys (refreshed before they expire), or
//! none (anonymous, unsigned requests).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rusty_s3::Credentials;

use super::config::S3Config;
use super::error::{element, transport_reason, unescape, ErrorBody};
use crate::StorageError;

/// Temporary keys are renewed when they have less than this left.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The signing keys of a client.
#[derive(Debug)]
pub(crate) enum CredentialSource {
    /// Unsigned requests (a public bucket).
    Anonymous,
    /// Keys from the config or the environment.
    Static(Arc<Credentials>),
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (Kubernetes service accounts).
    WebIdentity(Box<WebIdentity>),
}

/// A web identity token exchanged with STS `AssumeRoleWithWebIdentity` for keys.
#[derive(Debug)]
pub(crate) struct WebIdentity {
    token_file: PathBuf,
    role_arn: String,
    session_name: String,
    sts: url::Url,
    /// The current keys and when they expire.
    current: RwLock<Option<(Arc<Credentials>, SystemTime)>>,
    /// Held while asking STS, so that concurrent requests ask once.
    refreshing: tokio::sync::Mutex<()>,
}

impl CredentialSource {
    /// The keys of `cfg`; without any, a web identity from the environment, else none.
    pub(crate) fn from_config(cfg: &S3Config) -> Result<CredentialSource, StorageError> {
        CredentialSource::from_config_and(cfg, |name| std::env::var(name).ok())
    }

    /// [`CredentialSource::from_config`] with the environment read through `env`.
    fn from_config_and(
        cfg: &S3Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<CredentialSource, StorageError> {
        if let Some((key, secret, token)) = &cfg.credentials {
            let creds = match token {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            };
            return Ok(CredentialSource::Static(Arc::new(creds)));
        }
        let var = |name| env(name).filter(|v: &String| !v.is_empty());
        let (Some(token_file), Some(role_arn)) =
            (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN"))
        else {
            return Ok(CredentialSource::Anonymous);
        };
        let sts = var("AWS_ENDPOINT_URL_STS")
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", cfg.region));
        let sts =
            url::Url::parse(&sts).map_err(|e| cfg.invalid(format!("STS endpoint {sts:?}: {e}")))?;
        Ok(CredentialSource::WebIdentity(Box::new(WebIdentity {
            token_file: token_file.into(),
            role_arn,
            session_name: var("AWS_ROLE_SESSION_NAME")
                .unwrap_or_else(|| format!("registry-{}", uuid::Uuid::new_v4().simple())),
            sts,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })))
    }

    /// The keys to sign the next request with, asking STS first when they are missing
    /// or about to expire.
    pub(crate) async fn get(
        &self,
        http: &reqwest::Client,
    ) -> Result<Option<Arc<Credentials>>, StorageError> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Static(creds) => Ok(Some(creds.clone())),
            CredentialSource::WebIdentity(web) => web.get(http).await.map(Some),
        }
    }

    /// The keys held now, without asking STS (presigned URLs are built synchronously).
    pub(crate) fn cached(&self) -> Option<Arc<Credentials>> {
        match self {
            CredentialSource::Anonymous => None,
            CredentialSource::Static(creds) => Some(creds.clone()),
            CredentialSource::WebIdentity(web) => web.fresh(Duration::ZERO),
        }
    }
}

impl WebIdentity {
    /// The current keys if they last at least `margin` more.
    fn fresh(&self, margin: Duration) -> Option<Arc<Credentials>> {
        let current = self.current.read().ok()?;
        let (creds, expires) = current.as_ref()?;
        (SystemTime::now() + margin < *expires).then(|| creds.clone())
    }

    async fn get(&self, http: &reqwest::Client) -> Result<Arc<Credentials>, StorageError> {
        if let Some(creds) = self.fresh(REFRESH_BEFORE) {
            return Ok(creds);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(creds) = self.fresh(REFRESH_BEFORE) {
            return Ok(creds);
        }
        let (creds, expires) = self.assume_role(http).await?;
        let creds = Arc::new(creds);
        if let Ok(mut current) = self.current.write() {
            *current = Some((creds.clone(), expires));
        }
        Ok(creds)
    }

    /// One `AssumeRoleWithWebIdentity` call (unsigned: the token is the proof).
    async fn assume_role(
        &self,
        http: &reqwest::Client,
    ) -> Result<(Credentials, SystemTime), StorageError> {
        let failed = |reason: String| StorageError::Unavailable {
            key: self.role_arn.clone(),
            reason: format!("web identity: {reason}"),
        };
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| failed(format!("token file {}: {e}", self.token_file.display())))?;
        let mut url = self.sts.clone();
        url.query_pairs_mut()
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &self.role_arn)
            .append_pair("RoleSessionName", &self.session_name)
            .append_pair("WebIdentityToken", token.trim());
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(transport_reason(self.sts.as_str(), &e)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| failed(transport_reason(self.sts.as_str(), &e)))?;
        if !status.is_success() {
            let error = ErrorBody::parse(&body).unwrap_or_default();
            return Err(failed(format!(
                "STS answered {} (HTTP {status}): {}",
                error.code, error.message
            )));
        }
        let field = |name| {
            element(&body, name)
                .map(unescape)
                .ok_or_else(|| failed(format!("no {name} in the STS answer")))
        };
        let expiration = field("Expiration")?;
        let expires = expiration
            .parse::<jiff::Timestamp>()
            .map_err(|e| failed(format!("STS Expiration {expiration:?}: {e}")))?;
        let creds = Credentials::new_with_token(
            field("AccessKeyId")?,
            field("SecretAccessKey")?,
            field("SessionToken")?,
        );
        Ok((creds, SystemTime::from(expires)))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A stand-in for STS (which cannot run here): answers each connection with keys
    /// expiring at the next of `expirations`, and sends on the request line it got.
    async fn fake_sts(
        expirations: Vec<String>,
    ) -> (url::Url, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for (n, expiration) in expirations.into_iter().enumerate() {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while !request.ends_with(b"\r\n\r\n") {
                    let read = conn.read(&mut buf).await.unwrap();
                    assert!(read > 0, "request cut short");
                    request.extend_from_slice(&buf[..read]);
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                tx.send(request.lines().next().unwrap_or_default().to_string())
                    .unwrap();
                let body = format!(
                    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>\
                     <Credentials><AccessKeyId>AK{n}</AccessKeyId>\
                     <SecretAccessKey>SK{n}</SecretAccessKey><SessionToken>T{n}&amp;x</SessionToken>\
                     <Expiration>{expiration}</Expiration></Credentials>\
                     </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url.parse().unwrap(), rx)
    }

    fn web_identity(sts: &url::Url, token_file: &std::path::Path) -> CredentialSource {
        let cfg = S3Config {
            endpoint: "http://127.0.0.1:1".parse().unwrap(),
            region: "eu-west-1".into(),
            bucket: "b".into(),
            root: String::new(),
            credentials: None,
            path_style: true,
            skip_verify: false,
            ca_bundle: None,
            part_size: super::super::MIN_PART_SIZE,
        };
        let token_file = token_file.to_string_lossy().into_owned();
        let sts = sts.to_string();
        CredentialSource::from_config_and(&cfg, |name| match name {
            "AWS_WEB_IDENTITY_TOKEN_FILE" => Some(token_file.clone()),
            "AWS_ROLE_ARN" => Some("arn:aws:iam::1:role/r".into()),
            "AWS_ENDPOINT_URL_STS" => Some(sts.clone()),
            _ => None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn web_identity_keys_are_cached_then_refreshed_before_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "jwt.token.here\n").unwrap();
        // The first keys expire in 2 minutes (inside the refresh margin), the second in
        // a day: the second request asks again, the third does not.
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(86_400);
        let (sts, mut requests) = fake_sts(vec![soon.to_string(), later.to_string()]).await;
        let source = web_identity(&sts, &token_file);
        let http = reqwest::Client::new();

        let first = source.get(&http).await.unwrap().unwrap();
        assert_eq!((first.key(), first.secret()), ("AK0", "SK0"));
        assert_eq!(first.token(), Some("T0&x"));
        let line = requests.recv().await.unwrap();
        assert!(
            line.starts_with("GET /?Action=AssumeRoleWithWebIdentity&"),
            "{line}"
        );
        assert!(
            line.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"),
            "{line}"
        );
        assert!(line.contains("WebIdentityToken=jwt.token.here "), "{line}");

        let second = source.get(&http).await.unwrap().unwrap();
        assert_eq!(second.key(), "AK1");
        let third = source.get(&http).await.unwrap().unwrap();
        assert_eq!(third.key(), "AK1");
        assert_eq!(
            source.cached().map(|c| c.key().to_string()),
            Some("AK1".into())
        );
        requests.recv().await.unwrap();
        assert!(
            requests.try_recv().is_err(),
            "the cached keys were not used"
        );
    }

    #[tokio::test]
    async fn a_missing_token_file_is_named() {
        let (sts, _requests) = fake_sts(vec![]).await;
        let source = web_identity(&sts, std::path::Path::new("/nonexistent/token"));
        let err = source.get(&reqwest::Client::new()).await.unwrap_err();
        let StorageError::Unavailable { reason, .. } = err else {
            panic!("{err:?}");
        };
        assert!(
            reason.starts_with("web identity: token file /nonexistent/token: "),
            "{reason}"
        );
    }
}
