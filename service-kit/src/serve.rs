//! Serving a router until SIGTERM or Ctrl-C, then draining in-flight requests; with a cap on
//! concurrent connections and the deadlines of [`connection`](crate::connection).
//!
//! `axum::serve` has neither: 20,000 half-open connections from one client once exhausted a
//! service's file descriptors, and `/healthz` timed out. Here a connection holds one of
//! `max_connections` slots; with all taken, the server stops accepting and new connections wait
//! in the kernel's listen backlog (using no descriptor of ours) until a slot frees. The
//! deadlines make sure slots do free: a client that sends nothing, or half a request line, is
//! closed after the header-read timeout.
//!
//! Only HTTP/1.1 is served. `axum::serve` also spoke cleartext HTTP/2 (prior knowledge), which
//! no client of these plain-HTTP ports uses (TLS ends at the proxy, which speaks HTTP/1.1 to
//! us), and whose connection setup has no timeout in hyper.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::connection::{Deadlines, serve_connection};

/// How many connections a listener serves at once, and how long a connection may take to send
/// a request head or stay idle. The defaults are what `MAX_CONNECTIONS`, `HEADER_READ_TIMEOUT_SECS`
/// and `IDLE_TIMEOUT_SECS` default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: u32,
    /// Time to deliver a complete request head: from the accept for the first request, from
    /// its first byte for a later one on the same connection.
    pub header_read_timeout: Duration,
    /// A connection with no request being handled and no bytes moving for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// Serves `app` until SIGTERM or Ctrl-C, then drains in-flight requests, with the default
/// [`ConnectionLimits`]. Binaries use [`ServerArgs::serve`](crate::ServerArgs::serve), which
/// takes the limits (and a management listener) from the command line.
pub async fn serve(listener: TcpListener, app: Router) -> anyhow::Result<()> {
    crate::file_limit::raise_file_limit();
    serve_with(listener, app, ConnectionLimits::default(), shutdown_signal()).await
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves; then stops accepting,
/// lets every connection finish its request in flight, and returns once all are closed.
/// Handlers can extract `ConnectInfo<SocketAddr>`, the peer address.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, max_connections = limits.max_connections, "listening");
    let deadlines = Deadlines { header_read: limits.header_read_timeout, idle: limits.idle_timeout };
    let slots = Arc::new(Semaphore::new(usize::try_from(limits.max_connections)?));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_full_warning: Option<Instant> = None;
    'accepting: loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_full_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(%address, max_connections = limits.max_connections,
                        "connection limit reached; new connections wait until one closes");
                    last_full_warning = Some(Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot?,
                    () = &mut shutdown => break 'accepting,
                }
            }
        };
        let (stream, peer) = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => break accepted,
                    Err(error) => wait_after_accept_error(&error).await,
                },
                () = &mut shutdown => break 'accepting,
            }
        };
        tokio::spawn(serve_connection(stream, peer, app.clone(), deadlines, stopped.clone(), slot));
    }
    // New connections are refused from here on; the open ones finish their request and close.
    drop(listener);
    let _ = stop.send(true);
    let _all_closed = slots.acquire_many(limits.max_connections).await?;
    tracing::info!(%address, "stopped");
    Ok(())
}

/// An accept error of the connection itself (the client gave up) is nothing; any other (out
/// of file descriptors, say) would recur at once, so wait a moment before accepting again.
async fn wait_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "failed to accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining");
}
