//! One module per group of endpoints; each handler quotes its request line.
//!
//! Handlers take validated route parameters and the shared state, and return
//! a [`Reply`](crate::reply::Reply) or an [`ApiError`](crate::http_error::ApiError);
//! they never render errors themselves.

pub mod base;
pub mod blobs;
pub mod listing;
pub mod manifests;
pub mod referrers;
pub mod uploads;

use http::HeaderMap;

use crate::notify::Happened;
use crate::registry::Shared;
use crate::reply::Reply;

/// Attaches the event `what` describes, built only when the registry has
/// an event sink.
pub(crate) fn noted(shared: &Shared, reply: Reply, what: impl FnOnce() -> Happened) -> Reply {
    if shared.notifying() {
        reply.event(what())
    } else {
        reply
    }
}

/// A header as text, if present and valid.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Content-Length` as a number, if present and valid.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}
