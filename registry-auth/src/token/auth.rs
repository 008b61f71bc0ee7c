//! The crate's traits over a [`TokenVerifier`]: [`TokenAuthenticator`]
//! turns a bearer token into an [`Identity::Token`], [`TokenAuthorizer`]
//! answers from that token's grants alone.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use registry_core::RepoName;

use super::verify::TokenVerifier;
use crate::credentials::Credentials;
use crate::scope::{Action, Challenge, Identity, Refusal};
use crate::traits::{Authenticator, Authorizer};

/// Accepts bearer tokens that [`TokenVerifier`] accepts, now.
///
/// `Authorization: Basic` is not its business (the token server takes
/// passwords, the registry never sees them): a request with one goes on as
/// anonymous, and authorization answers it with the `Bearer` challenge that
/// sends the client to the token server.
#[derive(Debug)]
pub struct TokenAuthenticator {
    verifier: TokenVerifier,
    realm: String,
}

impl TokenAuthenticator {
    /// Sends clients to `realm` (the token server's URL) for tokens.
    pub fn new(verifier: TokenVerifier, realm: impl Into<String>) -> TokenAuthenticator {
        TokenAuthenticator {
            verifier,
            realm: realm.into(),
        }
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch).
    pub fn authenticate_token_at(&self, token: &str, now: u64) -> Result<Identity, Refusal> {
        self.verifier
            .verify(token, now)
            .map(|t| Identity::Token(Arc::new(t)))
            .map_err(|reason| Refusal::InvalidToken {
                challenge: self.challenge_value().with_error("invalid_token"),
                reason: Box::new(reason),
            })
    }

    fn challenge_value(&self) -> Challenge {
        Challenge::bearer(&self.realm, self.verifier.service())
    }
}

impl Authenticator for TokenAuthenticator {
    fn authenticate(&self, _credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        Ok(Identity::Anonymous)
    }

    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        Some(self.authenticate(credentials))
    }

    /// A signature check: microseconds, fine on an async worker.
    fn authenticate_bearer(&self, token: &str) -> Option<Result<Identity, Refusal>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(self.authenticate_token_at(token, now))
    }

    fn challenge(&self) -> Option<Challenge> {
        Some(self.challenge_value())
    }
}

/// Allows what the caller's token grants and nothing else; callers
/// without a token get nothing.
///
/// A registry-wide question (no repository) is the catalog's:
/// `registry:catalog:*`. A push needs `pull` and `push` (see
/// [`Grants::allows_repository`](super::Grants::allows_repository)).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenAuthorizer;

impl Authorizer for TokenAuthorizer {
    fn authorize(
        &self,
        identity: &Identity,
        repository: Option<&RepoName>,
        action: Action,
    ) -> bool {
        let Identity::Token(token) = identity else {
            return false;
        };
        match repository {
            Some(repo) => token.grants.allows_repository(repo, action),
            None => token.grants.allows_catalog(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::token::test_issuer::{claims, Issuer, KeyKind, KeyMode};
    use crate::token::TrustBundle;

    const NOW: u64 = 1_800_000_000;

    fn authenticator(issuer: &Issuer) -> TokenAuthenticator {
        let bundle = TrustBundle::from_pem(issuer.root_pem().as_bytes()).unwrap();
        TokenAuthenticator::new(
            TokenVerifier::new("iss", "svc", bundle),
            "http://auth/token",
        )
    }

    #[test]
    fn a_good_token_grants_what_it_says_and_no_more() {
        let issuer = Issuer::new(KeyKind::Es256);
        let access = json!([
            {"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "team/ro", "actions": ["pull"]},
        ]);
        let token = issuer.token(KeyMode::X5c, &claims("iss", "svc", "alice", NOW, access));
        let identity = authenticator(&issuer)
            .authenticate_token_at(&token, NOW)
            .unwrap();
        assert_eq!(identity.username(), Some("alice"));
        let repo = |s: &str| s.parse::<RepoName>().unwrap();
        let z = TokenAuthorizer;
        assert!(z.authorize(&identity, Some(&repo("team/app")), Action::Push));
        assert!(!z.authorize(&identity, Some(&repo("team/app")), Action::Delete));
        assert!(z.authorize(&identity, Some(&repo("team/ro")), Action::Pull));
        assert!(!z.authorize(&identity, Some(&repo("team/ro")), Action::Push));
        assert!(
            !z.authorize(&identity, None, Action::Pull),
            "no catalog grant"
        );
        for identity in [Identity::Anonymous, Identity::User("alice".into())] {
            assert!(!z.authorize(&identity, Some(&repo("team/app")), Action::Pull));
        }
    }

    #[test]
    fn refusals_carry_the_bearer_challenge_and_the_reason() {
        let issuer = Issuer::new(KeyKind::Es256);
        let auth = authenticator(&issuer);
        let challenge = auth.challenge().unwrap();
        assert_eq!(
            challenge.header_value(),
            r#"Bearer realm="http://auth/token",service="svc""#
        );
        let Err(Refusal::InvalidToken { challenge, reason }) =
            auth.authenticate_token_at("not.a.token", NOW)
        else {
            panic!("accepted garbage");
        };
        assert_eq!(challenge.error, Some("invalid_token"));
        assert!(matches!(*reason, crate::TokenError::Malformed(_)));
        // Basic credentials are not checked: the caller stays anonymous.
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(
            auth.authenticate_cached(Some(&creds)),
            Some(Ok(Identity::Anonymous))
        );
    }
}
