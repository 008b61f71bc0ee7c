//! Serving a [`Registry`] on a listener until a shutdown future resolves.
//!
//! The caller owns both the listener and the shutdown signal, so tests bind
//! `127.0.0.1:0` and embedders decide when to stop. On shutdown the listener
//! closes at once and connections finish their requests in flight, up to
//! `drain_timeout`.

use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::registry::Registry;

/// Connection limits; the defaults suit a registry behind a load balancer.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a client may take to send request headers.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts.
    pub drain_timeout: Duration,
    /// Largest read buffer of an HTTP/1 connection: large reads make pushes cheap (fewer
    /// syscalls, fewer and larger frames to write and hash). It is also the largest
    /// request head (request line and headers) accepted.
    pub max_buf_size: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            max_buf_size: 1024 * 1024,
        }
    }
}

/// Serves `registry` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_buf_size);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let registry = registry.clone();
            async move { Ok::<_, std::convert::Infallible>(registry.handle(request).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
    }
    Ok(())
}
