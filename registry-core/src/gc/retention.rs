//! Retention policies: which tags a repository keeps, and how long its
//! untagged manifests live.
//!
//! ```yaml
//! retention:                # first policy whose globs match a repository applies to it
//!   - repositories: ["ci/**", "tmp/*"]
//!     deleteuntagged: 168h  # untagged manifests older than this go (absent: kept)
//!     keeptags:             # a tag is kept when any entry keeps it; absent: every tag kept
//!       - patterns: ["v*", "latest"]
//!       - mostrecentlypushed: 20
//!       - patterns: ["rc-*"]           # both: the 5 most recent rc-* tags
//!         mostrecentlypushed: 5
//!       - pushedwithin: 720h
//! ```
//!
//! [`PolicyConfig`] is that shape as written; it is generic over the
//! duration type so the server deserializes `168h` with its own duration
//! parser and hands them, in the pass's time unit, to [`RetentionPolicies::new`], which
//! validates everything and names the offending policy and field.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use serde::Deserialize;

use super::glob::{GlobError, RepoGlob, TagGlob};
use super::plan::TagInfo;

/// One entry of `retention` as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig<D = u64> {
    /// Repository globs; the policy applies to a repository any of them matches.
    pub repositories: Vec<String>,
    /// Untagged manifests older than this are deleted; absent: kept.
    pub deleteuntagged: Option<D>,
    /// A tag is kept when any entry keeps it; absent: every tag is kept.
    pub keeptags: Option<Vec<KeepTagsConfig<D>>>,
}

/// One entry of `keeptags`: the tags meeting every condition it names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepTagsConfig<D = u64> {
    /// Tag globs; a tag matching any of them qualifies.
    pub patterns: Option<Vec<String>>,
    /// Of the qualifying tags, keep this many, most recently pushed first.
    pub mostrecentlypushed: Option<usize>,
    /// Only tags pushed at most this long ago qualify.
    pub pushedwithin: Option<D>,
}

/// A configuration mistake, with where it is: `retention[policy].field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retention[{policy}].{field}: {kind}")]
pub struct PolicyError {
    /// Position of the policy in the `retention` list, from 0.
    pub policy: usize,
    /// The field inside it, e.g. `keeptags[2].patterns[0]`.
    pub field: String,
    /// What is wrong with it.
    pub kind: PolicyErrorKind,
}

/// What is wrong with a policy field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// A repository or tag glob that does not parse.
    #[error("invalid glob {pattern:?}: {error}")]
    Glob {
        /// The pattern as written.
        pattern: String,
        /// Why it does not parse.
        error: GlobError,
    },
    /// `mostrecentlypushed: 0` would keep nothing, which is surely a mistake.
    #[error("must be at least 1")]
    ZeroCount,
    /// An empty list where at least one entry is needed: no `repositories`
    /// matches nothing, and an empty `keeptags` would delete every tag (omit
    /// `keeptags` to keep every tag).
    #[error("must not be empty")]
    EmptyList,
    /// A `keeptags` entry with no condition at all.
    #[error("names none of patterns, mostrecentlypushed, pushedwithin")]
    NoCondition,
}

/// One validated `keeptags` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeepRule {
    patterns: Option<Vec<TagGlob>>,
    most_recent: Option<NonZeroUsize>,
    pushed_within: Option<u64>,
}

/// One validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    index: usize,
    repositories: Vec<RepoGlob>,
    delete_untagged: Option<u64>,
    keep_tags: Option<Vec<KeepRule>>,
}

/// The validated `retention` list, in configuration order. The default is
/// the empty list: every repository keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicies {
    policies: Vec<Policy>,
}

/// Whether something pushed at `pushed` is at most `window` time units old at
/// `now`. A push time in the future (clock skew) counts as within.
pub(crate) fn within(pushed: u64, now: u64, window: u64) -> bool {
    now.saturating_sub(pushed) <= window
}

impl RetentionPolicies {
    /// Validates the configured policies; `units` reads a duration in the
    /// pass's time unit (the server gives milliseconds, the unit of its walk).
    pub fn new<D>(
        configs: &[PolicyConfig<D>],
        units: impl Fn(&D) -> u64,
    ) -> Result<RetentionPolicies, PolicyError> {
        let policies = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Policy::new(index, config, &units))
            .collect::<Result<_, _>>()?;
        Ok(RetentionPolicies { policies })
    }

    /// How many policies there are.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there is no policy: every repository keeps everything.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy for a repository: the first one whose globs match it.
    pub fn for_repository(&self, repository: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.repositories.iter().any(|g| g.matches(repository)))
    }
}

