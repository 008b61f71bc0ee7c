//! The values passed between the authenticator, the authorizer and the
//! server: who is asking ([`Identity`]), to do what ([`Action`]), and why they
//! were turned away ([`Refusal`], with the [`Challenge`] to send).

use std::fmt;
use std::sync::Arc;

use crate::token::VerifiedToken;

/// Who is asking, as established by an [`Authenticator`](crate::Authenticator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credentials, and the authenticator accepted that (anonymous mode).
    Anonymous,
    /// A user whose credentials were verified.
    User(String),
    /// The bearer of a token that verified: its subject and what it grants
    /// (see [`token`](crate::token)). The grants are all it may do.
    Token(Arc<VerifiedToken>),
}

impl Identity {
    /// The user name (a token's subject), or `None` for
    /// [`Identity::Anonymous`] and a token without a subject.
    pub fn username(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(name) => Some(name),
            Identity::Token(token) => Some(token.subject.as_str()).filter(|s| !s.is_empty()),
        }
    }
}

impl fmt::Display for Identity {
    /// `anonymous`, the user name or the token's subject, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Anonymous => f.write_str("anonymous"),
            Identity::User(name) => f.write_str(name),
            Identity::Token(token) => f.write_str(&token.subject),
        }
    }
}

/// What a request does to a repository, the unit an
/// [`Authorizer`](crate::Authorizer) decides on.
///
/// These are the token-scope actions of the distribution spec (`pull`,
/// `push`, `delete`), so a later token authorizer can map them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read: `GET`/`HEAD` of manifests, blobs, tags, referrers, the catalog.
    Pull,
    /// Write: uploads, manifest `PUT`, cross-repository mounts.
    Push,
    /// `DELETE` of a manifest, tag or blob.
    Delete,
}

impl Action {
    /// The spec's lowercase scope name: `pull`, `push` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server renders as the `WWW-Authenticate` header of a 401.
///
/// A `Basic` challenge has a realm only. A `Bearer` challenge (Docker's
/// token protocol) also names the service the token is for, the scope the
/// request needs, and why a token that was sent is not enough:
///
/// ```text
/// Bearer realm="https://auth.example.com/token",service="registry",scope="repository:team/app:pull,push",error="insufficient_scope"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme: `"Basic"` or `"Bearer"`.
    pub scheme: &'static str,
    /// Basic: the protection space shown by clients. Bearer: the URL of the
    /// token server. From configuration.
    pub realm: String,
    /// Bearer: the `service` clients ask the token server for.
    pub service: Option<String>,
    /// Bearer: what the request needs, space-separated resource scopes.
    pub scope: Option<String>,
    /// Bearer: `invalid_token` or `insufficient_scope` (RFC 6750 section 3.1).
    pub error: Option<&'static str>,
}

impl Challenge {
    /// A `Basic` challenge for `realm`.
    pub fn basic(realm: impl Into<String>) -> Challenge {
        Challenge {
            scheme: "Basic",
            realm: realm.into(),
            service: None,
            scope: None,
            error: None,
        }
    }

    /// A `Bearer` challenge: get a token for `service` from `realm`.
    pub fn bearer(realm: impl Into<String>, service: impl Into<String>) -> Challenge {
        Challenge {
            scheme: "Bearer",
            realm: realm.into(),
            service: Some(service.into()),
            scope: None,
            error: None,
        }
    }

    /// The same challenge asking for `scope` (ignored when empty).
    pub fn with_scope(mut self, scope: String) -> Challenge {
        self.scope = Some(scope).filter(|s| !s.is_empty());
        self
    }

    /// The same challenge saying why the token sent was not enough.
    pub fn with_error(mut self, error: &'static str) -> Challenge {
        self.error = Some(error);
        self
    }

