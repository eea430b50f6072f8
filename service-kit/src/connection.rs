//! One HTTP/1.1 connection under deadlines, so that a client cannot hold a connection (and its
//! file descriptor) by sending nothing, sending a request head slowly, or idling forever.
//!
//! The rules are Go's `ReadHeaderTimeout` and `IdleTimeout`, which hyper alone cannot express:
//! hyper's `header_read_timeout` starts as soon as a response is written, so it would also cut
//! idle keep-alive connections after the (short) header timeout, and a proxy that pools
//! connections for longer would then race our close with its next request.
//!
//! - The first request head must be complete within the header-read timeout of the accept.
//! - A later request head must be complete within the header-read timeout of its first byte.
//! - A connection with no request being handled and no bytes moving for the idle timeout is
//!   closed. Bytes of a response being written count as movement, so a slow reader keeps its
//!   connection only while it actually reads.
//! - While a handler runs there is no connection deadline: the request timeout of the standard
//!   layers bounds it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tower::Service as _;

/// Largest request head (request line and headers) accepted; larger gets 431. Bounds the memory
/// a connection can make the server hold while its head arrives.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Largest read or write buffer of a connection (hyper's default is about 400 KiB each); request
/// bodies are limited to 64 KiB anyway, and larger responses are written in turns.
const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// The two connection deadlines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// Time to deliver a complete request head.
    pub(crate) header_read: Duration,
    /// Time a connection may stay open with nothing happening on it.
    pub(crate) idle: Duration,
}

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request head did not arrive in time.
    HeaderRead,
    /// Nothing happened for the idle timeout.
    Idle,
}

impl Expiry {
    fn as_str(self) -> &'static str {
        match self {
            Self::HeaderRead => "header_read",
            Self::Idle => "idle",
        }
    }
}

/// What the connection is doing, shared by its socket (which sees bytes move), its service
/// (which sees requests start and end) and its watcher (which enforces the deadlines). Times
/// are milliseconds since the accept; atomics, because the socket is polled on the hot path.
#[derive(Debug)]
struct Activity {
    accepted: Instant,
    /// Requests whose handler is running.
    in_flight: AtomicUsize,
    /// Whether any request has been handled yet.
    served_any: AtomicBool,
    /// When the first byte of the next request head arrived; `u64::MAX` while none has.
    head_started: AtomicU64,
    /// When the last byte was read or written.
    last_io: AtomicU64,
    /// Wakes the watcher when a deadline moves closer.
    changed: Notify,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served_any: AtomicBool::new(false),
            head_started: AtomicU64::new(NO_HEAD),
            last_io: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.accepted + Duration::from_millis(millis)
    }

    fn bytes_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes with no handler running start the next request head (body bytes arrive while
        // the handler reads them).
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.compare_exchange(NO_HEAD, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn bytes_written(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served_any.store(true, Ordering::Release);
        self.head_started.store(NO_HEAD, Ordering::Release);
        InFlight(self.clone())
    }

    /// When the connection expires if nothing changes, and why; `None` while a handler runs.
    fn deadline(&self, deadlines: Deadlines) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.served_any.load(Ordering::Acquire) {
            return Some((self.accepted + deadlines.header_read, Expiry::HeaderRead));
        }
        match self.head_started.load(Ordering::Acquire) {
            NO_HEAD => Some((self.at(self.last_io.load(Ordering::Relaxed)) + deadlines.idle, Expiry::Idle)),
            started => Some((self.at(started) + deadlines.header_read, Expiry::HeaderRead)),
        }
    }
}

/// A running handler; dropped when its response is ready (or the connection goes away).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.last_io.store(self.0.now(), Ordering::Relaxed);
            self.0.changed.notify_one();
        }
    }
}

/// The socket, reporting every byte that moves to the connection's [`Activity`].
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(context, buffer);
        if buffer.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(context, buffer);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(context, buffers);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}

/// Serves one accepted connection until it ends, expires, or (after `stop` fires) finishes its
/// in-flight request. Holds `slot` (its share of the connection limit) until then.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    deadlines: Deadlines,
    mut stop: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked { stream, activity: activity.clone() });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` would give handlers (login throttling
        // reads the peer address through it).
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = requests.request_started();
        let response = app.clone().call(request);
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // Our watcher enforces the header deadline (see the module documentation); hyper's own
        // would also close idle keep-alive connections.
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUFFER_BYTES);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    let _slot = slot;
    metrics::gauge!("http_connections_open").increment(1);
    loop {
        let deadline = activity.deadline(deadlines);
        // While a handler runs, look again after the idle timeout (or sooner, when notified).
        let wake = deadline.map_or_else(|| Instant::now() + deadlines.idle, |(at, _)| at);
        tokio::select! {
            outcome = connection.as_mut() => {
                if let Err(error) = outcome {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(wake) => {
                if let Some((at, expiry)) = activity.deadline(deadlines)
                    && at <= Instant::now()
                {
                    tracing::debug!(%peer, timeout = expiry.as_str(), "closing the connection");
                    metrics::counter!("http_connections_timed_out_total", "timeout" => expiry.as_str())
                        .increment(1);
                    break;
                }
            }
            () = activity.changed.notified() => {}
            changed = stop.changed(), if !stopping => {
                stopping = true;
                // Finish the request in flight, then close; an idle connection closes now.
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
    metrics::gauge!("http_connections_open").decrement(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines =
        Deadlines { header_read: Duration::from_secs(10), idle: Duration::from_secs(75) };

    #[test]
    fn a_new_connection_has_the_header_deadline_from_its_accept() {
        let activity = Activity::new();

        activity.bytes_read();

        assert_eq!(
            activity.deadline(DEADLINES),
            Some((activity.accepted + DEADLINES.header_read, Expiry::HeaderRead))
        );
    }

    #[test]
    fn a_running_handler_has_no_deadline_and_its_end_starts_the_idle_one() {
        let activity = Arc::new(Activity::new());

        let in_flight = activity.request_started();
        let while_running = activity.deadline(DEADLINES);
        drop(in_flight);

        assert_eq!(while_running, None);
        assert!(matches!(activity.deadline(DEADLINES), Some((_, Expiry::Idle))));
    }

    #[test]
    fn bytes_after_a_response_start_the_next_heads_deadline() {
        let activity = Arc::new(Activity::new());
        drop(activity.request_started());

        activity.bytes_read();

        assert!(matches!(activity.deadline(DEADLINES), Some((_, Expiry::HeaderRead))));
        drop(activity.request_started());
        assert!(matches!(activity.deadline(DEADLINES), Some((_, Expiry::Idle))));
    }
}
