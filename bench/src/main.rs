//! `verify-bench-server`: the same trivial route twice, `/unprotected` and `/protected` (behind
//! shared-auth's `Authenticated`), inside the full service-kit layer stack, so the load harness
//! can report the cost of token verification as a ratio. It also mints tokens for the harness
//! (`GET /tokens?count=N` → one per line) with its own key, which it installs in its verifier,
//! and for DPoP (`GET /dpop-proofs?count=N`) one token bound to a client key of its own followed
//! by N fresh proofs of that key for `GET /protected`, one per line: every proof is good once.
//!
//! Usage: `verify-bench-server ADDR [EdDSA|ES256|RS256]`. Loopback only; for benchmarks.

use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use service_kit::{App, Readiness, ReadyStatus};
use shared_auth::claims::{ACCESS_TOKEN_TYPE, Confirmation};
use shared_auth::dpop::ProofKey;
use shared_auth::jws::{self, Algorithm, JwkSet, SigningKey};
use shared_auth::keys::{KeyCache, KeyCacheSettings};
use shared_auth::revocation::{RevocationSettings, Revocations};
use shared_auth::time::unix_now_i64;
use shared_auth::{AccessClaims, Authenticated, Verifier, VerifierSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const ISSUER: &str = "http://bench.invalid";

#[derive(Clone, FromRef)]
struct BenchState {
    verifier: Verifier,
    minter: Arc<Minter>,
}

struct Minter {
    key: SigningKey,
    kid: String,
    /// The client's DPoP key, whose proofs `/dpop-proofs` makes.
    client: ProofKey,
    /// `http://ADDR/protected`, the `htu` of those proofs.
    protected_url: String,
}

/// The trivial handler, unprotected.
#[utoipa::path(get, path = "/unprotected", responses((status = 200, body = String)))]
async fn unprotected() -> &'static str {
    "ok"
}

/// The same handler behind token verification.
#[utoipa::path(get, path = "/protected", responses((status = 200, body = String), (status = 401)))]
async fn protected(_caller: Authenticated) -> &'static str {
    "ok"
}

#[derive(serde::Deserialize)]
struct Count {
    count: Option<usize>,
}

/// Mints `count` distinct valid tokens, one per line.
#[utoipa::path(get, path = "/tokens", responses((status = 200, body = String)))]
async fn tokens(State(state): State<BenchState>, Query(count): Query<Count>) -> String {
    let mut out = String::new();
    for _ in 0..count.count.unwrap_or(1).min(200_000) {
        if let Ok(token) = state.minter.token(None) {
            out.push_str(&token);
            out.push('\n');
        }
    }
    out
}

/// One token bound to the client's DPoP key, then `count` fresh proofs for `GET /protected`
/// with it, one per line.
#[utoipa::path(get, path = "/dpop-proofs", responses((status = 200, body = String)))]
async fn dpop_proofs(State(state): State<BenchState>, Query(count): Query<Count>) -> String {
    let minter = &state.minter;
    let Ok(token) = minter.token(Some(minter.client.thumbprint())) else {
        return String::new();
    };
    let now = unix_now_i64();
    let mut out = format!("{token}\n");
    for _ in 0..count.count.unwrap_or(1).min(2_000_000) {
        if let Ok(proof) = minter.client.proof("GET", &minter.protected_url, Some(&token), now) {
            out.push_str(&proof);
            out.push('\n');
        }
    }
    out
}

impl Minter {
    /// A valid access token for an hour, bound to `jkt` when given.
    fn token(&self, jkt: Option<String>) -> Result<String, jws::KeyError> {
        let now = unix_now_i64();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: "bench-user".into(),
            aud: vec!["bench".into()],
            exp: now + 3600,
            iat: now,
            nbf: Some(now),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            client_id: "platform".into(),
            scope: Some("profile".into()),
            roles: vec![],
            preferred_username: Some("bench".into()),
            sid: Some("bench-session".into()),
            act: None,
            cnf: jkt.map(|jkt| Confirmation { jkt }),
        };
        jws::sign_compact(&self.key, &self.kid, ACCESS_TOKEN_TYPE, &claims)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9090".into());
    let algorithm: Algorithm =
        args.next().unwrap_or_else(|| "EdDSA".into()).parse().map_err(anyhow::Error::msg)?;
    let key = SigningKey::generate(algorithm)?;
    let kid = key.verifying_key().thumbprint();
    let keys = KeyCache::new(KeyCacheSettings::new(ISSUER))?;
    keys.replace_keys(JwkSet { keys: vec![key.verifying_key().to_jwk(&kid)] })?;
    let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
    let public_url = format!("http://{address}");
    let mut settings = VerifierSettings::new(ISSUER, "bench").with_public_url(&public_url);
    // Room for every proof of a run: a full cache would answer 503.
    settings.dpop.replay_capacity = 5_000_000;
    let verifier = Verifier::new(settings, keys, revocations);
    // The client's proofs use the token's algorithm where DPoP allows it, else EdDSA.
    let proof_algorithm = if algorithm == Algorithm::ES256 { Algorithm::ES256 } else { Algorithm::EdDSA };
    let client = ProofKey::generate(proof_algorithm)?;
    let protected_url = format!("{public_url}/protected");
    let state = BenchState { verifier, minter: Arc::new(Minter { key, kid, client, protected_url }) };
    let api = OpenApiRouter::new()
        .routes(routes!(unprotected))
        .routes(routes!(protected))
        .routes(routes!(tokens))
        .routes(routes!(dpop_proofs))
        .with_state(state);
    let readiness = Arc::new(|| {
        Box::pin(std::future::ready(Readiness::from_checks([("keys", ReadyStatus::Ready)])))
            as futures_util::future::BoxFuture<'static, Readiness>
    });
    let (app, _) = App::new("verify-bench-server", api, readiness).build();
    service_kit::serve(tokio::net::TcpListener::bind(&address).await?, app).await
}
