//! `/v1/users`: profiles of the users the tokens name.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use service_kit::problem::{AppJson, AppPath, AppQuery, Problem};
use service_kit::{ProtectedResponses, Resources, ServiceError as ApiError};
use shared_auth::time::unix_now_i64;
use shared_auth::{AccessClaims, Authenticated, RequiredScope as _, UserScoped};
use sqlx::{AnyPool, Row as _};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

shared_auth::scope!(
    /// Read your own profile.
    pub ProfileRead = "profile:read"
);
shared_auth::scope!(
    /// Change your own profile.
    pub ProfileWrite = "profile:write"
);
shared_auth::scope!(
    /// Read anyone's profile, for a service acting on its own (no user). orders-service does
    /// not need it: it reads a customer's profile as the customer, with an exchanged token.
    pub UsersRead = "users:read"
);

pub(crate) fn router() -> OpenApiRouter<Resources> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(get_user))
        .routes(routes!(list_users))
}

/// A user profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    /// The user id (`sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Name shown to others; defaults to the username.
    pub display_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Profile changes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    /// 1-100 characters, no control, bidirectional or zero-width characters (see
    /// `service_kit::text`); surrounding spaces are removed.
    #[schema(
        example = "Alice Liddell",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff][^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff]*$"
    )]
    pub display_name: String,
}

/// A display name: 1 to 100 characters without control characters.
struct DisplayName(String);

