//! Problem documents (RFC 9457): the one error body of every binary. The type and the
//! extractors that reject with it live in shared-auth, whose token rejections use it too; this
//! adds what only a whole service needs.

use axum::http::StatusCode;
pub use shared_auth::problem::{AppJson, AppPath, AppQuery, PROBLEM_JSON, Problem, unavailable};

/// The opaque 500 for failures the client cannot fix; the cause is logged here, never sent.
pub fn internal_error(error: &anyhow::Error) -> Problem {
    tracing::error!(error = format!("{error:#}"), "internal error");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The fallback for unknown paths: a problem document instead of an empty 404.
pub(crate) async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND)
}

/// The fallback for a known path with a wrong method.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED)
}
