//! `POST /v1/auth/login` and `POST /v1/auth/logout`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use service_kit::problem::{AppJson, Problem};
use shared_auth::{AuthError, Authenticated, VerifyError};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::oauth::dpop::{ProofRefusal, proven_key};
use crate::oauth::{FIRST_PARTY_CLIENT, TokenResponse};
use crate::routes::no_store_headers;
use crate::sessions;
use crate::state::{AppState, ClientAddress};
use crate::store::logins::{self, LoginLookup};
use crate::store::sessions::NewSession;
use crate::store::{User, users};
use crate::throttle::Decision;
use crate::tokens::{OpaqueToken, TokenRequest};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout))
}

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Username (case-insensitive).
    #[schema(example = "alice")]
    pub username: String,
    /// Password, exactly as registered.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// Checks a username and password; returns an access token and a refresh token.
///
/// Unknown users, wrong passwords and disabled accounts get byte-identical 401 responses, and
/// unknown users cost one Argon2id hash like everyone else.
///
/// With a `DPoP` proof header for this endpoint (RFC 9449), the access token is DPoP-bound to
/// the proof's key (`token_type: DPoP`, `cnf.jkt`), and so is the session: its refresh tokens
/// then need a proof of the same key. A bad proof is a 400, checked before the password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed JSON, or an invalid DPoP proof", body = Problem),
        (status = 401, description = "Invalid username or password", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Missing fields", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem),
        (status = 503, description = "Password hashing saturated", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(user_id))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: axum::http::HeaderMap,
    AppJson(request): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // Before the password: a bad proof costs no hash and no throttle attempt.
    let dpop_key = proven_key(&state, &headers, "/v1/auth/login").map_err(|refusal| match refusal {
        ProofRefusal::Invalid(error) => ApiError::InvalidDpopProof(error),
        ProofRefusal::Unavailable => ApiError::Busy,
    })?;
    let now = state.clock.now();
    let (user, attempt) =
        match check_credentials(&state, address, &request.username, &request.password).await? {
            CredentialCheck::Valid { user, attempt } => (*user, attempt),
            CredentialCheck::Invalid => return Err(ApiError::InvalidCredentials),
            CredentialCheck::Locked { retry_after } => return Err(ApiError::TooManyAttempts { retry_after }),
        };
    tracing::Span::current().record("user_id", user.id.as_str());

    // The attempt's settlement and the new session commit together.
    let config = &state.config;
    let scope = config.user_scope.clone();
    let refresh_token = OpaqueToken::generate();
    let mut transaction = state.pool.begin().await?;
    state.throttle.record_success(&mut transaction, attempt, now).await?;
    let session = NewSession {
        user_id: &user.id,
        client_id: FIRST_PARTY_CLIENT,
        scope: &scope,
        // Both lifetimes are at most ten years: no overflow.
        expires_at: now + config.refresh_token_ttl_secs.as_i64(),
        refresh_token_hash: &refresh_token.hash,
        idle_expires_at: now + config.refresh_idle_ttl_secs.as_i64(),
        browser_sid: None,
        dpop_jkt: dpop_key.as_deref(),
    };
    let sid = crate::store::sessions::create(&mut transaction, session, now).await?;
    transaction.commit().await?;

    let issued = state.tokens.issue(TokenRequest {
        subject: user.id.clone(),
        client_id: FIRST_PARTY_CLIENT.into(),
        scope: scope.clone(),
        audiences: config.token_audiences.clone(),
        roles: user.roles.clone(),
        username: Some(user.username.clone()),
        sid: Some(sid),
        idp: None,
        bound_key: dpop_key,
    })?;
    metrics::counter!("logins_total", "outcome" => "success").increment(1);
    tracing::info!(user_id = %user.id, "login succeeded");
    let body = TokenResponse::issued(issued, scope, Some(refresh_token.plain.expose_secret().to_owned()));
    Ok((no_store_headers(), AppJson(body)).into_response())
}

/// What a username and password are worth, after the login throttle had its say.
#[derive(Debug)]
pub(crate) enum CredentialCheck {
    /// They match an enabled account. The caller settles `attempt` with
    /// [`crate::throttle::LoginThrottle::record_success`] in the transaction that logs in.
    Valid {
        /// The account.
        user: Box<User>,
        /// The counted attempt.
        attempt: crate::throttle::Attempt,
    },
    /// Unknown user, wrong password, malformed input or disabled account: one answer for all
    /// (already counted as a failure).
    Invalid,
    /// A bucket of this name or address is locked.
    Locked {
        /// Seconds until the next attempt is considered.
        retry_after: u64,
    },
}

