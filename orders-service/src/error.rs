//! The error type of orders-service; every variant is a problem document or an RFC 6750 answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared_auth::AuthError;
use shared_auth::problem::{self, Problem};

/// Errors of orders-service handlers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: no such order, or not the caller's.
    #[error("not found")]
    NotFound,
    /// 422: a field failed validation.
    #[error("{0}")]
    InvalidInput(&'static str),
    /// 400/401/403/503: token problems.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 500: logged, never described.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database error"))
    }
}

impl IntoResponse for ApiError {
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
