//! `tracing` set-up: one subscriber per process, filtered by `RUST_LOG`, text or JSON lines.

use tracing_subscriber::EnvFilter;

/// Initialises `tracing`: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for JSON lines.
/// Safe to call twice (the second call does nothing), which tests rely on.
pub fn init_telemetry() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
