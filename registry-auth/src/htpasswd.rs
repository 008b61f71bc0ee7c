//! The htpasswd file, bcrypt only, and the authenticator built on it.
//!
//! ```text
//! file    = *( line (LF / CRLF) )
//! line    = blank / comment / entry           ; trailing whitespace ignored
//! comment = *WSP "#" *CHAR
//! entry   = user ":" bcrypt                    ; user: 1*(any char but ":")
//! ```
//!
//! This is what `htpasswd -Bbn user pass` prints. The file is parsed once, at
//! start-up, and every problem is an error naming the line: a registry that
//! starts with a half-read user list would lock people out (or worse, in)
//! without saying why.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::credentials::Credentials;
use crate::hash::{check_bcrypt, LineError};
use crate::scope::{Challenge, Identity, Refusal};
use crate::traits::Authenticator;

/// Cost of the dummy work for unknown users when the file has no entries.
const FALLBACK_COST: u32 = 10;
/// Salt of the dummy work for unknown users; any fixed value does.
const DUMMY_SALT: [u8; 16] = *b"registry-dummy!!";

/// Users and their bcrypt hashes, read from an htpasswd file.
///
/// `Debug` shows only the number of users, never names or hashes.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// The cost most users have, spent on unknown users too (see `verify`).
    dummy_cost: u32,
}

/// Why an htpasswd file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtpasswdError {
    /// A line is not a valid `user:bcrypt` entry.
    #[error("{}line {line}: {}{reason}", file_prefix(path), user_prefix(user))]
    Line {
        /// The file, when the text came from [`Htpasswd::load`].
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// The user on that line, once the line got that far.
        user: Option<String>,
        /// What is wrong.
        reason: LineError,
    },
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read htpasswd file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn file_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

fn user_prefix(user: &Option<String>) -> String {
    user.as_ref()
        .map(|u| format!("user {u:?}: "))
        .unwrap_or_default()
}

impl Htpasswd {
    /// Parses htpasswd text: one `user:hash` per line, as printed by
    /// `htpasswd -Bbn user pass`.
    ///
    /// Blank lines and lines starting with `#` are skipped, CRLF and trailing
    /// whitespace are tolerated, a leading byte-order mark is ignored. Only
    /// bcrypt hashes (`$2y$`, `$2a$`, `$2b$`, cost 04 to 31) are accepted;
    /// any other kind, a malformed hash, a line without `:`, an empty user or
    /// a duplicate user is an error naming the line number (and the user,
    /// never the hash).
    pub fn parse(text: &str) -> Result<Htpasswd, HtpasswdError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut users = HashMap::new();
        let mut first_lines: HashMap<&str, usize> = HashMap::new();
        let mut cost_counts = [0usize; 32];
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim_end();
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let error = |user: Option<&str>, reason| HtpasswdError::Line {
                path: None,
                line: line_no,
                user: user.map(str::to_owned),
                reason,
            };
            let Some((user, hash)) = line.split_once(':') else {
                return Err(error(None, LineError::MissingColon));
            };
            if user.is_empty() {
                return Err(error(None, LineError::EmptyUser));
            }
            let cost = check_bcrypt(hash).map_err(|reason| error(Some(user), reason))?;
            if let Some(&first_line) = first_lines.get(user) {
                return Err(error(Some(user), LineError::DuplicateUser { first_line }));
            }
            first_lines.insert(user, line_no);
            users.insert(user.to_owned(), hash.to_owned());
            if let Some(count) = usize::try_from(cost)
                .ok()
                .and_then(|c| cost_counts.get_mut(c))
            {
                *count += 1;
            }
        }
        Ok(Htpasswd {
            users,
            dummy_cost: most_common_cost(&cost_counts),
        })
    }

    /// Reads and parses an htpasswd file; errors name the path.
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Io {
            path: path.to_owned(),
            source,
        })?;
        Htpasswd::parse(&text).map_err(|mut error| {
            if let HtpasswdError::Line { path: p, .. } = &mut error {
                *p = Some(path.to_owned());
            }
            error
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `true` when the file has no users (everyone will be refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// `true` if `username` exists and `password` matches its bcrypt hash.
    ///
    /// Slow by design (bcrypt). For an unknown user the same bcrypt work is
    /// done anyway, at the cost most users in the file have, so response time
    /// does not reveal which user names exist; the result is `false`.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        match self.users.get(username) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                // What `bcrypt::verify` costs, minus the comparison.
                let work = bcrypt::hash_with_salt(password, self.dummy_cost, DUMMY_SALT);
                std::hint::black_box(work.is_ok());
                false
            }
        }
    }
}

/// The cost with the most users (the higher one on a tie), so the dummy
/// work for unknown users takes as long as a typical known user.
fn most_common_cost(counts: &[usize; 32]) -> u32 {
    let best = (0u32..)
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .max_by_key(|(cost, n)| (**n, *cost));
    best.map_or(FALLBACK_COST, |(cost, _)| cost)
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// [`Authenticator`] backed by an [`Htpasswd`] file: every request must
/// carry valid `Basic` credentials.
#[derive(Debug)]
pub struct HtpasswdAuthenticator {
    htpasswd: Htpasswd,
    challenge: Challenge,
}

impl HtpasswdAuthenticator {
    /// Authenticates against `htpasswd`, challenging with `Basic realm`.
    pub fn new(htpasswd: Htpasswd, realm: impl Into<String>) -> Self {
        HtpasswdAuthenticator {
            htpasswd,
            challenge: Challenge::basic(realm),
        }
    }
}

impl Authenticator for HtpasswdAuthenticator {
    /// No credentials: `MissingCredentials`. Verified: `User(name)`.
    /// Unknown user or wrong password: `InvalidCredentials`, the same for
    /// both so a client cannot probe for user names.
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        let Some(credentials) = credentials else {
            return Err(Refusal::MissingCredentials(self.challenge.clone()));
        };
        if self
            .htpasswd
            .verify(&credentials.username, &credentials.password)
        {
            Ok(Identity::User(credentials.username.clone()))
        } else {
            Err(Refusal::InvalidCredentials(self.challenge.clone()))
        }
    }

    /// Answers only a request without credentials: anything else is bcrypt.
    fn authenticate_cached(
        &self,
        credentials: Option<&Credentials>,
    ) -> Option<Result<Identity, Refusal>> {
        match credentials {
            None => Some(Err(Refusal::MissingCredentials(self.challenge.clone()))),
            Some(_) => None,
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        Some(self.challenge.clone())
    }
}

#[cfg(test)]
mod tests;
