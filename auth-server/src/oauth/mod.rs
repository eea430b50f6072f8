//! OAuth 2.0 endpoints: token (RFC 6749), revocation (RFC 7009), introspection (RFC 7662).
//!
//! These speak OAuth's own wire format, not problem documents: form-encoded requests, and
//! errors as RFC 6749 §5.2 JSON `{"error": ..., "error_description": ...}`, so standard OAuth
//! client libraries work unmodified.

mod client_auth;
mod introspect;
mod revoke;
mod token;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::no_store_headers;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token::token))
        .routes(routes!(revoke::revoke))
        .routes(routes!(introspect::introspect))
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
    #[error("unauthorized_client")]
    UnauthorizedClient,
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
                Some("supported: refresh_token, client_credentials".into()),
            ),
            Self::InvalidScope(detail) => (StatusCode::BAD_REQUEST, "invalid_scope", Some(detail.clone())),
            Self::UnauthorizedClient => (StatusCode::BAD_REQUEST, "unauthorized_client", None),
            Self::BodyTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", Some("request body too large".into()))
            }
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", None),
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "token endpoint failure");
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

/// The raw body of an OAuth request. Unlike `Bytes`, whose rejections are plain text, a body
/// that cannot be read (over the size limit) is answered in the OAuth error format.
pub(crate) struct OAuthBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for OAuthBody {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(body) => Ok(Self(body)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(OAuthError::BodyTooLarge)
            }
            Err(rejection) => Err(OAuthError::InvalidRequest(rejection.body_text())),
        }
    }
}

/// The form of an introspection (RFC 7662 §2.1) or revocation (RFC 7009 §2.1) request, for the
/// OpenAPI document only: the body itself is read by [`OAuthForm`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenReference {
    /// The access or refresh token.
    token: String,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    /// Client authentication in the form (`client_secret_post`) instead of HTTP Basic.
    client_id: Option<String>,
    /// Client authentication in the form (`client_secret_post`) instead of HTTP Basic.
    client_secret: Option<String>,
}

/// A form body as name/value pairs, with RFC 6749 §3.2's rule that no parameter repeats.
pub(crate) struct OAuthForm(std::collections::HashMap<String, String>);

/// Every parameter an OAuth endpoint here reads. Others are ignored, repeated or not: "the
/// authorization server MUST ignore unrecognized request parameters" (RFC 6749 §3.1).
const PARAMETERS: &[&str] = &[
    "grant_type",
    "refresh_token",
    "scope",
    "audience",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

impl OAuthForm {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        let is_form = content_type.is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "content type must be application/x-www-form-urlencoded".into(),
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("malformed form body".into()))?;
        let mut map = std::collections::HashMap::with_capacity(pairs.len());
        for (name, value) in pairs.into_iter().filter(|(name, _)| PARAMETERS.contains(&name.as_str())) {
            if map.insert(name.clone(), value).is_some() {
                return Err(OAuthError::InvalidRequest(format!("parameter {name} repeated")));
            }
        }
        Ok(Self(map))
    }

    /// An optional parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::InvalidRequest(format!("missing {name}")))
    }
}

/// Splits a space-separated scope string into its distinct values.
pub(crate) fn scope_set(scope: &str) -> std::collections::BTreeSet<&str> {
    scope.split(' ').filter(|value| !value.is_empty()).collect()
}
