//! [`ResourceService`]: the one recipe for a protected resource service. What differs between
//! services is their name, default address, migrations, own settings and routes; everything
//! else (config, database, verifier, readiness, metrics, docs, layers, serve, health check) is
//! the same and lives here.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use axum::Router;
use axum::extract::FromRef;
use clap::{CommandFactory as _, FromArgMatches as _};
use shared_auth::Verifier;
use sqlx::AnyPool;
use sqlx::migrate::Migrator;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth_args::AuthArgs;
use crate::db::StorageArgs;
use crate::healthcheck::{ServiceCommand, healthcheck};
use crate::readiness::resource_readiness;
use crate::{App, ServerArgs};

/// Settings of a service that has none of its own besides the common ones.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct NoSettings {}

/// The command line and environment of a resource service: the common settings, and the
/// service's own (`Settings`, flattened in).
#[derive(Debug, Clone, clap::Parser)]
pub struct ResourceConfig<Settings: clap::Args> {
    /// What to do; the default is `serve`.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: SocketAddr,
    /// This service's name: tokens must list it in `aud`.
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub audience: String,
    /// The base URL clients reach this service under (behind a proxy, the proxy's), e.g.
    /// `https://users.example.com`; default `http://<LISTEN_ADDR>`. https turns on
    /// Strict-Transport-Security. DPoP proofs must name it (their `htu` is this URL plus the
    /// request path), so behind a proxy it must be set.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Connection limits, timeouts and the management listener.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Database location.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How to reach and trust the auth server.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// The service's own settings.
    #[command(flatten)]
    pub service: Settings,
}

impl<Settings: clap::Args> ResourceConfig<Settings> {
    /// `PUBLIC_URL` without a trailing slash, or `http://<LISTEN_ADDR>`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen_addr),
        }
    }
}

/// What a service's routes are built from. It is also a ready-made router state: the
/// extractors find the [`Verifier`] in it, and handlers take the pool with `State<AnyPool>`.
#[derive(Debug, Clone)]
pub struct Resources {
    /// The service's database, migrated.
    pub pool: AnyPool,
    /// Verifies access tokens (keys cached in memory and on disk).
    pub verifier: Verifier,
}

impl FromRef<Resources> for Verifier {
    fn from_ref(resources: &Resources) -> Self {
        resources.verifier.clone()
    }
}

impl FromRef<Resources> for AnyPool {
    fn from_ref(resources: &Resources) -> Self {
        resources.pool.clone()
    }
}

/// A built service: the whole application and the parts tests look at.
pub struct BuiltService {
    /// The full HTTP application (without `/metrics` when `MANAGEMENT_ADDR` is set).
    pub router: Router,
    /// `/metrics`, `/healthz` and `/readyz` for the management listener, when `MANAGEMENT_ADDR`
    /// is set.
    pub management: Option<Router>,
    /// Its OpenAPI document.
    pub openapi: OpenApi,
    /// Its verifier (background refresh not started yet).
    pub verifier: Verifier,
    /// Its database.
    pub pool: AnyPool,
}

impl std::fmt::Debug for BuiltService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("BuiltService").field("verifier", &self.verifier).finish_non_exhaustive()
    }
}

/// A protected resource service. See the crate documentation for the whole recipe.
#[derive(Debug)]
pub struct ResourceService<Settings = NoSettings> {
    name: &'static str,
    listen_addr: &'static str,
    about: &'static str,
    migrator: &'static Migrator,
    settings: PhantomData<fn() -> Settings>,
}

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

impl<Settings: clap::Args> ResourceService<Settings> {
    /// A service named `name` (also its default `AUTH_AUDIENCE` and the OpenAPI title) that
    /// listens on `listen_addr` unless `LISTEN_ADDR` says otherwise. Its SQLite file under
    /// `DATA_DIR` is the name without a `-service` suffix, plus `.sqlite`.
    pub const fn new(name: &'static str, listen_addr: &'static str) -> Self {
        Self { name, listen_addr, about: "", migrator: &NO_MIGRATIONS, settings: PhantomData }
    }