    /// The header value: `Basic realm="..."`, or
    /// `Bearer realm="...",service="...",scope="...",error="..."` with the
    /// parameters that are set, in that order and without spaces, as CNCF
    /// Distribution writes them.
    ///
    /// Values are written as RFC 9110 quoted-strings: `"` and `\` are
    /// backslash-escaped, and control characters other than tab (which a
    /// quoted-string cannot hold, and which would let configuration inject
    /// header lines) are dropped.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(self.scheme.len() + self.realm.len() + 10);
        out.push_str(self.scheme);
        out.push(' ');
        quoted(&mut out, "realm", &self.realm);
        let params = [
            ("service", self.service.as_deref()),
            ("scope", self.scope.as_deref()),
            ("error", self.error),
        ];
        for (name, value) in params {
            if let Some(value) = value {
                out.push(',');
                quoted(&mut out, name, value);
            }
        }
        out
    }
}

/// Appends `name="value"` with `value` as a quoted-string.
fn quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Why authentication failed. Data, not an error page: the server renders
/// every variant as `401 UNAUTHORIZED` with the challenge's
/// `WWW-Authenticate` header, so clients such as `docker login` know to
/// (re)send credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No usable `Authorization` header, and this authenticator requires one.
    #[error("authentication required")]
    MissingCredentials(Challenge),
    /// Credentials were sent but did not verify (unknown user or wrong
    /// password; deliberately not told apart).
    #[error("invalid credentials")]
    InvalidCredentials(Challenge),
    /// A bearer token was sent but did not verify; the challenge says
    /// `error="invalid_token"`.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// The challenge to send.
        challenge: Challenge,
        /// Why, for the log (clients only see `invalid_token`); boxed to
        /// keep refusals small.
        reason: Box<crate::token::TokenError>,
    },
}

impl Refusal {
    /// The challenge to send with the 401.
    pub fn challenge(&self) -> &Challenge {
        match self {
            Refusal::MissingCredentials(c)
            | Refusal::InvalidCredentials(c)
            | Refusal::InvalidToken { challenge: c, .. } => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_username() {
        assert_eq!(Identity::Anonymous.username(), None);
        assert_eq!(Identity::User("alice".into()).username(), Some("alice"));
        assert_eq!(Identity::Anonymous.to_string(), "anonymous");
        assert_eq!(Identity::User("alice".into()).to_string(), "alice");
    }

    #[test]
    fn action_names() {
        assert_eq!(Action::Pull.as_str(), "pull");
        assert_eq!(Action::Push.to_string(), "push");
        assert_eq!(Action::Delete.as_str(), "delete");
    }

    #[test]
    fn challenge_header_value() {
        assert_eq!(
            Challenge::basic("registry").header_value(),
            r#"Basic realm="registry""#
        );
        assert_eq!(Challenge::basic("").header_value(), r#"Basic realm="""#);
    }

    #[test]
    fn challenge_escapes_quote_and_backslash() {
        assert_eq!(
            Challenge::basic(r#"my "reg" \ here"#).header_value(),
            r#"Basic realm="my \"reg\" \\ here""#
        );
    }

    #[test]
    fn challenge_drops_control_characters() {
        assert_eq!(
            Challenge::basic("a\r\nSet-Cookie: x\0\tb").header_value(),
            "Basic realm=\"aSet-Cookie: x\tb\""
        );
    }

    #[test]
    fn bearer_challenge_in_distributions_form() {
        let c = Challenge::bearer("https://auth.example.com/token", "registry");
        assert_eq!(
            c.header_value(),
            r#"Bearer realm="https://auth.example.com/token",service="registry""#
        );
        let c = c
            .with_scope("repository:team/app:pull,push".into())
            .with_error("insufficient_scope");
        assert_eq!(
            c.header_value(),
            r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:team/app:pull,push",error="insufficient_scope""#
        );
        assert_eq!(
            Challenge::bearer("r", "s\"x\r\n")
                .with_scope(String::new())
                .header_value(),
            r#"Bearer realm="r",service="s\"x""#
        );
    }

    #[test]
    fn refusal_challenge() {
        let c = Challenge::basic("r");
        assert_eq!(Refusal::MissingCredentials(c.clone()).challenge(), &c);
        assert_eq!(Refusal::InvalidCredentials(c.clone()).challenge(), &c);
        assert_eq!(
            Refusal::InvalidCredentials(c).to_string(),
            "invalid credentials"
        );
    }
}
