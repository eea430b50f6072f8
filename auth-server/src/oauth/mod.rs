//! OAuth 2.0 endpoints: token (RFC 6749, and token exchange, RFC 8693), revocation (RFC 7009),
//! introspection (RFC 7662).
//!
//! These speak OAuth's own wire format, not problem documents: form-encoded requests, and
//! errors as RFC 6749 §5.2 JSON `{"error": ..., "error_description": ...}`, so standard OAuth
//! client libraries work unmodified.
//!
//! - [`request::OAuthRequest`] is the one extractor: it reads the form into the endpoint's
//!   parameter type and authenticates the client that presented credentials.
//! - [`grants::GrantRequest`] is the token endpoint's form, one variant per grant, one module
//!   per grant under `grants/`. Discovery's `grant_types_supported`, the OpenAPI schema and
//!   the `unsupported_grant_type` text are all read off it.

pub mod authorize;
pub(crate) mod browser;
mod client_auth;
pub(crate) mod dpop;
pub mod grants;
pub mod id_token;
mod introspect;
pub mod logout;
pub(crate) mod pages;
pub mod request;
mod revoke;
mod token;
pub mod userinfo;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::no_store_headers;
use crate::state::AppState;

/// The client id of first-party logins through `/v1/auth/login`: a public client, with no
/// secret, whose refresh tokens need no client authentication.
pub const FIRST_PARTY_CLIENT: &str = "platform";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token::token))
        .routes(routes!(revoke::revoke))
        .routes(routes!(userinfo::userinfo_get, userinfo::userinfo_post))
        .routes(routes!(introspect::introspect))
        .routes(routes!(authorize::authorize_get, authorize::authorize_post))
        .routes(routes!(authorize::login))
        .routes(routes!(authorize::consent))
        .routes(routes!(logout::logout_get, logout::logout_post))
        .routes(routes!(pages::stylesheet))
}

/// A successful token response (RFC 6749 §5.1), of the token endpoint and of login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the key of the request's DPoP proof.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque refresh token (absent for client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope.
    pub scope: String,
    /// OpenID Connect id_token, when `openid` was granted by the authorization code grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// What `access_token` is, on a token exchange response (RFC 8693 §2.2.1): always
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl TokenResponse {
    /// The response for an issued access token: `token_type` `DPoP` when it is bound to a key,
    /// else `Bearer`.
    pub fn issued(issued: crate::tokens::IssuedToken, scope: String, refresh_token: Option<String>) -> Self {
        Self {
            token_type: if issued.bound { "DPoP" } else { "Bearer" }.into(),
            access_token: issued.token,
            expires_in: issued.expires_in,
            refresh_token,
            scope,
            id_token: None,
            issued_token_type: None,
        }
    }
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// The error code.
    pub error: &'static str,
    /// Human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// Errors of the OAuth endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// 400 `invalid_request`: missing, repeated or malformed parameter.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 401 `invalid_client`; `basic` adds `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    #[error("invalid_client")]
    InvalidClient {
        /// The client tried HTTP Basic.
        basic: bool,
    },
    /// 400 `invalid_grant`: refresh token unknown, used, expired or revoked.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400 `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// 400 `invalid_scope`: scope or audience beyond what was granted or registered.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// 400 `unauthorized_client`: the client may not use this grant.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// 400 `invalid_target` (RFC 8693 §2.2.2, RFC 8707 §2): the requested audience or resource
    /// is missing, or not one this client may obtain a token for.
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// 400 `invalid_dpop_proof` (RFC 9449 §5): the `DPoP` proof is missing where the client or
    /// the refresh token requires one, or fails a check.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// 413 `invalid_request`: the body is over the size limit.
    #[error("invalid_request: body too large")]
    BodyTooLarge,
    /// 503 `temporarily_unavailable`.
    #[error("temporarily_unavailable")]
    Unavailable,
    /// 500 `server_error`, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database error"))
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            Self::InvalidRequest(detail) => {
                (StatusCode::BAD_REQUEST, "invalid_request", Some(detail.clone()))
            }
            Self::InvalidClient { .. } => {
                (StatusCode::UNAUTHORIZED, "invalid_client", Some("client authentication failed".into()))
            }
            Self::InvalidGrant(detail) => (StatusCode::BAD_REQUEST, "invalid_grant", Some((*detail).into())),
            Self::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                Some(format!("supported: {}", grants::supported().join(", "))),
            ),
            Self::InvalidScope(detail) => (StatusCode::BAD_REQUEST, "invalid_scope", Some(detail.clone())),
            Self::UnauthorizedClient(detail) => {
                (StatusCode::BAD_REQUEST, "unauthorized_client", Some((*detail).into()))
            }
            Self::InvalidTarget(detail) => (StatusCode::BAD_REQUEST, "invalid_target", Some(detail.clone())),
            Self::InvalidDpopProof(detail) => {
                (StatusCode::BAD_REQUEST, "invalid_dpop_proof", Some(detail.clone()))
            }
            Self::BodyTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", Some("request body too large".into()))
            }
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", None),
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "OAuth endpoint failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
            }
        };
        let mut response = (
            status,
            no_store_headers(),
            axum::Json(OAuthErrorBody { error, error_description: description }),
        )
            .into_response();
        if let Self::InvalidClient { basic: true } = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="auth-server""#));
        }
        if let Self::Unavailable = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        response
    }
}

/// Splits a space-separated scope string into its distinct values.
pub(crate) fn scope_set(scope: &str) -> std::collections::BTreeSet<&str> {
    scope.split(' ').filter(|value| !value.is_empty()).collect()
}
