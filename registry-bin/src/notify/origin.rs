//! The request's side of an event, read from the request as Distribution
//! reads it.

use std::net::IpAddr;

use super::event::{Origin, RequestRecord};
use crate::registry::PeerAddr;

/// The [`Origin`] of the events of one request: a new request id, the
/// client's address, `Host`, method and `User-Agent`, the user, and the
/// base of absolute URLs.
pub fn origin(
    parts: &http::request::Parts,
    base_url: Option<String>,
    actor: Option<String>,
) -> Origin {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let host = match header("host") {
        "" => parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        host => host.to_owned(),
    };
    Origin {
        request: RequestRecord {
            id: uuid::Uuid::new_v4().to_string(),
            addr: client_addr(parts),
            host,
            method: parts.method.as_str().to_owned(),
            useragent: header("user-agent").to_owned(),
        },
        actor,
        base_url,
    }
}

/// The first address of `X-Forwarded-For` when it is an IP address, else
/// `X-Real-Ip` when it is one, else the peer's `ip:port` (empty when the
/// server did not record it).
fn client_addr(parts: &http::request::Parts) -> String {
    let ip = |value: &str| {
        value
            .trim()
            .parse::<IpAddr>()
            .ok()
            .map(|_| value.trim().to_owned())
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header("x-forwarded-for")
        .and_then(|list| list.split(',').next())
        .and_then(ip)
        .or_else(|| header("x-real-ip").and_then(ip))
        .or_else(|| parts.extensions.get::<PeerAddr>().map(|p| p.0.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method("HEAD").uri("/v2/");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let mut parts = builder.body(()).unwrap().into_parts().0;
        parts
            .extensions
            .insert(PeerAddr("127.0.0.1:40000".parse().unwrap()));
        parts
    }

    #[test]
    fn the_client_is_the_first_forwarded_ip_else_the_peer() {
        let addr = |h: &[(&str, &str)]| origin(&parts(h), None, None).request.addr;
        assert_eq!(
            addr(&[("x-forwarded-for", "10.1.2.3, 10.0.0.1")]),
            "10.1.2.3"
        );
        assert_eq!(
            addr(&[("x-forwarded-for", "nope"), ("x-real-ip", "::1")]),
            "::1"
        );
        assert_eq!(addr(&[("x-forwarded-for", "nope")]), "127.0.0.1:40000");
        assert_eq!(addr(&[]), "127.0.0.1:40000");
    }

    #[test]
    fn records_host_method_and_user_agent() {
        let o = origin(
            &parts(&[("host", "reg:5000"), ("user-agent", "skopeo/1.9.3")]),
            None,
            Some("alice".into()),
        );
        assert_eq!(
            (
                o.request.host.as_str(),
                o.request.method.as_str(),
                o.request.useragent.as_str()
            ),
            ("reg:5000", "HEAD", "skopeo/1.9.3")
        );
        assert_eq!(o.actor.as_deref(), Some("alice"));
        assert_ne!(o.request.id, origin(&parts(&[]), None, None).request.id);
    }
}
