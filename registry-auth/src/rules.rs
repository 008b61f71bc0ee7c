//! Per-repository access rules: who may pull, push or delete where.
//!
//! Rules only grant; a request is allowed when at least one rule grants its
//! action on its repository to the caller, and denied otherwise. The common
//! case is two rules: a push account for CI on `*`, and a pull-only account
//! (or group) on `*` for the cluster's pull secrets, so a secret leaked from
//! a namespace cannot overwrite images.
//!
//! ```yaml
//! groups:
//!   cluster: [node-puller, staging-puller]
//! access:
//!   - repository: "*"
//!     users: [ci]
//!     actions: [pull, push, delete]
//!   - repository: "*"
//!     groups: [cluster]
//!     actions: [pull]
//!   - repository: "public/*"
//!     anonymous: true
//!     actions: [pull]
//! ```
//!
//! Registry-wide routes (`GET /v2/`, the catalog) carry no repository: they
//! are allowed when some rule grants the caller that action anywhere; the
//! catalog is then filtered repository by repository.

use std::collections::{BTreeMap, BTreeSet};

use registry_core::RepoName;

use crate::scope::{Action, Identity};
use crate::traits::Authorizer;

/// A repository pattern: a name in which `*` stands for any run of
/// characters, slashes included (`team-a/*`, `*/cache`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

/// Why a rule set cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The pattern has characters no repository name can have.
    #[error("rule {rule}: repository pattern {pattern:?} can never match a repository name")]
    Pattern {
        /// 0-based index of the rule.
        rule: usize,
        /// The pattern.
        pattern: String,
    },
    /// A rule names a group that is not defined.
    #[error("rule {rule}: group {group:?} is not defined under groups")]
    UnknownGroup {
        /// 0-based index of the rule.
        rule: usize,
        /// The group.
        group: String,
    },
    /// A rule grants to nobody.
    #[error("rule {rule}: names no users, groups or anonymous: it grants nothing")]
    Empty {
        /// 0-based index of the rule.
        rule: usize,
    },
}

impl Pattern {
    /// Parses a pattern; only name characters, `/` and `*` are allowed.
    pub fn parse(s: &str) -> Option<Pattern> {
        let ok = !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'/' | b'*')
            });
        ok.then(|| Pattern(s.to_owned()))
    }

    /// Whether `name` matches: the literal parts in order, `*` spanning anything.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// One grant: these callers may do these actions in matching repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which repositories.
    pub repository: Pattern,
    /// Users by name; `*` is any authenticated user.
    pub users: BTreeSet<String>,
    /// Groups by name.
    pub groups: BTreeSet<String>,
    /// Whether callers without credentials are included.
    pub anonymous: bool,
    /// What they may do.
    pub actions: BTreeSet<Action>,
}

/// A set of rules with the groups they refer to.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: Vec<Rule>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl AccessRules {
    /// Checks that every rule grants to someone and every group exists.
    pub fn new(
        rules: Vec<Rule>,
        groups: BTreeMap<String, BTreeSet<String>>,
    ) -> Result<AccessRules, RuleError> {
        for (i, rule) in rules.iter().enumerate() {
            if rule.users.is_empty() && rule.groups.is_empty() && !rule.anonymous {
                return Err(RuleError::Empty { rule: i });
            }
            if let Some(group) = rule.groups.iter().find(|g| !groups.contains_key(*g)) {
                return Err(RuleError::UnknownGroup {
                    rule: i,
                    group: group.clone(),
                });
            }
        }
        Ok(AccessRules { rules, groups })
    }

    /// Whether any rule lets anonymous callers in at all.
    pub fn allows_anonymous(&self) -> bool {
        self.rules.iter().any(|r| r.anonymous)
    }

    /// Whether the rule applies to the caller. An anonymous rule applies to
    /// everyone: logging in never takes access away. Token holders are not
    /// covered: their token's grants are their rules.
    fn covers(&self, rule: &Rule, identity: &Identity) -> bool {
        match identity {
            Identity::Anonymous => rule.anonymous,
            Identity::Token(_) => false,
            Identity::User(user) => {
                rule.anonymous
                    || rule.users.contains(user)
                    || rule.users.contains("*")
                    || rule.groups.iter().any(|g| {
                        self.groups
                            .get(g)
                            .is_some_and(|members| members.contains(user))
                    })
            }
        }
    }
}

