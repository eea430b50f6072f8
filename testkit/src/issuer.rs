//! A stand-in auth server: publishes discovery, a key set and an (empty) revocation list, and
//! signs whatever claims a test asks for. A test that forges tokens byte by byte can have it
//! publish keys the test holds as well ([`FakeIssuer::start_publishing`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use shared_auth::AccessClaims;
use shared_auth::claims::ACCESS_TOKEN_TYPE;
use shared_auth::jws::{self, Algorithm, Jwk, JwkSet, SigningKey};
use shared_auth::revocation::{REVOCATION_LIST_TYPE, RevocationList};
use shared_auth::time::unix_now_i64;

/// A fake issuer on a loopback port.
#[derive(Clone)]
pub struct FakeIssuer {
    /// Its base URL (the `iss` of its tokens).
    pub url: String,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeIssuer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FakeIssuer").field("url", &self.url).finish_non_exhaustive()
    }
}

struct Inner {
    key: SigningKey,
    kid: String,
    /// Public keys published besides its own, whose private halves a test holds.
    published: Vec<Jwk>,
    jwks_fetches: AtomicUsize,
    token_requests: AtomicUsize,
}

impl FakeIssuer {
    /// Starts an issuer with a fresh EdDSA key.
    pub async fn start() -> Self {
        Self::start_with(Algorithm::EdDSA).await
    }

    /// Starts an issuer with a fresh key of `algorithm`.
    pub async fn start_with(algorithm: Algorithm) -> Self {
        Self::start_inner(algorithm, Vec::new()).await
    }

    /// Starts an issuer with a fresh EdDSA key that also publishes `keys` in its key set: for
    /// tests that sign tokens themselves (forged headers, several algorithms) with keys they
    /// hold. Its own key still signs [`sign`](Self::sign) and the revocation list.
    pub async fn start_publishing(keys: impl IntoIterator<Item = Jwk>) -> Self {
        Self::start_inner(Algorithm::EdDSA, keys.into_iter().collect()).await
    }

    async fn start_inner(algorithm: Algorithm, published: Vec<Jwk>) -> Self {
        let key = SigningKey::generate(algorithm).unwrap();
        let kid = key.verifying_key().thumbprint();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Self {
            url,
            inner: Arc::new(Inner {
                key,
                kid,
                published,
                jwks_fetches: AtomicUsize::new(0),
                token_requests: AtomicUsize::new(0),
            }),
        };
        let router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/v1/revocations", get(revocations))
            .route("/oauth2/token", post(token))
            .with_state(issuer.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        issuer
    }

    /// The public key set: its own key, then any published with
    /// [`start_publishing`](Self::start_publishing).
    pub fn jwks(&self) -> JwkSet {
        let own = self.inner.key.verifying_key().to_jwk(&self.inner.kid);
        JwkSet { keys: std::iter::once(own).chain(self.inner.published.iter().cloned()).collect() }
    }

    /// How often the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many client-credentials tokens were issued.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Claims of a valid user token for `audience`, to adjust before [`sign`](Self::sign).
    pub fn user_claims(&self, sub: &str, username: &str, audience: &str) -> AccessClaims {
        let now = unix_now_i64();
        AccessClaims {
            iss: self.url.clone(),
            sub: sub.into(),
            aud: vec![audience.into()],
            exp: now + 900,
            iat: now,
            nbf: Some(now),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            client_id: "platform".into(),
            scope: Some("profile:read profile:write orders:read orders:write".into()),
            roles: vec![],
            preferred_username: Some(username.into()),
            sid: Some(uuid::Uuid::new_v4().simple().to_string()),
            act: None,
        }
    }

    /// Claims of a valid client-credentials token.
    pub fn service_claims(&self, client_id: &str, scope: &str, audience: &str) -> AccessClaims {
        AccessClaims {
            sub: client_id.into(),
            client_id: client_id.into(),
            scope: Some(scope.into()),
            preferred_username: None,
            sid: None,
            ..self.user_claims(client_id, client_id, audience)
        }
    }

    /// Signs claims as an access token.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        jws::sign_compact(&self.inner.key, &self.inner.kid, ACCESS_TOKEN_TYPE, claims).unwrap()
    }

    /// A signed user token for `audience`.
    pub fn user_token(&self, sub: &str, username: &str, audience: &str) -> String {
        self.sign(&self.user_claims(sub, username, audience))
    }
}

async fn metadata(State(issuer): State<FakeIssuer>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "issuer": issuer.url,
        "jwks_uri": format!("{}/.well-known/jwks.json", issuer.url),
        "token_endpoint": format!("{}/oauth2/token", issuer.url),
        "revocation_list_uri": format!("{}/v1/revocations", issuer.url),
    }))
}

async fn jwks(State(issuer): State<FakeIssuer>) -> axum::Json<JwkSet> {
    issuer.inner.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(issuer.jwks())
}

async fn revocations(State(issuer): State<FakeIssuer>) -> String {
    let list = RevocationList { iss: issuer.url.clone(), iat: unix_now_i64(), ..Default::default() };
    jws::sign_compact(&issuer.inner.key, &issuer.inner.kid, REVOCATION_LIST_TYPE, &list).unwrap()
}

/// Issues a `users:read` service token for `users-service` to any client-credentials request.
async fn token(State(issuer): State<FakeIssuer>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if !body.contains("grant_type=client_credentials") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    issuer.inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let claims = issuer.service_claims("orders-service", "users:read", "users-service");
    axum::Json(serde_json::json!({
        "access_token": issuer.sign(&claims),
        "token_type": "Bearer",
        "expires_in": 900,
        "scope": "users:read",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_a_test_holds_are_published_after_the_issuers_own() {
        let held = SigningKey::generate(Algorithm::ES256).unwrap();
        let issuer = FakeIssuer::start_publishing([held.verifying_key().to_jwk("held")]).await;

        let served: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", issuer.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();

        assert_eq!(served, issuer.jwks());
        let kids: Vec<Option<&str>> = served.keys.iter().map(|key| key.kid.as_deref()).collect();
        assert_eq!(kids, [Some(issuer.inner.kid.as_str()), Some("held")]);
        assert_eq!(served.keys[1], held.verifying_key().to_jwk("held"));
        assert_eq!(issuer.jwks_fetches(), 1);
    }
}
