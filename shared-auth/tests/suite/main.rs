//! shared-auth's integration tests, one module per concern, linked into one test binary
//! (each `tests/*.rs` file would be a binary of its own, linked separately).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod disk_copies;
mod dpop;
mod extractors;
mod issuer;
mod key_cache_faults;
mod key_rotation;
mod revocation_freshness;
mod service_token_client;
mod token_mutation;
mod verifier_rules;
