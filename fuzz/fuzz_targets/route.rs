//! Route parsing: never panics; a parsed repository name is a safe path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::{Method, Route};

fuzz_target!(|input: (u8, &str)| {
    let methods = [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete];
    let method = methods[input.0 as usize % methods.len()];
    let (path, query) = match input.1.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (input.1, None),
    };
    if let Ok(route) = Route::parse(method, path, query) {
        if let Some(name) = route.repository() {
            assert!(name.components().all(|c| !c.is_empty() && c != "." && c != ".."));
        }
    }
});
