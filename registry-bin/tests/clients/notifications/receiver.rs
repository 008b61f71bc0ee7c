//! A webhook receiver for the notification tests: hyper on 127.0.0.1, over
//! plain HTTP or HTTPS, that records every request (path, headers, JSON
//! body, the status it answered) and answers the status it is told to.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use registry_bin::tls::ReloadingCert;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: serde_json::Value,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    /// The envelope's events.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.body["events"].as_array().cloned().unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    log: Mutex<Vec<Received>>,
    status: AtomicU16,
}

/// A running receiver; its port closes on drop.
pub struct Receiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Listens on a free port.
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// Listens on `port` (0: a free one), answering 200.
    pub fn start_on(port: u16) -> Receiver {
        Receiver::listen(port, None)
    }

    /// Listens on a free port over HTTPS with the certificate and key in these PEM files.
    pub fn start_tls(cert: &Path, key: &Path) -> Receiver {
        let config = ReloadingCert::load(cert, key).unwrap().server_config();
        Receiver::listen(0, Some(TlsAcceptor::from(config)))
    }

    fn listen(port: u16, tls: Option<TlsAcceptor>) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::Relaxed);
        let shared = Arc::clone(&state);
        let scheme = if tls.is_some() { "https" } else { "http" };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, tls) = (Arc::clone(&shared), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, state).await,
                        // A handshake the client gives up on is its failure to count, not ours.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, state).await;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            scheme,
            state,
            runtime: Some(runtime),
        }
    }

    /// `http[s]://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The status to answer from now on.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::Relaxed);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// The events of `path` it answered with 200, in arrival order.
    pub fn accepted(&self, path: &str) -> Vec<serde_json::Value> {
        self.received()
            .iter()
            .filter(|r| r.path == path && r.status == 200)
            .flat_map(Received::events)
            .collect()
    }

    /// Waits (at most `timeout`) until `path` has accepted `n` events; returns them.
    pub fn wait_accepted(&self, path: &str, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.accepted(path);
            if events.len() >= n || Instant::now() > deadline {
                assert_eq!(
                    events.len(),
                    n,
                    "events accepted on {path} within {timeout:?}: {events:#?}"
                );
                return events;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One connection, HTTP/1.1 or HTTP/2.
async fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, state: Arc<State>) {
    let service = service_fn(move |req| record(Arc::clone(&state), req));
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn record(
    state: Arc<State>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let status = state.status.load(Ordering::Relaxed);
    state.log.lock().unwrap().push(Received {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        status,
    });
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    Ok(response)
}
