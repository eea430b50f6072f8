//! The smallest protected axum service built on shared-auth alone (no service-kit): one route
//! that greets the caller named by a valid access token, and 401/403/503 answers as RFC 6750
//! says otherwise.
//!
//! ```sh
//! cargo run -p platform                                   # in another terminal
//! cargo run -p shared-auth --example protected_axum       # listens on 127.0.0.1:8095
//! curl -s http://127.0.0.1:8095/hello -H "authorization: Bearer $TOKEN"
//! ```

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use shared_auth::keys::KeyCacheSettings;
use shared_auth::revocation::RevocationSettings;
use shared_auth::{Authenticated, KeyCache, Revocations, Verifier, VerifierSettings};

/// The router's state: the extractors find the verifier in it.
#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
}

/// Greets the caller.
async fn hello(caller: Authenticated) -> String {
    format!("hello, {}\n", caller.preferred_username.as_deref().unwrap_or(&caller.sub))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = std::env::var("AUTH_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    // Tokens from the platform's login are for users-service and orders-service; a service of
    // your own registers its own audience.
    let audience = std::env::var("AUTH_AUDIENCE").unwrap_or_else(|_| "users-service".into());
    let data_dir = std::env::temp_dir().join("protected-axum-example");
    let keys = KeyCache::new(KeyCacheSettings {
        cache_file: Some(data_dir.join("jwks.json")),
        ..KeyCacheSettings::new(&issuer)
    })?;
    let revocations = Revocations::new(
        RevocationSettings {
            cache_file: Some(data_dir.join("revocations.jwt")),
            ..RevocationSettings::default()
        },
        keys.clone(),
    );
    let verifier = Verifier::new(VerifierSettings::new(&issuer, &audience), keys, revocations);
    verifier.start_background_refresh();
    let app = Router::new().route("/hello", get(hello)).with_state(AppState { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8095").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
