//! The server loop: the connection cap, the header-read and idle timeouts, the peer address and
//! graceful shutdown, over real TCP on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use service_kit::{App, ConnectionLimits, Readiness, ReadinessCheck, ReadyStatus};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;

/// Long enough for anything this suite waits for, on the slowest machine; a wait that runs out
/// fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn ready() -> ReadinessCheck {
    Arc::new(|| Box::pin(std::future::ready(Readiness::from_checks([("database", ReadyStatus::Ready)]))))
}

/// The standard application around no API, as every binary builds it.
fn app() -> Router {
    App::new("test-service", OpenApiRouter::new(), ready()).build().0
}

/// Serves `router` within `limits` on a free loopback port until the test ends.
pub(crate) async fn start(router: Router, limits: ConnectionLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(service_kit::serve_with(listener, router, limits, std::future::pending()));
    address
}

fn limits(max_connections: u32, header_read_secs: u64, idle_secs: u64) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        header_read_timeout: Duration::from_secs(header_read_secs),
        idle_timeout: Duration::from_secs(idle_secs),
    }
}

/// Reads one response (head and `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                .map_or(0, |value| value.trim().parse::<usize>().unwrap());
            if received.len() >= head_end + 4 + length {
                return text;
            }
        }
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "connection closed mid-response: {text:?}");
        received.extend_from_slice(&buffer[..read]);
    }
}

/// Sends `GET /healthz` on `stream` and returns the response.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream.write_all(HEALTHZ).await.unwrap();
    tokio::time::timeout(PATIENCE, read_response(stream)).await.expect("no answer")
}

/// Waits until the server closes `stream`, and returns what it sent before that.
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await.expect("still open") {
            Ok(0) | Err(_) => return received,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

#[tokio::test]
async fn stalled_connections_beyond_the_cap_are_closed_by_the_header_timeout_and_healthz_still_answers() {
    service_kit::raise_file_limit();
    let address = start(app(), limits(50, 1, 600)).await;

    // 300 connections, six times the cap: half send half a request line, half nothing at all.
    let mut stalled = Vec::new();
    for index in 0..300 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        if index % 2 == 0 {
            stream.write_all(b"GET /heal").await.unwrap();
        }
        stalled.push(stream);
    }
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let healthz = client.get(format!("http://{address}/healthz")).send().await.unwrap();

    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap(), "ok");
    for stream in &mut stalled {
        let answer = closed_by_server(stream).await;
        assert!(answer.is_empty(), "a stalled connection got {:?}", String::from_utf8_lossy(&answer));
    }
}

#[tokio::test]
async fn at_the_cap_a_new_connection_is_served_only_once_another_closes() {
    let address = start(app(), limits(2, 600, 600)).await;
    let mut first = TcpStream::connect(address).await.unwrap();
    let mut second = TcpStream::connect(address).await.unwrap();
    assert!(healthz_on(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(healthz_on(&mut second).await.starts_with("HTTP/1.1 200"));

    let mut third = TcpStream::connect(address).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0_u8; 1];
    let while_full = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    drop(first);
    let once_one_closed =
        tokio::time::timeout(PATIENCE, read_response(&mut third)).await.expect("never served");

    assert!(while_full.is_err(), "a third connection was served beyond a cap of two");
    assert!(once_one_closed.starts_with("HTTP/1.1 200"), "{once_one_closed}");
}

#[tokio::test]
async fn a_later_request_head_has_the_header_timeout_from_its_first_byte() {
    let address = start(app(), limits(10, 1, 600)).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));

    stream.write_all(b"GET /heal").await.unwrap();
    let answer = closed_by_server(&mut stream).await;

    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_after_the_idle_timeout() {
    let address = start(app(), limits(10, 1, 3)).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));

    // Idle for longer than the header timeout: the connection is still there for a request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = healthz_on(&mut stream).await;
    let after_idling = closed_by_server(&mut stream).await;

    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(after_idling.is_empty(), "{:?}", String::from_utf8_lossy(&after_idling));
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let router = Router::new()
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }));
    let address = start(router, ConnectionLimits::default()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();

    stream.write_all(b"GET /peer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let response = read_response(&mut stream).await;

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(&stream.local_addr().unwrap().to_string()), "{response}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_request_in_flight_finish() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (handler_entered, handler_release) = (entered.clone(), release.clone());
    let router = Router::new().route(
        "/slow",
        get(move || async move {
            handler_entered.notify_one();
            handler_release.notified().await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(service_kit::serve_with(listener, router, ConnectionLimits::default(), async {
            let _ = stopped.await;
        }));
    let request = tokio::spawn(reqwest::get(format!("http://{address}/slow")));
    tokio::time::timeout(PATIENCE, entered.notified()).await.unwrap();

    stop.send(()).unwrap();
    release.notify_one();
    let response = tokio::time::timeout(PATIENCE, request).await.unwrap().unwrap().unwrap();
    let finished = tokio::time::timeout(PATIENCE, server).await.expect("did not drain").unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    assert!(finished.is_ok(), "{finished:?}");
    assert!(TcpStream::connect(address).await.is_err(), "still accepting after shutdown");
}
