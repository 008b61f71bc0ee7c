//! Embedding the registry in another Rust service.
//!
//! The registry is a library: build it from a store and auth policy, then
//! either serve it on a listener you own, or route requests to
//! [`Registry::handle`] from your own HTTP stack. This example serves it
//! under `/v2/` next to a route of its own (`/hello`), using an in-memory
//! store, with a single user `demo:demo` checked by an htpasswd entry.
//!
//! Run: `cargo run -p registry-bin --example embed`, then
//! `curl -u demo:demo http://127.0.0.1:5001/v2/` answers `{}`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use registry_auth::{AuthenticatedOnly, Htpasswd, HtpasswdAuthenticator};
use registry_bin::reply::Body;
use registry_bin::Registry;
use registry_storage::{MemoryBackend, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hash = bcrypt::hash("demo", 5)?;
    let users = Htpasswd::parse(&format!("demo:{hash}"))?;
    let registry = Registry::builder(Store::new(Arc::new(MemoryBackend::new())))
        .authenticator(Arc::new(HtpasswdAuthenticator::new(users, "embedded")))
        .authorizer(Arc::new(AuthenticatedOnly))
        .build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:5001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let registry = registry.clone();
                async move {
                    if req.uri().path().starts_with("/v2") {
                        return Ok::<_, Infallible>(registry.handle(req).await);
                    }
                    let hello: Body =
                        Full::new(Bytes::from_static(b"hello from the host service\n"))
                            .map_err(|never| match never {})
                            .boxed_unsync();
                    Ok(Response::new(hello))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
