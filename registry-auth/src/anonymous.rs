//! The trivial policies: no authentication at all ([`Anonymous`]), allow
//! everything ([`AllowAll`]), allow any logged-in user ([`AuthenticatedOnly`]).
//!
//! Anonymous mode is a choice the operator makes explicitly (for a local or
//! test registry), never a fallback when no htpasswd file is configured.

use registry_core::RepoName;

use crate::credentials::Credentials;
use crate::scope::{Action, Challenge, Identity, Refusal};
use crate::traits::{Authenticator, Authorizer};

/// Authenticator that lets everyone in as [`Identity::Anonymous`].
///
/// Credentials, if sent, are ignored rather than checked: `docker login`
/// against a local registry should not fail just because it sends some.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

impl Authenticator for Anonymous {
    fn authenticate(&self, _credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        Ok(Identity::Anonymous)
    }

    /// Never slow: always answers.
    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        Some(self.authenticate(credentials))
    }

    fn challenge(&self) -> Option<Challenge> {
        None
    }
}

/// Authorizer that allows every action on every repository to everyone.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(
        &self,
        _identity: &Identity,
        _repository: Option<&RepoName>,
        _action: Action,
    ) -> bool {
        true
    }
}

/// Authorizer that allows every action to any [`Identity::User`] and nothing
/// to [`Identity::Anonymous`].
///
/// Paired with an authenticator that refuses missing credentials this never
/// sees an anonymous identity; it is the safety net if it is ever paired with
/// one that does not.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuthenticatedOnly;

impl Authorizer for AuthenticatedOnly {
    fn authorize(
        &self,
        identity: &Identity,
        _repository: Option<&RepoName>,
        _action: Action,
    ) -> bool {
        matches!(identity, Identity::User(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    fn repo() -> RepoName {
        "team/app".parse().unwrap()
    }

    #[test]
    fn anonymous_accepts_with_or_without_credentials() {
        let creds = Credentials {
            username: "alice".into(),
            password: "wrong".into(),
        };
        assert_eq!(Anonymous.authenticate(None), Ok(Identity::Anonymous));
        assert_eq!(
            Anonymous.authenticate(Some(&creds)),
            Ok(Identity::Anonymous)
        );
        assert_eq!(Anonymous.challenge(), None);
    }

    #[test]
    fn allow_all_allows_everything() {
        let repo = repo();
        for identity in [Identity::Anonymous, Identity::User("alice".into())] {
            for action in ACTIONS {
                assert!(AllowAll.authorize(&identity, Some(&repo), action));
                assert!(AllowAll.authorize(&identity, None, action));
            }
        }
    }

    #[test]
    fn authenticated_only_denies_anonymous() {
        let repo = repo();
        let alice = Identity::User("alice".into());
        for action in ACTIONS {
            assert!(AuthenticatedOnly.authorize(&alice, Some(&repo), action));
            assert!(AuthenticatedOnly.authorize(&alice, None, action));
            assert!(!AuthenticatedOnly.authorize(&Identity::Anonymous, Some(&repo), action));
            assert!(!AuthenticatedOnly.authorize(&Identity::Anonymous, None, action));
        }
    }

    #[tokio::test]
    async fn usable_as_trait_objects_on_a_blocking_pool() {
        use std::sync::Arc;
        let authn: Arc<dyn Authenticator> = Arc::new(Anonymous);
        let authz: Arc<dyn Authorizer> = Arc::new(AuthenticatedOnly);
        let identity = tokio::task::spawn_blocking(move || authn.authenticate(None))
            .await
            .unwrap()
            .unwrap();
        assert!(!authz.authorize(&identity, None, Action::Pull));
    }
}
