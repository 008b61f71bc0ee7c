//! Response building: the body type every handler returns and small
//! constructors, so handlers state only status and headers.

use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use registry_storage::ByteStream;

use crate::notify::Happened;

/// The response body: empty, a small buffer, or a blob streamed from storage.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Every response carries the API version header the spec asks for.
pub const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// A response under construction; headers whose values are not valid
/// header text are dropped rather than panicking.
#[derive(Debug)]
pub struct Reply {
    response: Response<Body>,
}

impl Reply {
    /// A reply with `status` and an empty body (`Content-Length: 0`).
    pub fn empty(status: StatusCode) -> Reply {
        Reply::with_body(
            status,
            Empty::new().map_err(|never| match never {}).boxed_unsync(),
        )
        .header("content-length", "0")
    }

    /// A reply with a complete body and its length.
    pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
        let body: Bytes = body.into();
        let len = body.len().to_string();
        Reply::with_body(
            status,
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .header("content-type", content_type)
        .header("content-length", &len)
    }

    /// A reply that streams `stream`; the caller sets `Content-Length`.
    pub fn stream(status: StatusCode, stream: ByteStream) -> Reply {
        let body = StreamBody::new(stream.map_ok(Frame::data));
        Reply::with_body(status, BodyExt::boxed_unsync(body))
    }

    fn with_body(status: StatusCode, body: Body) -> Reply {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        Reply { response }.header(API_VERSION.0, API_VERSION.1)
    }

    /// Sets a header, replacing any previous value.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.response.headers_mut().insert(name, value);
        }
        self
    }

    /// Adds a header, keeping previous values (for repeated headers).
    pub fn append_header(mut self, name: &str, value: &str) -> Reply {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.response.headers_mut().append(name, value);
        }
        self
    }

    /// Drops the body but keeps every header, for HEAD requests.
    pub fn without_body(self) -> Reply {
        let (parts, _) = self.response.into_parts();
        Reply {
            response: Response::from_parts(
                parts,
                Empty::new().map_err(|never| match never {}).boxed_unsync(),
            ),
        }
    }

    /// The finished response.
    pub fn into_response(self) -> Response<Body> {
        self.response
    }

    /// The `Location` header, if set.
    pub fn location(&self) -> Option<&str> {
        self.response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
    }

    /// The declared `Content-Length`, for metrics.
    pub fn content_length(&self) -> Option<u64> {
        self.response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// The status, for logs.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// Records what the request did, for notifications; kept out of the
    /// response (see [`Reply::take_events`]).
    pub fn event(mut self, happened: Happened) -> Reply {
        let extensions = self.response.extensions_mut();
        match extensions.get_mut::<Events>() {
            Some(Events(list)) => list.push(happened),
            None => {
                extensions.insert(Events(vec![happened]));
            }
        }
        self
    }

    /// What [`Reply::event`] recorded, removed from the reply.
    pub fn take_events(&mut self) -> Vec<Happened> {
        self.response
            .extensions_mut()
            .remove::<Events>()
            .map_or_else(Vec::new, |Events(list)| list)
    }
}

/// The events of a reply, carried in its extensions until the request path takes them.
#[derive(Debug, Clone)]
struct Events(Vec<Happened>);
