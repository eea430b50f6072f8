//! `POST /v1/users`: self-service registration.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::problem::{AppJson, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{Password, Username};
use crate::error::ApiError;
use crate::state::{AppState, ClientAddress};
use crate::store::rate_limits::{self, Window};
use crate::store::{CreateUserError, users};

/// The window of `REGISTRATION_LIMIT_PER_HOUR`.
pub const REGISTRATION_WINDOW_SECS: i64 = 3600;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register))
}

/// Registration request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3-64 characters of a-z, 0-9, `.`, `_`, `-` (folded to lower case).
    #[schema(example = "alice", min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub username: String,
    /// 8-1024 characters, used exactly as given.
    #[schema(example = "correct horse battery staple", min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A created account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    /// The user id (the `sub` of their tokens).
    pub id: String,
    /// The normalised username.
    pub username: String,
}

/// Creates an account with the given credentials.
#[utoipa::path(post, path = "/v1/users", tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserCreated),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 409, description = "Username taken", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid username or password", body = Problem),
        (status = 429, description = "Too many registrations from this address (Retry-After)", body = Problem),
        (status = 503, description = "Password hashing saturated", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(user_id))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    AppJson(request): AppJson<RegisterRequest>,
) -> Result<(StatusCode, AppJson<UserCreated>), ApiError> {
    let username = Username::try_from(request.username.as_str())?;
    let password = Password::try_from(request.password)?;
    // Valid requests count, taken names included: each may cost a hash, and probing for taken
    // names is what a limit on one address is for.
    let limit = i64::from(state.config.registration_limit_per_hour);
    if let (Some(address), true) = (address, limit > 0) {
        let window = Window { limit, window_secs: REGISTRATION_WINDOW_SECS };
        let bucket = format!("register:{address}");
        if let Some(retry_after) = rate_limits::take(&state.pool, &bucket, window, state.clock.now()).await? {
            metrics::counter!("registrations_total", "outcome" => "throttled").increment(1);
            return Err(ApiError::TooManyRegistrations { retry_after });
        }
    }
    // One registration of a name at a time (see `RegistrationLocks`), then a cheap rejection of
    // a taken name before the expensive hash; the unique index still decides a race.
    let _registering = state.registrations.lock(username.as_str()).await;
    if users::find_by_username(&state.pool, &username).await?.is_some() {
        return Err(ApiError::UsernameTaken);
    }
    let hash = state.hasher.hash(password.secret()).await?;
    let user =
        users::create(&state.pool, &username, &hash, &[], state.clock.now()).await.map_err(|error| {
            match error {
                CreateUserError::Taken => ApiError::UsernameTaken,
                CreateUserError::Database(error) => error.into(),
            }
        })?;
    tracing::Span::current().record("user_id", user.id.as_str());
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, AppJson(UserCreated { id: user.id, username: user.username })))
}
