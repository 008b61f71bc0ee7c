//! Digest parsing: never panics, and whatever parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::Digest;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(d) = s.parse::<Digest>() {
            assert_eq!(d.to_string(), s);
            assert_eq!(d.hex().len(), d.algorithm().hex_len());
        }
    }
});
