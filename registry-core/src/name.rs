//! Repository names, tags and references, validated to the spec's grammar.
//!
//! ```text
//! name       ::= component ("/" component)*             at most 255 characters
//! component  ::= [a-z0-9]+ (separator [a-z0-9]+)*
//! separator  ::= "." | "_" | "__" | "-"+
//! tag        ::= [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//! reference  ::= tag | digest
//! ```
//!
//! These types are built only by parsing, so a `RepoName` or a `Tag` is always
//! safe to use as a storage path: no `..`, no empty component, no leading `/`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// Longest repository name accepted (the spec: clients limit
/// `host/name` to 255 characters; we bound the name alone).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag (1 + 127 characters).
pub const MAX_TAG_LEN: usize = 128;

/// A validated repository name such as `team/app` or `a/b/c`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// Why a name, tag or reference was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// Not a valid repository name.
    InvalidName,
    /// Not a valid tag.
    InvalidTag,
    /// Looks like a digest (has a `:`) but is not a valid one.
    InvalidDigest,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::InvalidName => "invalid repository name",
            NameError::InvalidTag => "invalid tag",
            NameError::InvalidDigest => "invalid digest",
        })
    }
}

impl std::error::Error for NameError {}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or `-+`.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl RepoName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's path components (`a/b/c` gives `a`, `b`, `c`).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_component) {
            return Err(NameError::InvalidName);
        }
        Ok(RepoName(s.to_owned()))
    }
}

/// A validated tag such as `latest` or `v1.2.3_rc-1`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || s.len() > MAX_TAG_LEN {
            return Err(NameError::InvalidTag);
        }
        Ok(Tag(s.to_owned()))
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A mutable name for a manifest.
    Tag(Tag),
    /// The manifest's content address.
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A tag can never contain ':', so the colon decides which grammar applies.
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|_| NameError::InvalidDigest)
        } else {
            s.parse().map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t.as_str()),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

macro_rules! string_newtype_fmt {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
string_newtype_fmt!(RepoName);
string_newtype_fmt!(Tag);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for good in [
            "a",
            "library/ubuntu",
            "a/b/c",
            "a.b_c__d---e/f0",
            "0",
            "my-app/x.y",
        ] {
            assert!(good.parse::<RepoName>().is_ok(), "{good}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a/../b", "..", "a/.b", "a_", "a___b", "a.-b", "a b",
            "a%2fb", "a\0b", "a/B", "-a", "a:b", "ü",
        ] {
            assert_eq!(
                bad.parse::<RepoName>(),
                Err(NameError::InvalidName),
                "{bad:?}"
            );
        }
        let long = "a".repeat(256);
        assert!(long.parse::<RepoName>().is_err());
        assert!(long[..255].parse::<RepoName>().is_ok());
    }

    #[test]
    fn tags() {
        for good in ["latest", "_x", "V1.0-rc_1", &"a".repeat(128)] {
            assert!(good.parse::<Tag>().is_ok(), "{good}");
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", "..", &"a".repeat(129), "a\0"] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert_eq!(
            "sha256:zz".parse::<Reference>(),
            Err(NameError::InvalidDigest)
        );
    }

    proptest! {
        #[test]
        fn generated_names_parse(name in "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}){0,3}") {
            prop_assert!(name.parse::<RepoName>().is_ok());
        }

        #[test]
        fn generated_tags_parse(tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
            prop_assert!(tag.parse::<Tag>().is_ok());
        }

        #[test]
        fn parsed_names_are_safe_paths(s in "\\PC{0,40}") {
            if let Ok(name) = s.parse::<RepoName>() {
                prop_assert!(name.components().all(|c| !c.is_empty() && c != "." && c != ".."));
            }
        }
    }
}