impl Authorizer for AccessRules {
    fn authorize(
        &self,
        identity: &Identity,
        repository: Option<&RepoName>,
        action: Action,
    ) -> bool {
        self.rules.iter().any(|rule| {
            rule.actions.contains(&action)
                && self.covers(rule, identity)
                && repository.is_none_or(|r| rule.repository.matches(r.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn rule(
        pattern: &str,
        users: &[&str],
        groups: &[&str],
        anonymous: bool,
        actions: &[Action],
    ) -> Rule {
        Rule {
            repository: Pattern::parse(pattern).unwrap(),
            users: set(users),
            groups: set(groups),
            anonymous,
            actions: actions.iter().copied().collect(),
        }
    }

    #[test]
    fn patterns() {
        let p = |s| Pattern::parse(s).unwrap();
        assert!(p("*").matches("a/b/c"));
        assert!(p("team-a/*").matches("team-a/app"));
        assert!(p("team-a/*").matches("team-a/x/y"));
        assert!(!p("team-a/*").matches("team-a"));
        assert!(!p("team-a/*").matches("team-ab/x"));
        assert!(p("*/cache").matches("x/y/cache"));
        assert!(!p("*/cache").matches("cache"));
        assert!(
            p("a*b*c").matches("abc")
                && p("a*b*c").matches("a/xb/yc")
                && !p("a*b*c").matches("acb")
        );
        assert!(p("exact").matches("exact") && !p("exact").matches("exact/x"));
        assert!(Pattern::parse("Team/*").is_none());
        assert!(Pattern::parse("").is_none());
        assert!(Pattern::parse("a b").is_none());
    }

    fn policy() -> AccessRules {
        use Action::*;
        let groups = BTreeMap::from([("cluster".to_string(), set(&["node"]))]);
        AccessRules::new(
            vec![
                rule("*", &["ci"], &[], false, &[Pull, Push, Delete]),
                rule("*", &[], &["cluster"], false, &[Pull]),
                rule("team-a/*", &["alice"], &[], false, &[Pull, Push]),
                rule("public/*", &[], &[], true, &[Pull]),
            ],
            groups,
        )
        .unwrap()
    }

    #[test]
    fn grants() {
        use Action::*;
        let p = policy();
        let user = |u: &str| Identity::User(u.into());
        let r = |s: &str| s.parse::<RepoName>().unwrap();
        assert!(p.authorize(&user("ci"), Some(&r("any/thing")), Delete));
        assert!(p.authorize(&user("node"), Some(&r("team-a/app")), Pull));
        assert!(!p.authorize(&user("node"), Some(&r("team-a/app")), Push));
        assert!(p.authorize(&user("alice"), Some(&r("team-a/app")), Push));
        assert!(!p.authorize(&user("alice"), Some(&r("team-b/app")), Pull));
        assert!(!p.authorize(&user("alice"), Some(&r("team-a/app")), Delete));
        assert!(p.authorize(&Identity::Anonymous, Some(&r("public/base")), Pull));
        assert!(!p.authorize(&Identity::Anonymous, Some(&r("public/base")), Push));
        assert!(!p.authorize(&Identity::Anonymous, Some(&r("team-a/app")), Pull));
        assert!(p.authorize(&user("mallory"), Some(&r("public/base")), Pull));
        assert!(!p.authorize(&user("mallory"), Some(&r("team-a/app")), Pull));
        // Registry-wide: allowed when granted somewhere.
        assert!(p.authorize(&user("alice"), None, Pull));
        assert!(p.authorize(&Identity::Anonymous, None, Pull));
        assert!(p.allows_anonymous());
    }

    #[test]
    fn invalid_rule_sets() {
        let groups = BTreeMap::new();
        let err = AccessRules::new(
            vec![rule("*", &[], &["ghosts"], false, &[Action::Pull])],
            groups.clone(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            RuleError::UnknownGroup {
                rule: 0,
                group: "ghosts".into()
            }
        );
        let err = AccessRules::new(vec![rule("*", &[], &[], false, &[Action::Pull])], groups)
            .unwrap_err();
        assert_eq!(err, RuleError::Empty { rule: 0 });
    }

    #[test]
    fn star_user_is_any_authenticated_user() {
        let p = AccessRules::new(
            vec![rule("*", &["*"], &[], false, &[Action::Pull])],
            BTreeMap::new(),
        )
        .unwrap();
        assert!(p.authorize(&Identity::User("anyone".into()), None, Action::Pull));
        assert!(!p.authorize(&Identity::Anonymous, None, Action::Pull));
    }
}
