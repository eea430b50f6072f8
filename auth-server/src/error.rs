//! The error type of the auth server's non-OAuth endpoints; every variant is a problem document.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use service_kit::problem::{self, Problem};
use shared_auth::AuthError;

use crate::domain::InvalidInput;
use crate::password::HashError;

/// Errors of `/v1/...` endpoints.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: a field failed validation.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InvalidInput),
    /// 409: the username is taken.
    #[error("username already taken")]
    UsernameTaken,
    /// 401: unknown user, wrong password or disabled account; one body for all three.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 429 with `Retry-After`: too many failed logins.
    #[error("too many failed attempts")]
    TooManyAttempts {
        /// Seconds until the next attempt is considered.
        retry_after: u64,
    },
    /// 429 with `Retry-After`: too many registrations from one address.
    #[error("too many registrations")]
    TooManyRegistrations {
        /// Seconds until the address may register again.
        retry_after: u64,
    },
    /// 400: the DPoP proof sent with a login fails a check (RFC 9449 §4.3).
    #[error("invalid DPoP proof")]
    InvalidDpopProof(shared_auth::dpop::ProofError),
    /// 503 with `Retry-After`: password hashing saturated.
    #[error("busy")]
    Busy,
    /// 400/401/403: bearer token problems (RFC 6750).
    #[error("unauthorized")]
    Auth(#[from] AuthError),
    /// 500: anything else; logged, never described to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            HashError::Internal(message) => Self::Internal(anyhow::anyhow!(message)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database error"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidInput(error) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY).with_detail(error.0).into_response()
            }
            Self::UsernameTaken => {
                Problem::new(StatusCode::CONFLICT).with_detail("username already taken").into_response()
            }
            Self::InvalidCredentials => Problem::new(StatusCode::UNAUTHORIZED)
                .with_detail("invalid username or password")
                .into_response(),
            Self::TooManyAttempts { retry_after } => {
                too_many_requests("too many failed attempts; try again later", retry_after)
            }
            Self::TooManyRegistrations { retry_after } => {
                too_many_requests("too many registrations from this address; try again later", retry_after)
            }
            Self::InvalidDpopProof(error) => {
                Problem::new(StatusCode::BAD_REQUEST).with_detail(error.to_string()).into_response()
            }
            Self::Busy => problem::unavailable(1, "password hashing is saturated; retry shortly"),
            Self::Auth(error) => error.into_response(),
            Self::Internal(error) => problem::internal_error(&error).into_response(),
        }
    }
}

fn too_many_requests(detail: &'static str, retry_after: u64) -> Response {
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS).with_detail(detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}
