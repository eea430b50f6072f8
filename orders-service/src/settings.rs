//! orders-service's own settings, besides those every resource service has.

use secrecy::SecretString;
use service_kit::db::parse_secret;

/// How to reach users-service for a customer's display name.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Base URL of users-service.
    #[arg(long, env = "USERS_SERVICE_URL", default_value = "http://127.0.0.1:8081")]
    pub users_service_url: String,
    /// Our OAuth client id at the auth server.
    #[arg(long, env = "CLIENT_ID", default_value = "orders-service")]
    pub client_id: String,
    /// Our OAuth client secret; without it, orders are created without a customer name.
    #[arg(long, env = "CLIENT_SECRET", value_parser = parse_secret, hide_env_values = true)]
    pub client_secret: Option<SecretString>,
    /// Time allowed for the call to users-service (milliseconds).
    #[arg(long, env = "USERS_SERVICE_TIMEOUT_MS", default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub users_service_timeout_ms: u64,
}
