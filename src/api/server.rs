//! The HTTP server and its limits: what a client (or an attacker without a key) can hold on this process.
//!
//! - **Connections** (hyper, HTTP/1.1): a connection must send a whole request head within
//!   [`HttpLimits::header_read_timeout`]. hyper starts that timer whenever it waits for a head — on a new
//!   connection and between keep-alive requests — so it is also the per-connection idle timeout: idle,
//!   slowloris (headers a byte at a time) and finished keep-alive connections are all closed after it.
//! - **Request bodies** (tower-http): no more than [`HttpLimits::body_idle_timeout`] between two pieces of a body
//!   (`RequestBodyTimeoutLayer`), and a JSON body must arrive whole within [`HttpLimits::json_body_deadline`]
//!   (`RequestBodyDeadlineLayer`, on the routes that take JSON; CSV uploads may be large and only have the idle
//!   timeout). A body that times out answers **408**.
//! - **Concurrency** (tower): at most [`HttpLimits::max_concurrent_requests`] API requests at once across every
//!   connection (`GlobalConcurrencyLimitLayer` behind `LoadShedLayer`); one more answers **429** at once instead
//!   of queueing. The service routes (`/healthz`, `/metrics`, the OpenAPI document) are outside the limit, so a
//!   flood of slow requests cannot make a load balancer think the node is dead.
//! - Body sizes (413) and JSON depth (400) are checked where bodies are read ([`super::extract`]).
//! - **TLS** (rustls, when `[api] tls_cert_file` / `tls_key_file` are set): each accepted connection does its TLS
//!   handshake in its own task, within [`HttpLimits::header_read_timeout`] (a client that opens a connection and
//!   never finishes the handshake is closed like a slowloris one); then the same hyper connection as above runs on
//!   the decrypted stream, so every limit here applies unchanged. A plain-HTTP request to a TLS port fails the
//!   handshake and the connection is closed.

use super::ApiState;
use super::error::ApiError;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;

/// Default time to receive a request head (also the idle timeout of a connection).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest pause inside a request body.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to receive a whole JSON body.
pub const DEFAULT_JSON_BODY_DEADLINE: Duration = Duration::from_secs(30);
/// Default most API requests served at once.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
/// Default deepest JSON nesting accepted in a body.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;

/// Connection and request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub json_body_deadline: Duration,
    pub max_concurrent_requests: usize,
    pub max_json_depth: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            json_body_deadline: DEFAULT_JSON_BODY_DEADLINE,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

/// The answer to a request refused by the concurrency limit (or failed by another tower layer).
pub async fn overloaded(e: tower::BoxError) -> ApiError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in progress; try again shortly",
        )
    } else {
        ApiError::internal(format!("request failed: {e}"))
    }
}

/// Serves the API on `listener` until `shutdown` resolves; then stops accepting and lets requests in progress
/// finish. With `tls`, every connection is HTTPS (see the module documentation).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.http;
    let router = super::routes::router(state);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "api: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let ended = match acceptor {
                None => serve_connection(stream, service, limits, watcher).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(tls, service, limits, watcher).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "api: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "api: TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::trace!(error = %e, "api connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One HTTP/1.1 connection on `io` (a TCP or TLS stream), with the head timeout, until it ends or the server
/// shuts down gracefully.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<axum::Router>,
    limits: HttpLimits,
    watcher: hyper_util::server::graceful::Watcher,
) -> hyper::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service);
    watcher.watch(conn).await
}
