//! Recognising the password hash on an htpasswd line, and refusing every kind
//! but bcrypt.
//!
//! `htpasswd` can write several formats; only bcrypt is slow enough to be
//! worth storing. The others are refused at start-up with a message that
//! names the format, so the operator knows which line to regenerate:
//!
//! ```text
//! $2y$, $2a$, $2b$   bcrypt          htpasswd -B       accepted
//! $2x$               buggy bcrypt    (old PHP)         refused
//! $apr1$             MD5 (Apache)    htpasswd -m       refused
//! $1$ / $5$ / $6$    MD5/SHA crypt   htpasswd -2 / -5  refused
//! {SHA}              SHA-1           htpasswd -s       refused
//! 13 chars [./0-9A-Za-z]  DES crypt  htpasswd -d       refused
//! anything else      plain text      htpasswd -p       refused
//! ```
//!
//! The accepted shape, checked fully here so a malformed hash is a start-up
//! error and not a silent "wrong password" later:
//!
//! ```text
//! bcrypt = "$2" ("y" | "a" | "b") "$" cost "$" salt digest
//! cost   = 2DIGIT                    ; 04..=31
//! salt   = 22 bcrypt-base64 chars    ; 16 bytes, canonical trailing bits
//! digest = 31 bcrypt-base64 chars    ; 23 bytes, canonical trailing bits
//! ```
//!
//! Error messages never include the hash text: for a plain-text line, that
//! would be the password.

use std::fmt;

use base64::Engine;

/// A kind of password hash this crate refuses, named for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashKind {
    /// `$2x$`: bcrypt from the pre-2011 buggy implementation.
    BcryptX,
    /// `$apr1$`: Apache's iterated MD5 (`htpasswd -m`, its old default).
    Apr1Md5,
    /// `$1$`: MD5-crypt.
    Md5Crypt,
    /// `$5$`: SHA-256-crypt.
    Sha256Crypt,
    /// `$6$`: SHA-512-crypt.
    Sha512Crypt,
    /// `{SHA}`: unsalted SHA-1 (`htpasswd -s`).
    Sha1,
    /// Traditional 13-character DES crypt (`htpasswd -d`).
    DesCrypt,
    /// Nothing recognisable: plain text (`htpasswd -p`) or another scheme.
    PlainOrUnknown,
}

impl HashKind {
    /// Names the hash on a line that is not accepted bcrypt.
    pub fn classify(hash: &str) -> HashKind {
        const PREFIXES: [(&str, HashKind); 6] = [
            ("$2x$", HashKind::BcryptX),
            ("$apr1$", HashKind::Apr1Md5),
            ("$1$", HashKind::Md5Crypt),
            ("$5$", HashKind::Sha256Crypt),
            ("$6$", HashKind::Sha512Crypt),
            ("{SHA}", HashKind::Sha1),
        ];
        if let Some((_, kind)) = PREFIXES.iter().find(|(p, _)| hash.starts_with(p)) {
            return *kind;
        }
        let crypt_char = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
        if hash.len() == 13 && hash.bytes().all(crypt_char) {
            return HashKind::DesCrypt;
        }
        HashKind::PlainOrUnknown
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashKind::BcryptX => "$2x$ bcrypt, an old buggy variant",
            HashKind::Apr1Md5 => "$apr1$ MD5",
            HashKind::Md5Crypt => "$1$ MD5-crypt",
            HashKind::Sha256Crypt => "$5$ SHA-256-crypt",
            HashKind::Sha512Crypt => "$6$ SHA-512-crypt",
            HashKind::Sha1 => "{SHA} SHA-1",
            HashKind::DesCrypt => "DES crypt",
            HashKind::PlainOrUnknown => "plain text or unknown format",
        })
    }
}

/// What is wrong with one htpasswd line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line has no `:` between user and hash.
    MissingColon,
    /// The line starts with `:`.
    EmptyUser,
    /// The user already appeared on an earlier line; which line wins would be
    /// a guess, so neither does.
    DuplicateUser {
        /// The line the user was first defined on.
        first_line: usize,
    },
    /// `user:` with nothing after the colon.
    EmptyHash,
    /// A hash that is not bcrypt.
    UnsupportedHash(HashKind),
    /// Has a bcrypt prefix but not the bcrypt shape; the text says which part.
    MalformedBcrypt(&'static str),
}

const HOW_TO_FIX: &str = "only bcrypt ($2y$, $2a$, $2b$) is accepted, create it with `htpasswd -B`";

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::MissingColon => f.write_str("expected `user:hash`, found no ':'"),
            LineError::EmptyUser => f.write_str("empty user name"),
            LineError::DuplicateUser { first_line } => {
                write!(f, "duplicate user, first defined on line {first_line}")
            }
            LineError::EmptyHash => write!(f, "empty password hash; {HOW_TO_FIX}"),
            LineError::UnsupportedHash(kind) => {
                write!(f, "unsupported password hash ({kind}); {HOW_TO_FIX}")
            }
            LineError::MalformedBcrypt(what) => write!(f, "malformed bcrypt hash: {what}"),
        }
    }
}

