//! Tests for the htpasswd parser, verification and authenticator. Hashes are
//! cost 4/5 to keep the suite fast.

use super::*;
use crate::hash::HashKind;

// `htpasswd -Bbn -C 4 alice secret`
const ALICE: &str = "alice:$2y$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha";
// `htpasswd -Bbn -C 5 bob 'p:ss w0rd'`, prefix changed to $2a$ (the same
// algorithm for ASCII passwords under 72 bytes).
const BOB: &str = "bob:$2a$05$cqrA5END34z0EG17sCpSIuCT3TMfm//BEJqG7cnxm.qs.z1uy5z5q";
// `htpasswd -Bbn -C 4 carol pw-carol`, prefix changed to $2b$.
const CAROL: &str = "carol:$2b$04$l.k69oVHAjlvJe4WVP5e4Oyeq2Pmj4A2RatqPBU6/hjQ9vtwSdBEG";

fn file() -> String {
    format!("# registry users\n\n{ALICE}\r\n  # indented comment\n{BOB}   \n\t\n{CAROL}")
}

fn line_error(text: &str) -> (usize, Option<String>, LineError, String) {
    match Htpasswd::parse(text) {
        Err(e @ HtpasswdError::Line { .. }) => {
            let shown = e.to_string();
            let HtpasswdError::Line {
                line, user, reason, ..
            } = e
            else {
                unreachable!()
            };
            (line, user, reason, shown)
        }
        other => panic!("expected a line error for {text:?}, got {other:?}"),
    }
}

#[test]
fn parses_and_verifies_all_three_prefixes() {
    let h = Htpasswd::parse(&file()).unwrap();
    assert_eq!(h.len(), 3);
    assert!(!h.is_empty());
    assert!(h.verify("alice", "secret"));
    assert!(h.verify("bob", "p:ss w0rd"));
    assert!(h.verify("carol", "pw-carol"));
    assert!(!h.verify("alice", "Secret"));
    assert!(!h.verify("alice", ""));
    assert!(!h.verify("Alice", "secret"));
    assert!(!h.verify("bob", "p:ss"));
    assert!(!h.verify("mallory", "secret"));
    assert!(!h.verify("", ""));
}

#[test]
fn published_openbsd_vector() {
    // From the OpenBSD / John the Ripper bcrypt test vectors.
    let h =
        Htpasswd::parse("u:$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW").unwrap();
    assert!(h.verify("u", "U*U"));
    assert!(!h.verify("u", "U*V"));
}

#[test]
fn hashes_from_the_bcrypt_crate_verify() {
    for version in [
        bcrypt::Version::TwoY,
        bcrypt::Version::TwoA,
        bcrypt::Version::TwoB,
    ] {
        let hash = bcrypt::hash_with_salt("s3cret", 4, *b"0123456789abcdef")
            .unwrap()
            .format_for_version(version);
        let h = Htpasswd::parse(&format!("dave:{hash}\n")).unwrap();
        assert!(h.verify("dave", "s3cret"), "{hash}");
        assert!(!h.verify("dave", "s3cret "), "{hash}");
    }
}

#[test]
fn empty_file_is_empty() {
    for text in ["", "\n\n", "# nobody\n", "\u{feff}"] {
        let h = Htpasswd::parse(text).unwrap();
        assert!(h.is_empty());
        assert_eq!(h.len(), 0);
        assert!(!h.verify("alice", "secret"));
    }
}

#[test]
fn refuses_other_hash_kinds_with_line_and_user() {
    let cases = [
        (
            "bob:$apr1$.3rcJiup$jTovPxahuwwWQvS0ZAG3o/",
            HashKind::Apr1Md5,
        ),
        ("bob:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", HashKind::Sha1),
        ("bob:Li/c7x5hOyOzY", HashKind::DesCrypt),
        ("bob:hunter2", HashKind::PlainOrUnknown),
        ("bob:$6$salt$abc", HashKind::Sha512Crypt),
        (
            "bob:$2x$04$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha",
            HashKind::BcryptX,
        ),
    ];
    for (entry, kind) in cases {
        let text = format!("{ALICE}\n# comment\n{entry}\n{CAROL}\n");
        let (line, user, reason, shown) = line_error(&text);
        assert_eq!(line, 3, "{entry}");
        assert_eq!(user.as_deref(), Some("bob"));
        assert_eq!(reason, LineError::UnsupportedHash(kind));
        let hash = entry.trim_start_matches("bob:");
        assert!(!shown.contains(hash), "error shows the hash: {shown}");
    }
}

#[test]
fn apr1_message() {
    let text = format!("{ALICE}\n\nbob:$apr1$.3rcJiup$jTovPxahuwwWQvS0ZAG3o/\n");
    let (_, _, _, shown) = line_error(&text);
    assert_eq!(
        shown,
        "line 3: user \"bob\": unsupported password hash ($apr1$ MD5); only bcrypt \
         ($2y$, $2a$, $2b$) is accepted, create it with `htpasswd -B`"
    );
}

