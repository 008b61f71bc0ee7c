//! Serving a [`Registry`] on a listener until a shutdown future resolves.
//!
//! The caller owns both the listener and the shutdown signal, so tests bind
//! `127.0.0.1:0` and embedders decide when to stop. On shutdown the listener
//! closes at once and connections finish their requests in flight, up to
//! `drain_timeout`. With TLS, the handshake runs in the connection's own task
//! (a slow client cannot stall the accept loop) under `handshake_timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::idle::IdleTimeout;
use crate::registry::Registry;

/// Connection limits and TLS; the defaults suit a registry behind a load balancer.
#[derive(Clone)]
pub struct ServeOptions {
    /// How long a client may take to send request headers.
    pub header_read_timeout: Duration,
    /// How long a connection may go without reading or writing a byte
    /// (idle keep-alive connections, clients that connect and send nothing).
    pub idle_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long in-flight requests may run after shutdown starts.
    pub drain_timeout: Duration,
    /// Terminate TLS with this configuration (HTTP/2 and HTTP/1.1 by ALPN).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Largest read buffer of an HTTP/1 connection: large reads make pushes cheap (fewer
    /// syscalls, fewer and larger frames to write and hash). It is also the largest
    /// request head (request line and headers) accepted.
    pub max_buf_size: usize,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("tls", &self.tls.is_some())
            .field("max_buf_size", &self.max_buf_size)
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            tls: None,
            max_buf_size: 1024 * 1024,
        }
    }
}

/// Any byte stream a connection runs on: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

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
        // A client may shut its write side once the request is sent (HTTP/1.1 allows it;
        // `nc -N` and some proxies do). Without this, hyper may close the connection on
        // that EOF before the answer is written, and the client gets nothing.
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_buf_size);
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let (watcher_tx, watcher_rx) = tokio::sync::watch::channel(false);
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
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let handshake_timeout = options.handshake_timeout;
        let stream = IdleTimeout::new(stream, options.idle_timeout);
        let watch = graceful.watcher();
        let mut stop = watcher_rx.clone();
        tokio::spawn(async move {
            let over_tls = acceptor.is_some();
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(stream),
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if *stop.borrow_and_update() {
                return;
            }
            let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                let registry = registry.clone();
                request
                    .extensions_mut()
                    .insert(crate::registry::PeerAddr(peer));
                if over_tls {
                    request.extensions_mut().insert(crate::registry::OverTls);
                }
                async move { Ok::<_, std::convert::Infallible>(registry.handle(request).await) }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(e) = watch.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = watcher_tx.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
    }
    Ok(())
}

/// Serves the metrics (and the health probes) on their own listener,
/// without authentication, until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Registry,
    path: String,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let path = Arc::new(path);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let registry = registry.clone();
        let path = Arc::clone(&path);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let registry = registry.clone();
                let path = Arc::clone(&path);
                async move {
                    let response = if request.uri().path() == path.as_str() {
                        crate::reply::Reply::bytes(
                            http::StatusCode::OK,
                            "text/plain; version=0.0.4",
                            registry.metrics_text(),
                        )
                        .into_response()
                    } else {
                        match registry.probe(request.uri().path()).await {
                            Some(response) => response,
                            None => crate::reply::Reply::empty(http::StatusCode::NOT_FOUND)
                                .into_response(),
                        }
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
