//! Command line and environment of `users-service`.

use std::net::SocketAddr;

use clap::Parser;
use shared_auth::AuthArgs;
use shared_auth::db::StorageArgs;
use shared_auth::service::ServiceCommand;

/// User profiles, protected by access tokens verified locally.
#[derive(Debug, Clone, Parser)]
#[command(name = "users-service", version, about)]
pub struct Config {
    /// What to do; the default is `serve`.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8081")]
    pub listen_addr: SocketAddr,
    /// This service's name: tokens must list it in `aud`.
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "users-service")]
    pub audience: String,
    /// Database location.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How to reach and trust the auth server.
    #[command(flatten)]
    pub auth: AuthArgs,
}