impl TryFrom<&str> for DisplayName {
    type Error = ApiError;
    fn try_from(value: &str) -> Result<Self, ApiError> {
        let trimmed = value.trim();
        let length = trimmed.chars().count();
        if !(1..=100).contains(&length) || service_kit::text::has_forbidden_in_label(trimmed) {
            return Err(ApiError::InvalidInput(
                "display_name must be 1-100 characters without control, bidirectional or zero-width characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

fn profile_from_row(row: &sqlx::any::AnyRow) -> Result<Profile, sqlx::Error> {
    Ok(Profile {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

// Store functions: spans at debug, named by what they do; the pool and the claims stay out of
// the span (only ids go in). Path ids are recorded with `?` so that a crafted id (a percent-encoded
// newline) cannot forge a log line.

#[tracing::instrument(level = "debug", name = "find_profile", skip_all, fields(profile_id = ?id))]
async fn find(pool: &AnyPool, id: &str) -> Result<Option<Profile>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM profiles WHERE id = $1").bind(id).fetch_optional(pool).await?;
    row.as_ref().map(profile_from_row).transpose()
}

/// The caller's profile, created from the token on first use. Concurrent first requests are
/// safe: the insert ignores a conflict and everyone reads the one row.
#[tracing::instrument(level = "debug", name = "find_or_create_profile", skip_all, fields(user_id = %claims.sub))]
async fn find_or_create(pool: &AnyPool, claims: &AccessClaims) -> Result<Profile, ApiError> {
    if let Some(profile) = find(pool, &claims.sub).await? {
        return Ok(profile);
    }
    let username = claims.preferred_username.clone().unwrap_or_else(|| claims.sub.clone());
    let now = unix_now_i64();
    sqlx::query(
        "INSERT INTO profiles (id, username, display_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&claims.sub)
    .bind(&username)
    .bind(&username)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    find(pool, &claims.sub).await?.ok_or(ApiError::NotFound)
}

#[tracing::instrument(level = "debug", name = "update_display_name", skip_all, fields(user_id = %id))]
async fn update_display_name(
    pool: &AnyPool,
    id: &str,
    display_name: &DisplayName,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE profiles SET display_name = $1, updated_at = $2 WHERE id = $3")
        .bind(&display_name.0)
        .bind(unix_now_i64())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", name = "list_profiles", skip(pool))]
async fn list(pool: &AnyPool, limit: i64, offset: i64) -> Result<Vec<Profile>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM profiles ORDER BY created_at, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    rows.iter().map(profile_from_row).collect()
}

// Handlers: spans at info, which the log format prints only as the context of events inside
// them (no line of their own). `skip_all` keeps the state, the token's claims and the request
// body out; the ids are added as fields.

/// A token obtained by token exchange is the user's, with the service that exchanged it as
/// `act`. It is authorised as the user, like any user token; the actor is logged at info, so
/// that what a service did for a user can be told apart from what the user did.
fn note_actor(claims: &AccessClaims) {
    if let Some(actor) = claims.actor() {
        tracing::info!(actor, "request on behalf of the user");
    }
}

/// The caller's own profile (created on first request).
#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = ["profile:read"])),
    responses(
        (status = 200, description = "The caller's profile", body = Profile),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %user.sub, client_id = %user.client_id))]
async fn get_me(
    State(pool): State<AnyPool>,
    user: UserScoped<ProfileRead>,
) -> Result<AppJson<Profile>, ApiError> {
    note_actor(&user);
    Ok(AppJson(find_or_create(&pool, &user).await?))
}

/// Changes the caller's display name.
#[utoipa::path(patch, path = "/v1/users/me", tag = "users", security(("bearer" = ["profile:write"])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile", body = Profile),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid display name", body = Problem),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %user.sub, client_id = %user.client_id))]
async fn update_me(
    State(pool): State<AnyPool>,
    user: UserScoped<ProfileWrite>,
    AppJson(update): AppJson<ProfileUpdate>,
) -> Result<AppJson<Profile>, ApiError> {
    note_actor(&user);
    let display_name = DisplayName::try_from(update.display_name.as_str())?;
    find_or_create(&pool, &user).await?;
    update_display_name(&pool, &user.sub, &display_name).await?;
    Ok(AppJson(find(&pool, &user.sub).await?.ok_or(ApiError::NotFound)?))
}

/// One profile: the caller's own (scope `profile:read`; also a service calling on the user's
/// behalf with an exchanged token, whose `act` names it), or any with scope `users:read` (a
/// service) or role `admin` with `profile:read`.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    security(("bearer" = ["profile:read"]), ("bearer" = ["users:read"])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such profile", body = Problem),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %auth.sub, client_id = %auth.client_id, profile_id = ?id))]
async fn get_user(
    State(pool): State<AnyPool>,
    auth: Authenticated,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<Profile>, ApiError> {
    note_actor(&auth);
    if auth.sub == id && auth.is_user() {
        auth.require_scope(ProfileRead::SCOPE)?;
        return Ok(AppJson(find_or_create(&pool, &auth).await?));
    }
    // Someone else's: a service with `users:read`, or an administrator's user token. A service
    // token can only get in by that scope, so its refusal names it.
    if !auth.has_scope(UsersRead::SCOPE) {
        if !auth.is_user() {
            auth.require_scope(UsersRead::SCOPE)?;
        }
        auth.require_role("admin")?;
        auth.require_scope(ProfileRead::SCOPE)?;
    }
    Ok(AppJson(find(&pool, &id).await?.ok_or(ApiError::NotFound)?))
}

/// Paging of `GET /v1/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most this many (default 100; values outside 1-500 are clamped to it).
    #[param(value_type = Option<u64>, maximum = 4_294_967_295_u64)]
    pub limit: Option<u32>,
    /// Skip this many.
    #[param(value_type = Option<u64>, maximum = 4_294_967_295_u64)]
    pub offset: Option<u32>,
}

/// All profiles, for administrators (role `admin`, scope `profile:read`).
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = ["profile:read"])),
    params(Page),
    responses(
        (status = 200, description = "Profiles by creation time", body = Vec<Profile>),
        ProtectedResponses))]
#[tracing::instrument(skip_all, fields(user_id = %auth.sub, client_id = %auth.client_id))]
async fn list_users(
    State(pool): State<AnyPool>,
    auth: UserScoped<ProfileRead>,
    AppQuery(page): AppQuery<Page>,
) -> Result<AppJson<Vec<Profile>>, ApiError> {
    note_actor(&auth);
    auth.0.require_role("admin")?;
    let limit = i64::from(page.limit.unwrap_or(100).clamp(1, 500));
    let offset = i64::from(page.offset.unwrap_or(0));
    Ok(AppJson(list(&pool, limit, offset).await?))
}
