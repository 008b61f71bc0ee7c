//! Set-up helpers of the `registry` binary: commands that print a file and
//! exit, never touching the network or the storage.
//!
//! Each command is a module with a clap `Args` struct, a pure function that
//! renders the output, and `run(args, stdin, stdout)`, so tests drive them
//! with byte buffers instead of a terminal. Passwords come from standard
//! input (`--password-stdin`, one line) or from a no-echo prompt on the
//! terminal, never from an argument, which would land in shell history and
//! in `ps`.
//!
//! # Layout
//! - [`htpasswd`]: `registry htpasswd USER` prints a bcrypt `USER:$2y$...` line.
//! - [`import`]: `registry import --from-distribution DIR` moves a standard registry's
//!   storage into this one's (the one command here that writes to the storage).
//! - [`pull_secret`]: `registry pull-secret` prints a Kubernetes image pull Secret.
//! - [`names`]: validated host and Kubernetes object names.

use std::io::{BufRead, StdinLock, StdoutLock};
use std::process::ExitCode;

pub mod htpasswd;
pub mod import;
pub mod names;
pub mod pull_secret;

/// Why a set-up command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// An input the command refuses; the text says which one and why.
    #[error("{0}")]
    Invalid(String),
    /// The two passwords typed at the prompt differ.
    #[error("the passwords do not match")]
    PasswordMismatch,
    /// No terminal to prompt on (a pipe, CI, a container without `-t`).
    #[error("cannot prompt for the password ({0}); pipe it in with --password-stdin")]
    NoTerminal(std::io::Error),
    /// Reading standard input or writing standard output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl CommandError {
    /// The process exit code: 2 for refused input (as clap does for bad
    /// flags), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Invalid(_) | CommandError::PasswordMismatch => 2,
            CommandError::NoTerminal(_) | CommandError::Io { .. } => 1,
        }
    }
}

/// Runs a command on the process's standard input and output, prints its
/// error on stderr and returns the exit code; used by `main.rs`.
pub fn stdio<F>(command: F) -> ExitCode
where
    F: FnOnce(StdinLock<'static>, StdoutLock<'static>) -> Result<(), CommandError>,
{
    match command(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Where a password comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordSource<'a> {
    /// The first line of standard input, without its line ending.
    Stdin,
    /// Asked twice on the terminal without echo; the prompt names what for.
    Prompt(&'a str),
}

/// Reads a password and refuses an empty one.
pub(crate) fn read_password(
    source: PasswordSource<'_>,
    stdin: impl BufRead,
) -> Result<String, CommandError> {
    let password = match source {
        PasswordSource::Stdin => first_line(stdin)?,
        PasswordSource::Prompt(what) => {
            let first = rpassword::prompt_password(format!("Password for {what}: "))
                .map_err(CommandError::NoTerminal)?;
            let again = rpassword::prompt_password("Same password again: ")
                .map_err(CommandError::NoTerminal)?;
            if first != again {
                return Err(CommandError::PasswordMismatch);
            }
            first
        }
    };
    if password.is_empty() {
        return Err(CommandError::Invalid("the password is empty".to_owned()));
    }
    Ok(password)
}

/// The first line of `input` without `\n` or `\r\n`; the rest is ignored.
fn first_line(mut input: impl BufRead) -> Result<String, CommandError> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .map_err(|source| CommandError::Io {
            context: "cannot read the password from standard input",
            source,
        })?;
    if read == 0 {
        return Err(CommandError::Invalid(
            "--password-stdin: standard input is empty, expected the password on one line"
                .to_owned(),
        ));
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}

/// Writes `text` to `stdout` and flushes it.
pub(crate) fn write_out(mut stdout: impl std::io::Write, text: &str) -> Result<(), CommandError> {
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| CommandError::Io {
            context: "cannot write to standard output",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_password_is_the_first_line_without_its_ending() {
        let cases: [(&[u8], &str); 5] = [
            (b"secret\n", "secret"),
            (b"secret\r\n", "secret"),
            (b"secret", "secret"),
            (b"with spaces \n", "with spaces "),
            (b"first\nsecond\n", "first"),
        ];
        for (input, expected) in cases {
            let password = read_password(PasswordSource::Stdin, input).unwrap();
            assert_eq!(password, expected, "{input:?}");
        }
    }

    #[test]
    fn empty_stdin_and_empty_password_are_refused() {
        for input in [&b""[..], b"\n", b"\r\n"] {
            let error = read_password(PasswordSource::Stdin, input).unwrap_err();
            assert!(matches!(error, CommandError::Invalid(_)), "{error:?}");
            assert_eq!(error.exit_code(), 2);
        }
        let error = read_password(PasswordSource::Stdin, &b"\n"[..]).unwrap_err();
        assert_eq!(error.to_string(), "the password is empty");
    }
}
