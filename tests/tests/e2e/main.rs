//! The end-to-end tests of the platform, in one test binary (one build, one link): the security
//! suite by rule, the connection hardening of the real binaries, a generic OAuth client's walk
//! through discovery, orders-service calling users-service on a customer's behalf, and "Login
//! with …" between two auth servers.
//!
//! `tests/resilience.rs` stays a binary of its own: it stops and faults the auth server under
//! steady load and asserts worst-case latencies, which tests running beside it in the same
//! process would distort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod federation;
mod hardening;
mod oauth_client;
mod on_behalf_of;
mod security;
