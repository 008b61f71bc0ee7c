//! The two glob dialects of retention policies.
//!
//! ```text
//! repository glob ::= segment ("/" segment)*
//! segment         ::= "**"                    any number of components, zero included
//!                   | ([a-z0-9._-] | "*" | "?")+ "*": any run inside one component, "?": one character
//! tag glob        ::= ([A-Za-z0-9._-] | "*" | "?")+
//! ```
//!
//! So `ci/**` matches `ci`, `ci/app` and `ci/a/b`, `tmp/*` matches `tmp/x`
//! but neither `tmp` nor `tmp/x/y`, and `v*` matches every tag starting
//! with `v`. There are no character classes or escapes: names and tags
//! cannot hold `*`, `?` or `[`, so nothing needs escaping, and a pattern
//! with any other character could never match and is refused instead.

use std::fmt;

/// Why a pattern is not a glob of its dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The pattern is the empty string.
    #[error("empty pattern")]
    Empty,
    /// A repository glob with `//`, or a leading or trailing `/`.
    #[error("empty path component")]
    EmptyComponent,
    /// `**` next to other characters inside one component (`a**`, `***`).
    #[error("`**` must be a whole path component")]
    MisplacedDoubleStar,
    /// A character no name or tag can hold.
    #[error("character {0:?} cannot appear in a name or tag")]
    InvalidChar(char),
}

/// One token of a pattern: `Star` matches any run of input items, `One`
/// exactly one item that satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<A> {
    Star,
    One(A),
}

/// Matches `input` against `pattern` where `one` decides single items.
///
/// The classic greedy walk that backtracks only to the last `Star`: a later
/// star can absorb whatever an earlier one would have, so this is exact,
/// with no recursion and `O(pattern × input)` at worst.
fn wildcard<A, S>(pattern: &[Token<A>], input: &[S], one: impl Fn(&A, &S) -> bool) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while i < input.len() {
        match pattern.get(p) {
            Some(Token::Star) => {
                last_star = Some((p, i));
                p += 1;
            }
            Some(Token::One(a)) if one(a, &input[i]) => {
                p += 1;
                i += 1;
            }
            _ => match last_star {
                Some((sp, si)) => {
                    last_star = Some((sp, si + 1));
                    p = sp + 1;
                    i = si + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| matches!(t, Token::Star))
}

/// A pattern over the characters of one string: `*`, `?` and literals.
/// `None` stands for `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chars(Vec<Token<Option<u8>>>);

impl Chars {
    fn parse(s: &str, allowed: impl Fn(u8) -> bool) -> Result<Chars, GlobError> {
        s.chars()
            .map(|c| match c {
                '*' => Ok(Token::Star),
                '?' => Ok(Token::One(None)),
                // Every allowed character is ASCII, so one char is one byte.
                c if c.is_ascii() && allowed(c as u8) => Ok(Token::One(Some(c as u8))),
                c => Err(GlobError::InvalidChar(c)),
            })
            .collect::<Result<_, _>>()
            .map(Chars)
    }

    fn matches(&self, s: &str) -> bool {
        wildcard(&self.0, s.as_bytes(), |a, b| a.is_none_or(|a| a == *b))
    }
}

/// A glob over tags: `*` any run of characters, `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagGlob {
    source: String,
    chars: Chars,
}

impl TagGlob {
    /// Parses a tag glob (grammar in the module doc).
    pub fn parse(pattern: &str) -> Result<TagGlob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let chars = Chars::parse(pattern, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
        })?;
        Ok(TagGlob {
            source: pattern.to_owned(),
            chars,
        })
    }

    /// Whether `tag` matches the whole pattern.
    pub fn matches(&self, tag: &str) -> bool {
        self.chars.matches(tag)
    }
}

impl fmt::Display for TagGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A glob over repository names: `**` any number of components, `*` any
/// run of characters inside one component, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoGlob {
    source: String,
    segments: Vec<Token<Chars>>,
}

