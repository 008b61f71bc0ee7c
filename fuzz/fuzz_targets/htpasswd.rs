//! htpasswd parsing: never panics; errors always name a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_auth::Htpasswd;

fuzz_target!(|text: &str| {
    if let Err(e) = Htpasswd::parse(text) {
        assert!(!e.to_string().is_empty());
    }
});
