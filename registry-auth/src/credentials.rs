//! `Authorization: Basic` credentials (RFC 7617).
//!
//! ```text
//! credentials = auth-scheme 1*SP token68        ; scheme is case-insensitive
//! auth-scheme = "Basic"
//! token68     = base64( user-id ":" password )  ; UTF-8, split at the first ':'
//! ```
//!
//! The user id cannot contain `:` but the password can, so everything after
//! the first colon is the password.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Standard base64, with or without `=` padding: some clients drop it, and
/// refusing them would gain nothing.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A user name and password as sent by the client, not yet verified.
///
/// `Debug` redacts the password so credentials can sit in logged structs
/// without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user id, everything before the first `:`.
    pub username: String,
    /// The password, everything after the first `:` (may contain `:`).
    pub password: String,
}

impl Credentials {
    /// Parses an `Authorization` header value: `Basic <base64(user:pass)>`.
    ///
    /// The scheme is matched case-insensitively and extra spaces or tabs
    /// around and between the parts are tolerated. Returns `None` for any
    /// other scheme (`Bearer` ...) and for malformed input: bad base64, no
    /// colon, or a decoded value that is not UTF-8. `None` means "no usable
    /// credentials", which the authenticator answers with a challenge.
    pub fn from_basic_header(value: &[u8]) -> Option<Credentials> {
        let value = value.trim_ascii();
        let split = value.iter().position(|b| *b == b' ' || *b == b'\t')?;
        let (scheme, token) = value.split_at(split);
        if !scheme.eq_ignore_ascii_case(b"Basic") {
            return None;
        }
        let decoded = BASIC_BASE64.decode(token.trim_ascii()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
        .into_bytes()
    }

    fn creds(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    #[test]
    fn valid_basic() {
        // base64("alice:secret")
        assert_eq!(
            Credentials::from_basic_header(b"Basic YWxpY2U6c2VjcmV0"),
            creds("alice", "secret")
        );
        assert_eq!(
            Credentials::from_basic_header(&header("alice:secret")),
            creds("alice", "secret")
        );
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["basic", "BASIC", "bAsIc"] {
            let value = format!("{scheme} YWxpY2U6c2VjcmV0");
            assert_eq!(
                Credentials::from_basic_header(value.as_bytes()),
                creds("alice", "secret"),
                "{scheme}"
            );
        }
    }

    #[test]
    fn extra_whitespace_is_tolerated() {
        for value in [
            "  Basic YWxpY2U6c2VjcmV0",
            "Basic    YWxpY2U6c2VjcmV0",
            "Basic\tYWxpY2U6c2VjcmV0",
            "Basic YWxpY2U6c2VjcmV0   ",
        ] {
            assert_eq!(
                Credentials::from_basic_header(value.as_bytes()),
                creds("alice", "secret"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn padding_is_optional() {
        // base64("ab:c") = "YWI6Yw==".
        assert_eq!(
            Credentials::from_basic_header(b"Basic YWI6Yw=="),
            creds("ab", "c")
        );
        assert_eq!(
            Credentials::from_basic_header(b"Basic YWI6Yw"),
            creds("ab", "c")
        );
    }

    #[test]
    fn password_keeps_everything_after_first_colon() {
        assert_eq!(
            Credentials::from_basic_header(&header("alice:pa:ss:")),
            creds("alice", "pa:ss:")
        );
        assert_eq!(
            Credentials::from_basic_header(&header("alice:")),
            creds("alice", "")
        );
        assert_eq!(
            Credentials::from_basic_header(&header("ünï:cødé")),
            creds("ünï", "cødé")
        );
    }

    #[test]
    fn other_schemes_and_malformed_input_are_none() {
        let cases: &[&[u8]] = &[
            b"",
            b"Basic",
            b"Basic ",
            b"Bearer YWxpY2U6c2VjcmV0",
            b"Digest username=\"alice\"",
            b"BasicYWxpY2U6c2VjcmV0",
            b"Basic not*base64!",
            b"Basic YWxpY2U6c2Vj cmV0",
            // base64("alicesecret"): no colon.
            b"Basic YWxpY2VzZWNyZXQ=",
            // base64 of [0xff, b':', b'x']: not UTF-8.
            b"Basic /zp4",
        ];
        for value in cases {
            assert_eq!(
                Credentials::from_basic_header(value),
                None,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn debug_redacts_password() {
        let c = Credentials {
            username: "alice".to_owned(),
            password: "hunter2".to_owned(),
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
