//! The claim set of a registry token and what its `access` claim grants.
//!
//! ```json
//! { "iss": "auth.example.com", "sub": "alice", "aud": "registry",
//!   "exp": 1700000300, "nbf": 1700000000, "iat": 1700000000,
//!   "access": [ { "type": "repository", "name": "team/app", "actions": ["pull", "push"] },
//!               { "type": "registry", "name": "catalog", "actions": ["*"] } ] }
//! ```
//!
//! `aud` is a string or an array of strings (RFC 7519 section 4.1.3). A
//! missing `exp` counts as 0 (long expired) and a missing `nbf` as 0, as in
//! Distribution. An action `*` grants every action on its resource.

use std::collections::{BTreeMap, BTreeSet};

use registry_core::RepoName;
use serde::Deserialize;

use crate::scope::Action;

/// `aud`: one audience or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::Many(Vec::new())
    }
}

impl Audience {
    pub(crate) fn contains(&self, service: &str) -> bool {
        match self {
            Audience::One(a) => a == service,
            Audience::Many(all) => all.iter().any(|a| a == service),
        }
    }
}

/// One entry of the `access` claim.
#[derive(Debug, Clone, Deserialize)]
struct ResourceActions {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

/// The claims the registry reads; others are ignored.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub nbf: i64,
    #[serde(default)]
    access: Vec<ResourceActions>,
}

impl Claims {
    /// The grants of the `access` claim.
    pub(crate) fn grants(&self) -> Grants {
        let mut grants = Grants::default();
        for entry in &self.access {
            grants
                .0
                .entry((entry.kind.clone(), entry.name.clone()))
                .or_default()
                .extend(entry.actions.iter().cloned());
        }
        grants
    }
}

/// What a token allows: actions per `(type, name)` resource, exactly as
/// issued (names are compared as strings, no patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeMap<(String, String), BTreeSet<String>>);

impl Grants {
    /// Whether `action` (or `*`) is granted on the resource.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.0
            .get(&(kind.to_owned(), name.to_owned()))
            .is_some_and(|actions| actions.contains("*") || actions.contains(action))
    }

    /// Whether `action` is granted on repository `repo`. A push needs `pull`
    /// too, as Distribution asks of every `POST`, `PUT` and `PATCH`.
    pub fn allows_repository(&self, repo: &RepoName, action: Action) -> bool {
        let has = |a: Action| self.allows("repository", repo.as_str(), a.as_str());
        match action {
            Action::Push => has(Action::Pull) && has(Action::Push),
            other => has(other),
        }
    }

    /// Whether the catalog may be listed: `registry:catalog:*`.
    pub fn allows_catalog(&self) -> bool {
        self.allows("registry", "catalog", "*")
    }
}

/// A token that verified: who it was issued to and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`, the user the token server authenticated (may be empty for an
    /// anonymous token).
    pub subject: String,
    /// The `access` claim.
    pub grants: Grants,
    /// `exp`, seconds since the Unix epoch.
    pub expires: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn audience_string_or_array() {
        assert!(claims(r#"{"aud":"registry"}"#).aud.contains("registry"));
        assert!(claims(r#"{"aud":["x","registry"]}"#)
            .aud
            .contains("registry"));
        assert!(!claims(r#"{"aud":["x"]}"#).aud.contains("registry"));
        assert!(!claims("{}").aud.contains("registry"));
        assert!(serde_json::from_str::<Claims>(r#"{"aud":7}"#).is_err());
    }

    #[test]
    fn grants_per_repository() {
        let c = claims(
            r#"{"access":[
                {"type":"repository","name":"team/app","actions":["pull"]},
                {"type":"repository","name":"team/app","actions":["push"]},
                {"type":"repository","name":"team/ro","actions":["pull"]},
                {"type":"repository","name":"team/all","actions":["*"]},
                {"type":"registry","name":"catalog","actions":["*"]}
            ]}"#,
        );
        let g = c.grants();
        let repo = |s: &str| s.parse::<RepoName>().unwrap();
        assert!(g.allows_repository(&repo("team/app"), Action::Push));
        assert!(!g.allows_repository(&repo("team/app"), Action::Delete));
        assert!(g.allows_repository(&repo("team/ro"), Action::Pull));
        assert!(!g.allows_repository(&repo("team/ro"), Action::Push));
        for action in [Action::Pull, Action::Push, Action::Delete] {
            assert!(g.allows_repository(&repo("team/all"), action));
            assert!(!g.allows_repository(&repo("team/other"), action));
        }
        assert!(g.allows_catalog());
        assert!(!Grants::default().allows_catalog());
    }

    #[test]
    fn push_alone_is_not_enough() {
        let g =
            claims(r#"{"access":[{"type":"repository","name":"a","actions":["push"]}]}"#).grants();
        assert!(!g.allows_repository(&"a".parse().unwrap(), Action::Push));
    }
}
