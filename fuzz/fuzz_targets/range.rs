//! Content-Range and Range parsing: never panics; resolved ranges stay inside the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::range::{parse_content_range, ByteRange};

fuzz_target!(|input: (u32, &str)| {
    if let Ok(r) = parse_content_range(input.1) {
        assert!(r.start <= r.end);
    }
    if let Ok(Some(r)) = ByteRange::parse(input.1) {
        let len = u64::from(input.0);
        if let Ok((a, b)) = r.resolve(len) {
            assert!(a <= b && b < len);
        }
    }
});