fn globs<G>(
    policy: usize,
    field: &str,
    patterns: &[String],
    parse: impl Fn(&str) -> Result<G, GlobError>,
) -> Result<Vec<G>, PolicyError> {
    if patterns.is_empty() {
        return Err(PolicyError {
            policy,
            field: field.to_owned(),
            kind: PolicyErrorKind::EmptyList,
        });
    }
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            parse(p).map_err(|error| PolicyError {
                policy,
                field: format!("{field}[{i}]"),
                kind: PolicyErrorKind::Glob {
                    pattern: p.clone(),
                    error,
                },
            })
        })
        .collect()
}

impl KeepRule {
    fn new<D>(
        policy: usize,
        field: &str,
        config: &KeepTagsConfig<D>,
        units: &impl Fn(&D) -> u64,
    ) -> Result<KeepRule, PolicyError> {
        let error = |suffix: &str, kind| PolicyError {
            policy,
            field: format!("{field}{suffix}"),
            kind,
        };
        if config.patterns.is_none()
            && config.mostrecentlypushed.is_none()
            && config.pushedwithin.is_none()
        {
            return Err(error("", PolicyErrorKind::NoCondition));
        }
        let patterns = config
            .patterns
            .as_deref()
            .map(|p| globs(policy, &format!("{field}.patterns"), p, TagGlob::parse))
            .transpose()?;
        let most_recent = config
            .mostrecentlypushed
            .map(|n| {
                NonZeroUsize::new(n)
                    .ok_or_else(|| error(".mostrecentlypushed", PolicyErrorKind::ZeroCount))
            })
            .transpose()?;
        Ok(KeepRule {
            patterns,
            most_recent,
            pushed_within: config.pushedwithin.as_ref().map(units),
        })
    }

    /// The tags this entry keeps: those matching a pattern and pushed
    /// within the window, then the N most recent of them. Equal push times
    /// are ordered by tag name so the choice never depends on map order.
    fn keep<'a>(&self, tags: &'a HashMap<String, TagInfo>, now: u64, kept: &mut HashSet<&'a str>) {
        let mut candidates: Vec<(&'a str, u64)> = tags
            .iter()
            .filter(|(name, _)| {
                self.patterns
                    .as_ref()
                    .is_none_or(|ps| ps.iter().any(|p| p.matches(name)))
            })
            .filter(|(_, t)| self.pushed_within.is_none_or(|w| within(t.pushed, now, w)))
            .map(|(name, t)| (name.as_str(), t.pushed))
            .collect();
        if let Some(n) = self.most_recent {
            candidates.sort_unstable_by_key(|&(name, pushed)| (Reverse(pushed), name));
            candidates.truncate(n.get());
        }
        kept.extend(candidates.into_iter().map(|(name, _)| name));
    }
}

impl Policy {
    fn new<D>(
        index: usize,
        config: &PolicyConfig<D>,
        units: &impl Fn(&D) -> u64,
    ) -> Result<Policy, PolicyError> {
        let repositories = globs(index, "repositories", &config.repositories, RepoGlob::parse)?;
        let keep_tags = match &config.keeptags {
            None => None,
            Some(rules) if rules.is_empty() => {
                return Err(PolicyError {
                    policy: index,
                    field: "keeptags".into(),
                    kind: PolicyErrorKind::EmptyList,
                })
            }
            Some(rules) => Some(
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| KeepRule::new(index, &format!("keeptags[{i}]"), r, units))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Policy {
            index,
            repositories,
            delete_untagged: config.deleteuntagged.as_ref().map(units),
            keep_tags,
        })
    }

    /// Position of this policy in the `retention` list, for logs.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A policy with neither `keeptags` nor `deleteuntagged` protects its
    /// repositories: no tag and no manifest in them is ever deleted, even
    /// when the pass deletes untagged manifests everywhere else.
    pub fn protects_everything(&self) -> bool {
        self.keep_tags.is_none() && self.delete_untagged.is_none()
    }

    /// Age (in the pass's time unit) past which an untagged manifest may go, if any.
    pub(crate) fn delete_untagged(&self) -> Option<u64> {
        self.delete_untagged
    }

    /// The tags `keeptags` keeps; `None` when every tag is kept.
    pub(crate) fn kept_tags<'a>(
        &self,
        tags: &'a HashMap<String, TagInfo>,
        now: u64,
    ) -> Option<HashSet<&'a str>> {
        let rules = self.keep_tags.as_ref()?;
        let mut kept = HashSet::new();
        for rule in rules {
            rule.keep(tags, now, &mut kept);
        }
        Some(kept)
    }
}