    /// The migrations run at start (`sqlx::migrate!()`).
    pub const fn migrations(mut self, migrator: &'static Migrator) -> Self {
        self.migrator = migrator;
        self
    }

    /// The one-line description `--help` shows.
    pub const fn about(mut self, about: &'static str) -> Self {
        self.about = about;
        self
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Parses a command line (the first item is the program name), with the environment as
    /// fallback for every flag.
    pub fn config_from<I, T>(&self, args: I) -> Result<ResourceConfig<Settings>, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = ResourceConfig::<Settings>::command()
            .name(self.name)
            .about(self.about)
            .mut_arg("listen_addr", |arg| arg.default_value(self.listen_addr).required(false))
            .mut_arg("audience", |arg| arg.default_value(self.name).required(false));
        ResourceConfig::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// Connects and migrates the database, builds the verifier (loading its disk cache) and
    /// the routes `api` makes from them, and wraps them into the whole application.
    pub async fn build<Api>(
        &self,
        config: &ResourceConfig<Settings>,
        api: Api,
    ) -> anyhow::Result<BuiltService>
    where
        Api: FnOnce(Resources, &Settings) -> anyhow::Result<OpenApiRouter>,
    {
        let sqlite_file = format!("{}.sqlite", self.name.strip_suffix("-service").unwrap_or(self.name));
        let pool = crate::db::connect(&config.storage, &sqlite_file, self.migrator).await?;
        let verifier =
            config.auth.verifier(&config.audience, &config.storage.data_dir, &config.public_url())?;
        let resources = Resources { pool: pool.clone(), verifier: verifier.clone() };
        let api = api(resources, &config.service)?;
        let gauges = verifier.clone();
        let built = App::new(self.name, api, resource_readiness(pool.clone(), verifier.clone()))
            .refresh_gauges(std::sync::Arc::new(move || {
                // Reading the key status sets `jwks_age_seconds`; no I/O.
                gauges.status();
            }))
            .public_url(&config.public_url())
            .cors(&config.server.cors_allowed_origins)
            .swagger_login(&config.auth.auth_issuer)
            .management_listener(config.server.management_addr.is_some())
            .build_all();
        Ok(BuiltService {
            router: built.router,
            management: built.management,
            openapi: built.openapi,
            verifier,
            pool,
        })
    }

    /// Answers `healthcheck`, or builds the service, starts the verifier's background refresh
    /// and serves (with the connection limits and management listener of
    /// [`ServerArgs`]) until SIGTERM or Ctrl-C. A failed health check is `Ok(false)`.
    pub async fn run<Api>(&self, config: ResourceConfig<Settings>, api: Api) -> anyhow::Result<bool>
    where
        Api: FnOnce(Resources, &Settings) -> anyhow::Result<OpenApiRouter>,
    {
        if config.command == Some(ServiceCommand::Healthcheck) {
            return Ok(healthcheck(config.listen_addr));
        }
        let service = self.build(&config, api).await?;
        service.verifier.start_background_refresh();
        config.server.serve(config.listen_addr, service.router, service.management).await?;
        Ok(true)
    }

    /// The whole `main` of the binary: parse the command line, start tracing and the runtime,
    /// [`run`](Self::run), and turn the outcome into the exit code.
    pub fn main<Api>(&self, api: Api) -> ExitCode
    where
        Api: FnOnce(Resources, &Settings) -> anyhow::Result<OpenApiRouter>,
    {
        let config = match self.config_from(std::env::args_os()) {
            Ok(config) => config,
            Err(error) => error.exit(),
        };
        crate::init_telemetry();
        let outcome = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")
            .and_then(|runtime| runtime.block_on(self.run(config, api)));
        match outcome {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), service = self.name, "failed");
                ExitCode::FAILURE
            }
        }
    }
}
