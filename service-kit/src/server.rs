//! [`ServerArgs`]: the listener settings every binary takes (connection limit, timeouts,
//! management listener), and serving a binary's routers with them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use futures_util::FutureExt as _;

use crate::serve::{ConnectionLimits, serve_with, shutdown_signal};

/// Connections the management listener serves at once: probes and scrapers, not clients.
pub const MANAGEMENT_MAX_CONNECTIONS: u32 = 64;

/// File descriptors kept for what is not a client connection (database pool, key cache files,
/// outbound HTTP) when checking `MAX_CONNECTIONS` against the open-file limit.
const RESERVED_FILE_DESCRIPTORS: u64 = 128;

/// How a binary listens. Flatten into its clap config; [`ServerArgs::serve`] applies it.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServerArgs {
    /// Connections served at once on LISTEN_ADDR; further ones wait in the listen backlog
    /// until one closes. Each holds a file descriptor and up to 32 KiB of request head.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub max_connections: u32,
    /// Seconds a client has to send a complete request head (request line and headers): from
    /// connecting, for the first request on a connection; from its first byte, for a later one.
    /// Then the connection is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS",
        default_value_t = ConnectionLimits::default().header_read_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=3_600), global = true)]
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection stays open with no request and no bytes moving. Longer
    /// than the idle timeout of proxies in front (60 s for nginx and most cloud load balancers),
    /// so that they close idle connections first and never reuse one we are closing.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = ConnectionLimits::default().idle_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub idle_timeout_secs: u64,
    /// Address of a second listener for operators (e.g. 0.0.0.0:9090): `/metrics`, and a copy
    /// of `/healthz` and `/readyz`. `/metrics` then leaves LISTEN_ADDR. Unset: everything is
    /// on LISTEN_ADDR.
    #[arg(long, env = "MANAGEMENT_ADDR", global = true)]
    pub management_addr: Option<SocketAddr>,
    /// Browser origins allowed to call this binary's API (comma-separated, e.g.
    /// `http://127.0.0.1:8083`); unset: no CORS. See [`crate::cors`].
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ServerArgs {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        Self {
            max_connections: limits.max_connections,
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
            management_addr: None,
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl ServerArgs {
    /// The limits of the API listener.
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
        }
    }

    /// Raises the open-file limit, binds `listen_addr` for `router` and, with `MANAGEMENT_ADDR`,
    /// that address for `management` ([`App::build_all`](crate::App::build_all) made with
    /// [`management_listener`](crate::App::management_listener)); serves both until SIGTERM or
    /// Ctrl-C, then drains both.
    pub async fn serve(
        &self,
        listen_addr: SocketAddr,
        router: Router,
        management: Option<Router>,
    ) -> anyhow::Result<()> {
        let management = match (self.management_addr, management) {
            (Some(address), Some(router)) => Some((address, router)),
            (None, None) => None,
            (Some(_), None) => {
                anyhow::bail!("MANAGEMENT_ADDR is set but the binary built no management routes")
            }
            (None, Some(_)) => anyhow::bail!("management routes were built but MANAGEMENT_ADDR is not set"),
        };
        self.check_file_limit(management.is_some());
        let api_listener = tokio::net::TcpListener::bind(listen_addr)
            .await
            .with_context(|| format!("failed to listen on {listen_addr}"))?;
        let management_listener = match &management {
            Some((address, _)) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("failed to listen on MANAGEMENT_ADDR {address}"))?,
            ),
            None => None,
        };
        let shutdown = shutdown_signal().shared();
        let api = serve_with(api_listener, router, self.limits(), shutdown.clone());
        let management = async {
            match (management_listener, management) {
                (Some(listener), Some((_, router))) => {
                    let limits =
                        ConnectionLimits { max_connections: MANAGEMENT_MAX_CONNECTIONS, ..self.limits() };
                    serve_with(listener, router, limits, shutdown).await
                }
                _ => Ok(()),
            }
        };
        tokio::try_join!(api, management)?;
        Ok(())
    }

    /// Raises the open-file limit and warns when it cannot hold every connection allowed.
    fn check_file_limit(&self, with_management: bool) {
        let Some(limit) = crate::file_limit::raise_file_limit() else { return };
        let connections = u64::from(self.max_connections)
            + if with_management { u64::from(MANAGEMENT_MAX_CONNECTIONS) } else { 0 };
        if connections + RESERVED_FILE_DESCRIPTORS > limit {
            tracing::warn!(
                max_connections = self.max_connections,
                file_descriptor_limit = limit,
                "MAX_CONNECTIONS is more than the open-file limit allows; accepts will fail before the cap"
            );
        }
    }
}
