//! `registry htpasswd USER`: prints one htpasswd line with a bcrypt hash,
//! what `htpasswd -nB USER` prints, for a machine without apache2-utils.
//!
//! ```text
//! registry htpasswd alice >> htpasswd                      # prompts twice
//! printf '%s\n' "$PASS" | registry htpasswd ci --password-stdin >> htpasswd
//! ```
//!
//! The line is `USER:$2y$CC$<salt><digest>`: the `$2y$` prefix as Apache
//! writes it, a fresh random salt, cost `CC`. The registry's own parser
//! (`registry_auth::Htpasswd`) and `htpasswd -v` both accept it.

use std::fmt;
use std::io::{BufRead, Write};
use std::str::FromStr;

use clap::Args;

use super::{read_password, write_out, CommandError, PasswordSource};

/// `registry htpasswd` arguments.
#[derive(Debug, Args)]
pub struct HtpasswdArgs {
    /// User name: no ':', no whitespace, not starting with '#'.
    #[arg(value_name = "USER")]
    pub user: HtpasswdUser,
    /// Read the password from the first line of standard input instead of
    /// prompting (twice, without echo) on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// bcrypt cost, 4 to 31: each step doubles the work of hashing, here
    /// and at every login.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// A user name that an htpasswd line can hold and HTTP basic auth can send.
///
/// ```text
/// user = 1*255( any char but ":", whitespace, control ) ; not starting with "#"
/// ```
///
/// `:` ends the user on the line and in the `Authorization` header; a line
/// starting with `#` is a comment; whitespace would be trimmed or invisible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdUser(String);

impl HtpasswdUser {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HtpasswdUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HtpasswdUser {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the user name is empty".to_owned());
        }
        if s.contains(':') {
            return Err(
                "a user name cannot contain ':' (it separates the user from the password)"
                    .to_owned(),
            );
        }
        if s.chars().any(char::is_whitespace) {
            return Err("a user name cannot contain spaces or other whitespace".to_owned());
        }
        if s.chars().any(char::is_control) {
            return Err("a user name cannot contain control characters".to_owned());
        }
        if s.starts_with('#') {
            return Err(
                "a user name cannot start with '#' (the line would be a comment)".to_owned(),
            );
        }
        if s.len() > 255 {
            return Err("a user name has at most 255 bytes".to_owned());
        }
        Ok(HtpasswdUser(s.to_owned()))
    }
}

/// `user:$2y$...` for `password` at `cost`, without a line ending.
///
/// bcrypt reads at most 72 bytes of a password and stops at a NUL byte, so
/// longer passwords and NUL bytes are refused rather than silently
/// weakened.
pub fn bcrypt_line(user: &HtpasswdUser, password: &str, cost: u32) -> Result<String, CommandError> {
    if password.contains('\0') {
        return Err(CommandError::Invalid(
            "the password contains a NUL byte, which bcrypt cannot hash".to_owned(),
        ));
    }
    if password.len() > 72 {
        return Err(CommandError::Invalid(format!(
            "the password is {} bytes long; bcrypt uses at most 72, so the rest would be ignored",
            password.len()
        )));
    }
    // At exactly 72 bytes only bcrypt's own NUL terminator is cut, which
    // `non_truncating_*` would refuse.
    let parts = bcrypt::hash_with_result(password, cost)
        .map_err(|e| CommandError::Invalid(format!("cannot hash the password: {e}")))?;
    Ok(format!(
        "{user}:{}",
        parts.format_for_version(bcrypt::Version::TwoY)
    ))
}

/// Reads the password (stdin or prompt) and prints the line on `stdout`.
pub fn run(
    args: HtpasswdArgs,
    stdin: impl BufRead,
    stdout: impl Write,
) -> Result<(), CommandError> {
    let prompt = format!("user {}", args.user);
    let source = if args.password_stdin {
        PasswordSource::Stdin
    } else {
        PasswordSource::Prompt(&prompt)
    };
    let password = read_password(source, stdin)?;
    let line = bcrypt_line(&args.user, &password, args.cost)?;
    write_out(stdout, &format!("{line}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> HtpasswdUser {
        name.parse().unwrap()
    }

    #[test]
    fn line_verifies_and_the_registry_parser_accepts_it() {
        let line = bcrypt_line(&user("alice"), "s3cret: with spaces", 4).unwrap();
        let (name, hash) = line.split_once(':').unwrap();
        assert_eq!(name, "alice");
        assert!(hash.starts_with("$2y$04$"), "{hash}");
        assert_eq!(hash.len(), 60);
        assert!(bcrypt::verify("s3cret: with spaces", hash).unwrap());
        assert!(!bcrypt::verify("s3cret: with space", hash).unwrap());

        let users = registry_auth::Htpasswd::parse(&format!("{line}\n")).unwrap();
        assert_eq!(users.len(), 1);
        assert!(users.verify("alice", "s3cret: with spaces"));
        assert!(!users.verify("alice", "wrong"));
    }

    #[test]
    fn salt_is_fresh_every_time() {
        let a = bcrypt_line(&user("alice"), "pw", 4).unwrap();
        let b = bcrypt_line(&user("alice"), "pw", 4).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn cost_is_written_with_two_digits() {
        let line = bcrypt_line(&user("bob"), "pw", 5).unwrap();
        assert!(line.starts_with("bob:$2y$05$"), "{line}");
    }

    #[test]
    fn user_names_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("a:b", "':'"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a\u{7f}b", "control"),
            ("#alice", "comment"),
            (&"a".repeat(256), "255"),
        ];
        for (name, reason) in cases {
            let error = name.parse::<HtpasswdUser>().unwrap_err();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
        for ok in ["alice", "ci-bot", "a#b", "user@example.com", "Ünïcödé"] {
            assert_eq!(user(ok).as_str(), ok);
        }
    }

    #[test]
    fn passwords_bcrypt_would_weaken_are_refused() {
        let long = "x".repeat(73);
        let error = bcrypt_line(&user("alice"), &long, 4).unwrap_err();
        assert!(error.to_string().contains("73 bytes"), "{error}");
        let line = bcrypt_line(&user("alice"), &"x".repeat(72), 4).unwrap();
        let hash = line.strip_prefix("alice:").unwrap();
        assert!(bcrypt::verify("x".repeat(72), hash).unwrap());
        assert!(!bcrypt::verify("x".repeat(71), hash).unwrap());
        let error = bcrypt_line(&user("alice"), "a\0b", 4).unwrap_err();
        assert!(error.to_string().contains("NUL"), "{error}");
    }

    #[test]
    fn run_reads_stdin_and_prints_one_line() {
        let args = HtpasswdArgs {
            user: user("ci"),
            password_stdin: true,
            cost: 4,
        };
        let mut out = Vec::new();
        run(args, &b"pa55word\n"[..], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.ends_with('\n'));
        let hash = text.trim_end().strip_prefix("ci:").unwrap();
        assert!(bcrypt::verify("pa55word", hash).unwrap());
    }

    #[test]
    fn run_refuses_an_empty_password() {
        let args = HtpasswdArgs {
            user: user("ci"),
            password_stdin: true,
            cost: 4,
        };
        let mut out = Vec::new();
        let error = run(args, &b"\n"[..], &mut out).unwrap_err();
        assert_eq!(error.to_string(), "the password is empty");
        assert!(out.is_empty());
    }
}
