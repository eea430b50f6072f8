//! A fake auth server whose key set and revocation feed a test changes while it runs: a key
//! rotated in without pre-publication, a feed that is blocked, replayed or restored. It
//! listens on 127.0.0.1 and counts what it was asked.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared_auth::jws::JwkSet;

/// What `GET /v1/revocations` answers.
#[derive(Debug, Clone)]
enum Feed {
    /// This signed list.
    List(String),
    /// This status, no list (a blocked or broken feed).
    Failing(StatusCode),
}

#[derive(Debug)]
struct Served {
    jwks: RwLock<JwkSet>,
    feed: RwLock<Feed>,
    jwks_fetches: AtomicUsize,
    revocation_polls: AtomicUsize,
}

/// The fake issuer; its URL is its `iss`.
#[derive(Debug, Clone)]
pub(crate) struct TestIssuer {
    pub(crate) url: String,
    served: Arc<Served>,
}

impl TestIssuer {
    /// Starts serving `jwks`, and a feed that answers 404 until a list is set.
    pub(crate) async fn start(jwks: JwkSet) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Served {
            jwks: RwLock::new(jwks),
            feed: RwLock::new(Feed::Failing(StatusCode::NOT_FOUND)),
            jwks_fetches: AtomicUsize::new(0),
            revocation_polls: AtomicUsize::new(0),
        });
        let issuer = Self { url, served };
        let router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks.json", get(key_set))
            .route("/v1/revocations", get(revocations))
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        issuer
    }

    /// Publishes `jwks` from now on (a rotation; with no pre-publication when the new key
    /// signs at once).
    pub(crate) fn publish(&self, jwks: JwkSet) {
        *self.served.jwks.write().unwrap() = jwks;
    }

    /// Serves this signed list from now on.
    pub(crate) fn serve_list(&self, compact: String) {
        *self.served.feed.write().unwrap() = Feed::List(compact);
    }

    /// Answers the feed with `status` from now on (a blocked feed).
    pub(crate) fn fail_feed(&self, status: StatusCode) {
        *self.served.feed.write().unwrap() = Feed::Failing(status);
    }

    /// How often the key set was fetched.
    pub(crate) fn jwks_fetches(&self) -> usize {
        self.served.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How often the feed was polled.
    pub(crate) fn revocation_polls(&self) -> usize {
        self.served.revocation_polls.load(Ordering::SeqCst)
    }
}

async fn metadata(State(issuer): State<TestIssuer>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "issuer": issuer.url,
        "jwks_uri": format!("{}/jwks.json", issuer.url),
        "revocation_list_uri": format!("{}/v1/revocations", issuer.url),
    }))
}

async fn key_set(State(issuer): State<TestIssuer>) -> axum::Json<JwkSet> {
    issuer.served.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(issuer.served.jwks.read().unwrap().clone())
}

async fn revocations(State(issuer): State<TestIssuer>) -> Response {
    issuer.served.revocation_polls.fetch_add(1, Ordering::SeqCst);
    let feed = issuer.served.feed.read().unwrap().clone();
    match feed {
        Feed::List(compact) => ([(header::CONTENT_TYPE, "application/jwt")], compact).into_response(),
        Feed::Failing(status) => status.into_response(),
    }
}
