//! auth-server's integration tests, one module per concern, linked into one test binary.
//!
//! Two stay binaries of their own, because they read process-wide state that other tests
//! running in parallel would change: `tests/login.rs` counts password hashes in the global
//! metrics registry, and `tests/logs.rs` captures the tracing output (tracing caches each call
//! site's interest per process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod cli;
mod common;
mod dpop;
mod federation;
mod hosted_login;
mod keys;
mod oauth_token;
mod oidc_basic_op;
mod operations;
mod sessions;
mod store;
mod throttle;
mod token_exchange;
