//! Every refusal reason, with tokens from a test issuer, and the accepted
//! forms (x5c and kid, each algorithm, aud as array, the leeway's edges).

use serde_json::{json, Value};

use super::*;
use crate::token::test_issuer::{claims, Issuer, KeyKind, KeyMode};
use crate::token::TrustBundle;

const ISS: &str = "test-issuer";
const SERVICE: &str = "registry.test";
const NOW: u64 = 1_800_000_000;

fn verifier(issuer: &Issuer) -> TokenVerifier {
    TokenVerifier::new(
        ISS,
        SERVICE,
        TrustBundle::from_pem(issuer.root_pem().as_bytes()).unwrap(),
    )
}

fn pull(repo: &str) -> Value {
    json!([{"type": "repository", "name": repo, "actions": ["pull"]}])
}

fn good_claims() -> Value {
    claims(ISS, SERVICE, "alice", NOW, pull("team/app"))
}

#[test]
fn accepts_every_algorithm_in_both_key_modes() {
    for kind in [KeyKind::Es256, KeyKind::Es384, KeyKind::Rs256] {
        let issuer = Issuer::new(kind);
        for mode in [KeyMode::X5c, KeyMode::Kid] {
            let token = issuer.token(mode, &good_claims());
            let verified = verifier(&issuer)
                .verify(&token, NOW)
                .unwrap_or_else(|e| panic!("{kind:?} {mode:?}: {e}"));
            assert_eq!(verified.subject, "alice");
            assert!(verified.grants.allows("repository", "team/app", "pull"));
            assert!(!verified.grants.allows("repository", "team/app", "push"));
            assert_eq!(verified.expires, NOW as i64 + 300);
        }
    }
}

#[test]
fn audience_may_be_an_array() {
    let issuer = Issuer::new(KeyKind::Es256);
    let mut c = good_claims();
    c["aud"] = json!(["other", SERVICE]);
    assert!(verifier(&issuer)
        .verify(&issuer.token(KeyMode::Kid, &c), NOW)
        .is_ok());
}

