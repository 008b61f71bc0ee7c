//! Bearer token verification: never panics on any input; a refusal always
//! says why. Seeds (fuzz/corpus/token) are tokens that verify, signed by
//! openssl with the certificate below, so mutations reach the signature and
//! the claims too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use registry_auth::{TokenVerifier, TrustBundle};

const ROOT: &[u8] = include_bytes!("../../registry-auth/src/token/testdata/openssl-root.pem");
/// 2027-01-15: inside the certificate's validity and the seeds' exp.
const NOW: u64 = 1_800_000_000;

fuzz_target!(|token: &str| {
    static VERIFIER: OnceLock<TokenVerifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        let bundle = TrustBundle::from_pem(ROOT).expect("the fuzz root loads");
        TokenVerifier::new("fuzz-issuer", "fuzz-service", bundle)
    });
    if let Err(e) = verifier.verify(token, NOW) {
        assert!(!e.to_string().is_empty());
    }
});