#[test]
fn structural_errors_name_the_line() {
    let (line, user, reason, shown) = line_error(&format!("{ALICE}\njust-a-name\n"));
    assert_eq!((line, user, reason), (2, None, LineError::MissingColon));
    assert!(shown.starts_with("line 2: "), "{shown}");

    let (line, user, reason, _) = line_error(&format!("{ALICE}\r\n\r\n{}", &CAROL[5..]));
    assert_eq!((line, user, reason), (3, None, LineError::EmptyUser));

    let (line, user, reason, shown) = line_error(&format!("{ALICE}\n{BOB}\n{ALICE}\n"));
    assert_eq!(
        (line, user.as_deref(), reason),
        (3, Some("alice"), LineError::DuplicateUser { first_line: 1 })
    );
    assert!(shown.contains("first defined on line 1"), "{shown}");

    let (line, user, reason, _) = line_error("\n\nerin:\n");
    assert_eq!(
        (line, user.as_deref(), reason),
        (3, Some("erin"), LineError::EmptyHash)
    );

    let (line, user, reason, _) =
        line_error("frank:$2y$99$YmC56TWR1Y7gVjSxWafjDeo5RkK9bzHkfikyH4am7aQ6JTmk4Q2ha");
    assert_eq!((line, user.as_deref()), (1, Some("frank")));
    assert!(
        matches!(reason, LineError::MalformedBcrypt(_)),
        "{reason:?}"
    );

    // Whitespace after the colon is part of the hash, not trimmed away.
    let (_, _, reason, _) = line_error(&ALICE.replacen(':', ": ", 1));
    assert_eq!(reason, LineError::UnsupportedHash(HashKind::PlainOrUnknown));
}

#[test]
fn debug_shows_neither_users_nor_hashes() {
    let h = Htpasswd::parse(&file()).unwrap();
    let authn = HtpasswdAuthenticator::new(Htpasswd::parse(&file()).unwrap(), "registry");
    for shown in [format!("{h:?}"), format!("{h:#?}"), format!("{authn:?}")] {
        assert!(shown.contains('3'), "{shown}");
        for secret in ["alice", "$2y$", "$2a$", "$2b$", "YmC56TWR1Y7gVjSx"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

#[test]
fn dummy_cost_follows_the_file() {
    let mut counts = [0usize; 32];
    assert_eq!(most_common_cost(&counts), FALLBACK_COST);
    counts[5] = 2;
    counts[12] = 1;
    assert_eq!(most_common_cost(&counts), 5);
    counts[12] = 2;
    assert_eq!(most_common_cost(&counts), 12);
    let h = Htpasswd::parse(&format!("{ALICE}\n{BOB}\n{CAROL}\n")).unwrap();
    assert_eq!(h.dummy_cost, 4);
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("registry-auth-{}-{name}", std::process::id()))
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let good = temp_path("good.htpasswd");
    std::fs::write(&good, file()).unwrap();
    let h = Htpasswd::load(&good).unwrap();
    assert!(h.verify("carol", "pw-carol"));
    std::fs::remove_file(&good).unwrap();

    let bad = temp_path("bad.htpasswd");
    std::fs::write(&bad, "bob:plain\n").unwrap();
    let err = Htpasswd::load(&bad).unwrap_err();
    std::fs::remove_file(&bad).unwrap();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: line 1: user \"bob\": ", bad.display())),
        "{shown}"
    );

    let missing = temp_path("missing.htpasswd");
    let err = Htpasswd::load(&missing).unwrap_err();
    assert!(matches!(err, HtpasswdError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
}

#[test]
fn authenticator_results() {
    let authn = HtpasswdAuthenticator::new(Htpasswd::parse(&file()).unwrap(), "my \"registry\"");
    let challenge = Challenge::basic("my \"registry\"");
    let creds = |username: &str, password: &str| Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    assert_eq!(authn.challenge(), Some(challenge.clone()));
    assert_eq!(
        authn.authenticate(None),
        Err(Refusal::MissingCredentials(challenge.clone()))
    );
    assert_eq!(
        authn.authenticate(Some(&creds("alice", "secret"))),
        Ok(Identity::User("alice".to_owned()))
    );
    assert_eq!(
        authn.authenticate(Some(&creds("alice", "nope"))),
        Err(Refusal::InvalidCredentials(challenge.clone()))
    );
    assert_eq!(
        authn.authenticate(Some(&creds("mallory", "secret"))),
        Err(Refusal::InvalidCredentials(challenge))
    );
}

#[test]
fn authenticator_from_a_header() {
    let authn = HtpasswdAuthenticator::new(Htpasswd::parse(&file()).unwrap(), "r");
    // base64("bob:p:ss w0rd")
    let creds = Credentials::from_basic_header(b"basic  Ym9iOnA6c3MgdzByZA==");
    assert_eq!(
        authn.authenticate(creds.as_ref()),
        Ok(Identity::User("bob".to_owned()))
    );
}
