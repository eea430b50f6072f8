//! Command line and environment of `orders-service`.

use std::net::SocketAddr;

use clap::Parser;
use secrecy::SecretString;
use shared_auth::AuthArgs;
use shared_auth::db::{StorageArgs, parse_secret};
use shared_auth::service::ServiceCommand;

/// Orders, protected by access tokens verified locally; calls users-service with a service
/// token to fetch the customer's display name.
#[derive(Debug, Clone, Parser)]
#[command(name = "orders-service", version, about)]
pub struct Config {
    /// What to do; the default is `serve`.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8082")]
    pub listen_addr: SocketAddr,
    /// This service's name: tokens must list it in `aud`.
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "orders-service")]
    pub audience: String,
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
    #[arg(long, env = "USERS_SERVICE_TIMEOUT_MS", default_value_t = 2_000)]
    pub users_service_timeout_ms: u64,
    /// Database location.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How to reach and trust the auth server.
    #[command(flatten)]
    pub auth: AuthArgs,
}
