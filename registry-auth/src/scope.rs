//! The values passed between the authenticator, the authorizer and the
//! server: who is asking ([`Identity`]), to do what ([`Action`]), and why they
//! were turned away ([`Refusal`], with the [`Challenge`] to send).

use std::fmt;

/// Who is asking, as established by an [`Authenticator`](crate::Authenticator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credentials, and the authenticator accepted that (anonymous mode).
    Anonymous,
    /// A user whose credentials were verified.
    User(String),
}

impl Identity {
    /// The user name, or `None` for [`Identity::Anonymous`].
    pub fn username(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(name) => Some(name),
        }
    }
}

impl fmt::Display for Identity {
    /// `anonymous` or the user name, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Anonymous => f.write_str("anonymous"),
            Identity::User(name) => f.write_str(name),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme; `"Basic"` for every authenticator in this crate.
    pub scheme: &'static str,
    /// The protection space shown by clients; free text from configuration.
    pub realm: String,
}

impl Challenge {
    /// A `Basic` challenge for `realm`.
    pub fn basic(realm: impl Into<String>) -> Challenge {
        Challenge {
            scheme: "Basic",
            realm: realm.into(),
        }
    }

    /// The header value, `Basic realm="..."`.
    ///
    /// The realm is written as an RFC 9110 quoted-string: `"` and `\` are
    /// backslash-escaped, and control characters other than tab (which a
    /// quoted-string cannot hold, and which would let configuration inject
    /// header lines) are dropped.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(self.scheme.len() + self.realm.len() + 10);
        out.push_str(self.scheme);
        out.push_str(" realm=\"");
        for c in self.realm.chars() {
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
        out
    }
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
}

impl Refusal {
    /// The challenge to send with the 401.
    pub fn challenge(&self) -> &Challenge {
        match self {
            Refusal::MissingCredentials(c) | Refusal::InvalidCredentials(c) => c,
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