#[test]
fn bad_signature() {
    let issuer = Issuer::new(KeyKind::Es256);
    let token = issuer.token(KeyMode::X5c, &good_claims());
    // Claims swapped after signing: the signature no longer covers them.
    let mut other = good_claims();
    other["sub"] = json!("mallory");
    let forged = issuer.token(KeyMode::X5c, &other);
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, forged_sig) = forged.rsplit_once('.').unwrap();
    let (header, _) = head.split_once('.').unwrap();
    let (_, forged_claims) = forged.split_once('.').unwrap();
    let (forged_claims, _) = forged_claims.split_once('.').unwrap();
    let mixed = format!(
        "{header}.{forged_claims}.{}",
        token.rsplit_once('.').unwrap().1
    );
    let v = verifier(&issuer);
    assert_eq!(v.verify(&mixed, NOW), Err(TokenError::BadSignature));
    // A signature of the right length but wrong bytes.
    let zeros = format!("{head}.{}", "A".repeat(forged_sig.len()));
    assert_eq!(v.verify(&zeros, NOW), Err(TokenError::BadSignature));
    // ES256 signature of the wrong length.
    assert_eq!(
        v.verify(&format!("{head}.AAAA"), NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn signed_by_another_key_named_by_the_bundles_kid() {
    let trusted = Issuer::new(KeyKind::Es256);
    let attacker = Issuer::new(KeyKind::Es256);
    let mut header = attacker.header(KeyMode::Kid);
    header["kid"] = json!(trusted.root_kid());
    let token = attacker.sign(KeyMode::Kid, &header, &good_claims());
    assert_eq!(
        verifier(&trusted).verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn wrong_algorithm() {
    let issuer = Issuer::new(KeyKind::Es256);
    for alg in ["none", "HS256", "ES512", "PS256"] {
        let mut header = issuer.header(KeyMode::Kid);
        header["alg"] = json!(alg);
        let token = issuer.sign(KeyMode::Kid, &header, &good_claims());
        assert_eq!(
            verifier(&issuer).verify(&token, NOW),
            Err(TokenError::Algorithm(alg.into())),
            "{alg}"
        );
    }
    // An accepted alg that does not match the key (RS256 named, EC key).
    let mut header = issuer.header(KeyMode::Kid);
    header["alg"] = json!("RS256");
    let token = issuer.sign(KeyMode::Kid, &header, &good_claims());
    assert_eq!(
        verifier(&issuer).verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
    // ES384 named for a P-256 key.
    header["alg"] = json!("ES384");
    let token = issuer.sign(KeyMode::Kid, &header, &good_claims());
    assert_eq!(
        verifier(&issuer).verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn unknown_kid_and_no_key() {
    let issuer = Issuer::new(KeyKind::Es256);
    let mut header = issuer.header(KeyMode::Kid);
    header["kid"] = json!("AAAA:BBBB");
    let token = issuer.sign(KeyMode::Kid, &header, &good_claims());
    assert_eq!(
        verifier(&issuer).verify(&token, NOW),
        Err(TokenError::UnknownKeyId("AAAA:BBBB".into()))
    );
    let token = issuer.sign(KeyMode::Kid, &json!({"alg": "ES256"}), &good_claims());
    assert_eq!(
        verifier(&issuer).verify(&token, NOW),
        Err(TokenError::NoSigningKey)
    );
}

#[test]
fn chain_to_an_untrusted_root() {
    let trusted = Issuer::new(KeyKind::Es256);
    let other = Issuer::new(KeyKind::Es256);
    let token = other.token(KeyMode::X5c, &good_claims());
    assert!(matches!(
        verifier(&trusted).verify(&token, NOW),
        Err(TokenError::UntrustedChain(_))
    ));
    // The other issuer's kid is unknown to the trusted bundle too.
    let token = other.token(KeyMode::Kid, &good_claims());
    assert!(matches!(
        verifier(&trusted).verify(&token, NOW),
        Err(TokenError::UnknownKeyId(_))
    ));
}

#[test]
fn expired_signing_certificate() {
    let issuer = Issuer::with_expired_leaf(KeyKind::Es256);
    let token = issuer.token(KeyMode::X5c, &good_claims());
    let err = verifier(&issuer).verify(&token, NOW).unwrap_err();
    assert!(
        matches!(&err, TokenError::UntrustedChain(r) if r.contains("Expired")),
        "{err:?}"
    );
}

#[test]
fn expired_and_not_yet_valid_with_leeway() {
    let issuer = Issuer::new(KeyKind::Es256);
    let v = verifier(&issuer);
    let token = issuer.token(KeyMode::Kid, &good_claims());
    let exp = NOW as i64 + 300;
    let nbf = NOW as i64;
    assert!(
        v.verify(&token, exp as u64 + 60).is_ok(),
        "leeway after exp"
    );
    assert_eq!(
        v.verify(&token, exp as u64 + 61),
        Err(TokenError::Expired { exp, now: exp + 61 })
    );
    assert!(
        v.verify(&token, nbf as u64 - 60).is_ok(),
        "leeway before nbf"
    );
    assert_eq!(
        v.verify(&token, nbf as u64 - 61),
        Err(TokenError::NotYetValid { nbf, now: nbf - 61 })
    );
    // No exp at all: long expired, as in Distribution.
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        v.verify(&issuer.token(KeyMode::Kid, &c), NOW),
        Err(TokenError::Expired { exp: 0, .. })
    ));
}

#[test]
fn wrong_issuer() {
    let issuer = Issuer::new(KeyKind::Rs256);
    let mut c = good_claims();
    c["iss"] = json!("someone-else");
    assert_eq!(
        verifier(&issuer).verify(&issuer.token(KeyMode::X5c, &c), NOW),
        Err(TokenError::Issuer("someone-else".into()))
    );
}

#[test]
fn wrong_audience() {
    let issuer = Issuer::new(KeyKind::Es384);
    for aud in [json!("other"), json!(["a", "b"]), json!([])] {
        let mut c = good_claims();
        c["aud"] = aud;
        assert_eq!(
            verifier(&issuer).verify(&issuer.token(KeyMode::Kid, &c), NOW),
            Err(TokenError::Audience)
        );
    }
}

#[test]
fn malformed() {
    let issuer = Issuer::new(KeyKind::Es256);
    let v = verifier(&issuer);
    for token in ["", "x", "a.b.c", "Bearer", "...."] {
        assert!(
            matches!(v.verify(token, NOW), Err(TokenError::Malformed(_))),
            "{token:?}"
        );
    }
    // Signed claims that are not an object of the right types.
    for c in [json!("text"), json!({"exp": "soon"}), json!({"access": {}})] {
        assert!(
            matches!(
                v.verify(&issuer.token(KeyMode::Kid, &c), NOW),
                Err(TokenError::Malformed(_))
            ),
            "{c}"
        );
    }
}

/// Tokens signed by `openssl dgst` with a certificate from `openssl req`,
/// outside this crate's code (`testdata/openssl-*`): an independent signer,
/// and the kid computed by a separate script.
#[test]
fn tokens_signed_by_openssl_verify() {
    let bundle = TrustBundle::from_pem(include_bytes!("../testdata/openssl-root.pem")).unwrap();
    assert_eq!(
        bundle.key_ids().collect::<Vec<_>>(),
        ["3HO5:XDYK:PLMK:6MPY:62QD:JQJF:LOHE:3NS4:TZUO:SVOR:GVCW:6S6K"]
    );
    let v = TokenVerifier::new("fuzz-issuer", "fuzz-service", bundle);
    for token in [
        include_str!("../testdata/openssl-kid.jwt"),
        include_str!("../testdata/openssl-x5c.jwt"),
    ] {
        let verified = v.verify(token.trim(), NOW).unwrap();
        assert_eq!(verified.subject, "alice");
        assert!(verified.grants.allows("repository", "a/b", "push"));
        assert!(verified.grants.allows_catalog());
    }
}

#[test]
fn a_bundle_certificate_may_sign_as_its_own_x5c() {
    let issuer = Issuer::new(KeyKind::Es256);
    let root = issuer.header(KeyMode::X5c)["x5c"][1].clone();
    let header = json!({"alg": "ES256", "x5c": [root]});
    let token = issuer.sign(KeyMode::Kid, &header, &good_claims());
    assert!(verifier(&issuer).verify(&token, NOW).is_ok());
    // The same certificate with a leaf key's signature is refused.
    let forged = issuer.sign(KeyMode::X5c, &header, &good_claims());
    assert_eq!(
        verifier(&issuer).verify(&forged, NOW),
        Err(TokenError::BadSignature)
    );
}
