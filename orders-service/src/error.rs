//! This service's error type: the resource-service errors every service shares.

/// Errors of this service's handlers (see [`shared_auth::error::ServiceError`] for the HTTP
/// answer of each variant).
pub type ApiError = shared_auth::error::ServiceError;
