//! A small fault-injecting HTTP proxy the tests own. It sits between the services and the auth
//! server (its URL is the issuer), forwards everything, counts key-set fetches, and can make
//! the key-set endpoint fail in the ways a real network or a broken deploy does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const JWKS_PATH: &str = "/.well-known/jwks.json";

/// How the proxy answers key-set requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Forward unchanged.
    None = 0,
    /// 500 Internal Server Error.
    ServerError = 1,
    /// 200 with a body that is not a key set.
    Garbage = 2,
    /// 200 with an 8 MiB body.
    Huge = 3,
    /// Never answer.
    Hang = 4,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    fault: Arc<AtomicU8>,
    jwks_fetches: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// The proxy; cheap to clone.
#[derive(Clone)]
pub struct FaultProxy {
    url: String,
    shared: Shared,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FaultProxy").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: String) -> Self {
        let shared = Shared {
            upstream,
            fault: Arc::new(AtomicU8::new(Fault::None as u8)),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        };
        let url = testkit::serve(Router::new().fallback(forward).with_state(shared.clone())).await;
        Self { url, shared }
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Sets the key-set fault.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.fault.store(fault as u8, Ordering::SeqCst);
    }

    /// Key-set requests seen so far (whatever the fault).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let path = request.uri().path_and_query().map(|path| path.as_str().to_owned()).unwrap_or_default();
    if request.uri().path() == JWKS_PATH {
        shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        match shared.fault.load(Ordering::SeqCst) {
            1 => return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
            2 => return (StatusCode::OK, "<html>this is not a key set</html>").into_response(),
            3 => return (StatusCode::OK, Body::from(vec![b' '; 8 * 1024 * 1024])).into_response(),
            4 => std::future::pending::<()>().await,
            _ => {}
        }
    }
    let method = request.method().clone();
    let mut headers: HeaderMap = request.headers().clone();
    headers.remove(axum::http::header::HOST);
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1024 * 1024).await.unwrap_or_default();
    let upstream = shared
        .http
        .request(method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            let mut reply = (status, body).into_response();
            for (name, value) in &headers {
                if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING
                {
                    reply.headers_mut().insert(name, value.clone());
                }
            }
            reply
        }
        // The auth server is down: what a client of a dead upstream behind a proxy sees.
        Err(_) => (StatusCode::BAD_GATEWAY, "auth server unreachable").into_response(),
    }
}
