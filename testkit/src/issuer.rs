//! A stand-in auth server: publishes discovery, a key set and an (empty) revocation list,
//! signs whatever claims a test asks for, and answers client-credentials and token-exchange
//! requests. A test that forges tokens byte by byte can have it
//! publish keys the test holds as well ([`FakeIssuer::start_publishing`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use shared_auth::AccessClaims;
use shared_auth::claims::{ACCESS_TOKEN_TYPE, Actor};
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
    exchange_requests: AtomicUsize,
    refusing_exchanges: AtomicBool,
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
                exchange_requests: AtomicUsize::new(0),
                refusing_exchanges: AtomicBool::new(false),
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

    /// How many token exchanges were answered (refused ones included).
    pub fn exchange_requests(&self) -> usize {
        self.inner.exchange_requests.load(Ordering::SeqCst)
    }

    /// From now on, answer every token exchange with `invalid_grant` (or, with `false`, issue
    /// tokens again), as the auth server does for a revoked or expired user token.
    pub fn refuse_exchanges(&self, refuse: bool) {
        self.inner.refusing_exchanges.store(refuse, Ordering::SeqCst);
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
            cnf: None,
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

/// Answers the token endpoint: a `users:read` service token for `users-service` to any
/// client-credentials request, and to a token exchange the subject token's user (`sub`,
/// `sid`, name, roles, scope) for the one requested audience, with `act` naming the client of
/// the HTTP Basic credentials. Nothing is authenticated or verified: it is a stand-in.
async fn token(
    State(issuer): State<FakeIssuer>,
    headers: axum::http::HeaderMap,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> axum::response::Response {
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            issuer.inner.token_requests.fetch_add(1, Ordering::SeqCst);
            let claims = issuer.service_claims("orders-service", "users:read", "users-service");
            token_response(&issuer.sign(&claims), &claims, None)
        }
        Some(TOKEN_EXCHANGE_GRANT) => {
            issuer.inner.exchange_requests.fetch_add(1, Ordering::SeqCst);
            match exchanged_claims(&issuer, &headers, &form) {
                Some(claims) => token_response(&issuer.sign(&claims), &claims, Some(ACCESS_TOKEN_TOKEN_TYPE)),
                None => oauth_error("invalid_grant"),
            }
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The claims of the token a token exchange issues, or `None` to refuse it.
fn exchanged_claims(
    issuer: &FakeIssuer,
    headers: &axum::http::HeaderMap,
    form: &HashMap<String, String>,
) -> Option<AccessClaims> {
    if issuer.inner.refusing_exchanges.load(Ordering::SeqCst) {
        return None;
    }
    let subject = jws::split_compact(form.get("subject_token")?).ok()?;
    let subject: AccessClaims = serde_json::from_slice(&subject.payload).ok()?;
    let client_id = basic_client_id(headers)?;
    let now = unix_now_i64();
    Some(AccessClaims {
        aud: vec![form.get("audience").or_else(|| form.get("resource"))?.clone()],
        iat: now,
        nbf: Some(now),
        exp: subject.exp.min(now + 900),
        jti: uuid::Uuid::new_v4().simple().to_string(),
        act: Some(Actor { sub: client_id.clone(), act: subject.act.clone().map(Box::new) }),
        cnf: None,
        client_id,
        ..subject
    })
}

/// The client id of `Authorization: Basic`.
fn basic_client_id(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (client_id, _) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(client_id.to_owned())
}

fn token_response(
    access_token: &str,
    claims: &AccessClaims,
    issued_token_type: Option<&str>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut body = serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": claims.exp.saturating_sub(unix_now_i64()).max(0),
        "scope": claims.scope,
    });
    if let Some(issued_token_type) = issued_token_type {
        body["issued_token_type"] = issued_token_type.into();
    }
    axum::Json(body).into_response()
}

fn oauth_error(error: &str) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": error }))).into_response()
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
