//! Manifest validation: never panics, whatever the bytes and content type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::manifest::{validate, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

fuzz_target!(|input: (u8, &[u8])| {
    let types = [None, Some(OCI_MANIFEST), Some(OCI_INDEX), Some(DOCKER_MANIFEST), Some(DOCKER_LIST), Some("application/json")];
    let content_type = types[input.0 as usize % types.len()];
    if let Ok(m) = validate(content_type, input.1) {
        assert!(m.required_blobs().count() <= m.layers.len() + 1);
    }
});
