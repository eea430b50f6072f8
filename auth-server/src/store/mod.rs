//! The auth database: every SQL statement of the auth server is in this module, one repository
//! module per table family, each with typed rows.
//!
//! Functions take the current time as an argument instead of reading a clock, so the callers
//! decide what "now" is (the state's [`shared_auth::time::Clock`], which tests can move), and
//! a pool or, where several writes belong together, a transaction's connection.
//!
//! The schema is portable between SQLite and PostgreSQL (sqlx's `Any` driver): TEXT ids, BIGINT
//! Unix seconds, no booleans. See `migrations/`.

pub mod browser_sessions;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod federation;
pub mod keys;
pub mod logins;
pub mod rate_limits;
pub mod revocations;
pub mod sessions;
pub mod users;

pub use users::{CreateUserError, User};

/// Splits a space-separated list column (roles, scopes, audiences).
fn split_list(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}