impl RepoGlob {
    /// Parses a repository glob (grammar in the module doc).
    pub fn parse(pattern: &str) -> Result<RepoGlob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let segments = pattern
            .split('/')
            .map(|segment| match segment {
                "" => Err(GlobError::EmptyComponent),
                "**" => Ok(Token::Star),
                s if s.contains("**") => Err(GlobError::MisplacedDoubleStar),
                s => Chars::parse(s, |b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                .map(Token::One),
            })
            .collect::<Result<_, _>>()?;
        Ok(RepoGlob {
            source: pattern.to_owned(),
            segments,
        })
    }

    /// Whether the repository `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let components: Vec<&str> = name.split('/').collect();
        wildcard(&self.segments, &components, |glob, component| {
            glob.matches(component)
        })
    }
}

impl fmt::Display for RepoGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(p: &str, name: &str) -> bool {
        RepoGlob::parse(p).unwrap().matches(name)
    }

    fn tag(p: &str, t: &str) -> bool {
        TagGlob::parse(p).unwrap().matches(t)
    }

    #[test]
    fn double_star_spans_zero_or_more_components() {
        assert!(repo("ci/**", "ci"));
        assert!(repo("ci/**", "ci/app"));
        assert!(repo("ci/**", "ci/a/b/c"));
        assert!(!repo("ci/**", "cix/app"));
        assert!(repo("**", "anything/at/all"));
        assert!(repo("a/**/z", "a/z"));
        assert!(repo("a/**/z", "a/b/c/z"));
        assert!(!repo("a/**/z", "a/b/c/y"));
        assert!(repo("**/cache", "x/y/cache"));
    }

    #[test]
    fn single_star_stays_inside_one_component() {
        assert!(repo("tmp/*", "tmp/x"));
        assert!(!repo("tmp/*", "tmp"));
        assert!(!repo("tmp/*", "tmp/x/y"));
        assert!(repo("team-*/app", "team-a/app"));
        assert!(!repo("team-*/app", "team-a/b/app"));
        assert!(repo("prod/app?", "prod/app1"));
        assert!(!repo("prod/app?", "prod/app"));
        assert!(repo("prod/app", "prod/app"));
        assert!(!repo("prod/app", "prod/apps"));
    }

    #[test]
    fn tag_globs_match_the_whole_tag() {
        assert!(tag("v*", "v1.2.3"));
        assert!(tag("v*", "v"));
        assert!(!tag("v*", "release-v1"));
        assert!(tag("latest", "latest"));
        assert!(!tag("latest", "latest2"));
        assert!(tag("rc-?", "rc-1"));
        assert!(!tag("rc-?", "rc-12"));
        assert!(tag("*-*-*", "a-b-c-d"));
        assert!(!tag("*a*b", "xaybz"));
        assert!(tag("*", ""));
    }

    #[test]
    fn refuses_what_no_name_or_tag_can_hold() {
        assert_eq!(RepoGlob::parse(""), Err(GlobError::Empty));
        assert_eq!(RepoGlob::parse("a//b"), Err(GlobError::EmptyComponent));
        assert_eq!(RepoGlob::parse("/a"), Err(GlobError::EmptyComponent));
        assert_eq!(RepoGlob::parse("a/"), Err(GlobError::EmptyComponent));
        assert_eq!(RepoGlob::parse("a**"), Err(GlobError::MisplacedDoubleStar));
        assert_eq!(RepoGlob::parse("***"), Err(GlobError::MisplacedDoubleStar));
        assert_eq!(RepoGlob::parse("Ci/*"), Err(GlobError::InvalidChar('C')));
        assert_eq!(RepoGlob::parse("a/[ab]"), Err(GlobError::InvalidChar('[')));
        assert_eq!(TagGlob::parse(""), Err(GlobError::Empty));
        assert_eq!(TagGlob::parse("v/1"), Err(GlobError::InvalidChar('/')));
        assert_eq!(TagGlob::parse("vé"), Err(GlobError::InvalidChar('é')));
    }
}
