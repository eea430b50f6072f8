//! The error type resource services share: not found, invalid input, token problems, and the
//! opaque 500. Each variant knows its HTTP answer, so handlers just use `?`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::problem::{self, Problem};
use shared_auth::AuthError;

/// Errors of a resource service's handlers.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 404: no such resource, or not visible to the caller.
    #[error("not found")]
    NotFound,
    /// 422: a field failed validation; the message is shown to the client.
    #[error("{0}")]
    InvalidInput(&'static str),
    /// 400/401/403/503: token problems (RFC 6750).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 500: logged with its cause, never described to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database error"))
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => Problem::new(StatusCode::NOT_FOUND).into_response(),
            Self::InvalidInput(detail) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY).with_detail(detail).into_response()
            }
            Self::Auth(error) => error.into_response(),
            Self::Internal(error) => problem::internal_error(&error).into_response(),
        }
    }
}