/// Checks that `hash` is an accepted bcrypt hash and returns its cost.
pub(crate) fn check_bcrypt(hash: &str) -> Result<u32, LineError> {
    if hash.is_empty() {
        return Err(LineError::EmptyHash);
    }
    let Some(rest) = ["$2y$", "$2a$", "$2b$"]
        .iter()
        .find_map(|prefix| hash.strip_prefix(prefix))
    else {
        return Err(LineError::UnsupportedHash(HashKind::classify(hash)));
    };
    let [tens, ones, b'$', tail @ ..] = rest.as_bytes() else {
        return Err(LineError::MalformedBcrypt(
            "expected a two-digit cost and '$' after the prefix",
        ));
    };
    if !tens.is_ascii_digit() || !ones.is_ascii_digit() {
        return Err(LineError::MalformedBcrypt("the cost is not two digits"));
    }
    let cost = u32::from((tens - b'0') * 10 + (ones - b'0'));
    if !(4..=31).contains(&cost) {
        return Err(LineError::MalformedBcrypt("the cost must be 04 to 31"));
    }
    if tail.len() != 53 {
        return Err(LineError::MalformedBcrypt(
            "expected 53 characters of salt and digest after the cost",
        ));
    }
    let (salt, digest) = tail.split_at(22);
    let salt_ok = bcrypt::BASE_64.decode(salt).is_ok_and(|s| s.len() == 16);
    let digest_ok = bcrypt::BASE_64.decode(digest).is_ok_and(|d| d.len() == 23);
    if !salt_ok || !digest_ok {
        return Err(LineError::MalformedBcrypt(
            "salt and digest are not valid bcrypt base64",
        ));
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    // `htpasswd -Bbn -C 4 alice secret`
    const ALICE: &str = "$2y$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha";

    #[test]
    fn accepts_all_three_prefixes() {
        for prefix in ["$2y$", "$2a$", "$2b$"] {
            let hash = ALICE.replacen("$2y$", prefix, 1);
            assert_eq!(check_bcrypt(&hash), Ok(4), "{hash}");
        }
        let cost_12 = ALICE.replacen("$04$", "$12$", 1);
        assert_eq!(check_bcrypt(&cost_12), Ok(12));
    }

    #[test]
    fn classifies_refused_kinds() {
        let cases = [
            (
                "$2x$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
                HashKind::BcryptX,
            ),
            ("$apr1$.3rcJiup$jTovPxahuwwWQvS0ZAG3o/", HashKind::Apr1Md5),
            ("$1$salt$hash", HashKind::Md5Crypt),
            ("$5$salt$hash", HashKind::Sha256Crypt),
            ("$6$salt$hash", HashKind::Sha512Crypt),
            ("{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", HashKind::Sha1),
            ("Li/c7x5hOyOzY", HashKind::DesCrypt),
            ("hunter2", HashKind::PlainOrUnknown),
            ("$argon2id$v=19$m=65536", HashKind::PlainOrUnknown),
        ];
        for (hash, kind) in cases {
            assert_eq!(
                check_bcrypt(hash),
                Err(LineError::UnsupportedHash(kind)),
                "{hash}"
            );
        }
        assert_eq!(check_bcrypt(""), Err(LineError::EmptyHash));
    }

    #[test]
    fn refuses_malformed_bcrypt() {
        let cases = [
            "$2y$",
            "$2y$4$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
            "$2y$ab$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
            "$2y$03$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
            "$2y$32$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
            // One character short, one too many.
            "$2y$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2h",
            "$2y$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2haa",
            // A character outside the bcrypt alphabet.
            "$2y$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2h+",
            // Non-ASCII of the right byte length must not panic on slicing.
            "$2y$04$ééééééééééééééééééééééééééY7gVjSxWafjDeo5RkK9bzHkfik",
        ];
        for hash in cases {
            assert!(
                matches!(check_bcrypt(hash), Err(LineError::MalformedBcrypt(_))),
                "{hash}: {:?}",
                check_bcrypt(hash)
            );
        }
    }

    #[test]
    fn message_names_the_kind_and_the_fix() {
        assert_eq!(
            LineError::UnsupportedHash(HashKind::Apr1Md5).to_string(),
            "unsupported password hash ($apr1$ MD5); only bcrypt ($2y$, $2a$, $2b$) is \
             accepted, create it with `htpasswd -B`"
        );
    }
}