/// Checks a username and password through the login throttle: the one path of both
/// `/v1/auth/login` and the hosted login page, so their attempts land in the same buckets and
/// neither bypasses the other's lock. Hashing runs on the bounded pool.
pub(crate) async fn check_credentials(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    username: &str,
    password: &str,
) -> Result<CredentialCheck, ApiError> {
    let now = state.clock.now();
    // Throttle by the name as typed (folded), whether or not such a user exists, and decide
    // before looking at the password: a locked attempt learns nothing.
    let throttle_name: String = username.to_ascii_lowercase().chars().take(64).collect();
    let parsed = Username::try_from(username).ok();
    let address_text = address.map(|address| address.to_string());
    let LoginLookup { user, trusted_until } =
        logins::lookup(&state.pool, &throttle_name, address_text.as_deref(), parsed.as_ref()).await?;
    // The attempt is counted before the password is checked, so parallel guesses cannot all get
    // past the check while the first ones are still hashing.
    let attempt = match state.throttle.begin(&throttle_name, address, trusted_until, now).await? {
        Decision::Allow(attempt) => attempt,
        Decision::Locked { retry_after } => {
            metrics::counter!("logins_total", "outcome" => "throttled").increment(1);
            return Ok(CredentialCheck::Locked { retry_after });
        }
    };
    let user = match check_password(state, password, user).await {
        Ok(user) => user,
        Err(error) => {
            // No verdict (hashing saturated, database down): the attempt does not count.
            if let Err(release_error) = state.throttle.release(attempt).await {
                tracing::warn!(error = %release_error, "failed to release a login attempt");
            }
            return Err(error);
        }
    };
    let Some(user) = user else {
        state.throttle.record_failure(attempt, now).await?;
        metrics::counter!("logins_total", "outcome" => "failure").increment(1);
        return Ok(CredentialCheck::Invalid);
    };
    Ok(CredentialCheck::Valid { user: Box::new(user), attempt })
}

/// The user whose password matches, or `None` after the same Argon2 work for every failure
/// (unknown user, wrong password, malformed input, disabled account).
async fn check_password(
    state: &AppState,
    password: &str,
    user: Option<User>,
) -> Result<Option<User>, ApiError> {
    let Ok(password) = Password::try_from(password.to_owned()) else {
        return Ok(None);
    };
    // A federated account has no password: it logs in only through its provider. It costs
    // the same hash as an unknown user, so the answer says nothing about which it is.
    let Some(user) = user.filter(|user| user.idp.is_none()) else {
        state.hasher.verify_dummy(password.secret()).await?;
        return Ok(None);
    };
    let verification = state.hasher.verify(password.secret(), &user.password_hash).await?;
    if !verification.matches || user.disabled_at.is_some() {
        return Ok(None);
    }
    if verification.needs_rehash {
        let upgraded = state.hasher.hash(password.secret()).await?;
        users::update_password_hash(&state.pool, &user.id, &upgraded).await?;
        tracing::info!(user_id = %user.id, "password re-hashed with current parameters");
    }
    Ok(Some(user))
}

/// Ends the login session of the presented access token: its refresh tokens stop working and
/// its access tokens are published as revoked to every service.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session ended"),
        (status = 400, description = "Malformed Authorization header", body = Problem),
        (status = 401, description = "Missing or invalid token", body = Problem),
        (status = 403, description = "Not a user token", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.sub))]
async fn logout(State(state): State<AppState>, auth: Authenticated) -> Result<StatusCode, ApiError> {
    auth.require_user()?;
    // The extractor checked signature and lifetime; a token already logged out (or revoked)
    // is no credential for ending anything.
    if sessions::is_revoked(&state.pool, &auth).await? {
        return Err(AuthError::InvalidToken(VerifyError::Revoked).into());
    }
    if let Some(sid) = auth.sid.as_deref() {
        sessions::end_session(&state, sid).await?;
        tracing::info!(user_id = %auth.sub, "logged out");
    }
    Ok(StatusCode::NO_CONTENT)
}
