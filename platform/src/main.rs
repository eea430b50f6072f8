//! `platform`: the whole stack in one command, on SQLite, no Docker.
//!
//! `cargo run -p platform` seeds demo data on first start, then runs auth-server,
//! users-service and orders-service as three separate processes (this same binary re-executed
//! with a service name), each on its contract port with its own SQLite file under one data dir.
//! Separate processes matter: the walkthrough stops the auth server alone and shows the
//! services carry on. Press Enter to stop or start the auth server; Ctrl-C stops everything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// Runs the JWT platform locally.
#[derive(Debug, clap::Parser)]
#[command(name = "platform", version, about)]
struct Args {
    /// Directory holding every service's SQLite database and key cache.
    #[arg(long, env = "PLATFORM_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// auth-server address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    auth_addr: SocketAddr,
    /// users-service address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    users_addr: SocketAddr,
    /// orders-service address.
    #[arg(long, default_value = "127.0.0.1:8082")]
    orders_addr: SocketAddr,
    /// Internal: run one service in this process (used by the supervisor).
    #[arg(long, hide = true)]
    service: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.service.as_deref() {
        Some(service) => run_service(service).await,
        None => supervise(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("platform: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Child mode: one service, configured entirely from the environment the supervisor set.
async fn run_service(service: &str) -> anyhow::Result<()> {
    service_kit::init_telemetry();
    let ok = match service {
        "auth-server" => {
            auth_server::cli::run(auth_server::config::Cli::parse_from(["auth-server"])).await?;
            true
        }
        "users-service" => {
            users_service::SERVICE
                .run(users_service::SERVICE.config_from(["users-service"])?, users_service::api)
                .await?
        }
        "orders-service" => {
            orders_service::SERVICE
                .run(orders_service::SERVICE.config_from(["orders-service"])?, orders_service::api)
                .await?
        }
        other => anyhow::bail!("unknown service {other}"),
    };
    anyhow::ensure!(ok, "{service} failed");
    Ok(())
}

struct Stack {
    args: Args,
    client_secret: SecretString,
    auth: Option<Child>,
    users: Child,
    orders: Child,
}

impl Stack {
    fn issuer(&self) -> String {
        format!("http://{}", self.args.auth_addr)
    }

    fn spawn(&self, service: &str, listen: SocketAddr, data: &str) -> anyhow::Result<Child> {
        let exe = std::env::current_exe().context("cannot find the platform binary")?;
        let mut command = Command::new(exe);
        command
            .args(["--service", service])
            .env("LISTEN_ADDR", listen.to_string())
            .env("DATA_DIR", self.args.data_dir.join(data))
            .env_remove("DATABASE_URL")
            .env("ISSUER", self.issuer())
            .env("AUTH_ISSUER", self.issuer())
            .env("USERS_SERVICE_URL", format!("http://{}", self.args.users_addr))
            .env("CLIENT_ID", "orders-service")
            .env("CLIENT_SECRET", self.client_secret.expose_secret())
            // Short refresh bounds so the local demo reacts quickly to key changes.
            .env("JWKS_REFRESH_MIN_SECS", "5")
            .env("REVOCATION_POLL_SECS", "5")
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        command.spawn().with_context(|| format!("failed to start {service}"))
    }

    fn start_auth(&mut self) -> anyhow::Result<()> {
        self.auth = Some(self.spawn("auth-server", self.args.auth_addr, "auth")?);
        Ok(())
    }

    async fn stop_auth(&mut self) {
        if let Some(mut child) = self.auth.take() {
            terminate(&mut child).await;
        }
    }
}

async fn supervise(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("failed to create {}", args.data_dir.display()))?;
    let client_secret = demo_client_secret(&args.data_dir)?;
    seed(&args, &client_secret).await?;

    let mut stack = Stack { args, client_secret, auth: None, users: dummy_child()?, orders: dummy_child()? };
    stack.start_auth()?;
    wait_ready(stack.args.auth_addr, "auth-server").await?;
    stack.users = stack.spawn("users-service", stack.args.users_addr, "users")?;
    stack.orders = stack.spawn("orders-service", stack.args.orders_addr, "orders")?;
    wait_ready(stack.args.users_addr, "users-service").await?;
    wait_ready(stack.args.orders_addr, "orders-service").await?;
    print_walkthrough(&stack.args);

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            () = service_kit::shutdown_signal() => break,
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(_)) => {
                    if stack.auth.is_some() {
                        stack.stop_auth().await;
                        println!(">> auth-server stopped. The services keep verifying tokens from their key cache.");
                        println!(">> Press Enter to start it again.");
                    } else {
                        stack.start_auth()?;
                        wait_ready(stack.args.auth_addr, "auth-server").await?;
                        println!(">> auth-server is back. Press Enter to stop it again.");
                    }
                }
                _ => stdin_open = false,
            },
            status = stack.users.wait() => anyhow::bail!("users-service exited: {status:?}"),
            status = stack.orders.wait() => anyhow::bail!("orders-service exited: {status:?}"),
        }
    }
    println!("stopping ...");
    stack.stop_auth().await;
    terminate(&mut stack.users).await;
    terminate(&mut stack.orders).await;
    println!("stopped; data kept in {}", stack.args.data_dir.display());
    Ok(())
}

/// A placeholder child replaced right after; keeps `Stack` free of `Option`s for the services.
fn dummy_child() -> anyhow::Result<Child> {
    Command::new("true").kill_on_drop(true).spawn().context("failed to spawn `true`")
}

/// The orders-service client secret: generated on first start, kept (0600) in the data dir so a
/// second start reuses it.
fn demo_client_secret(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join("orders-service-client-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(secret.trim().to_owned()));
    }
    let secret = auth_server::clients::generate_secret();
    shared_auth::persist::write_atomically(&path, secret.expose_secret().as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

/// Demo user, admin and the orders-service client, created on first start only.
async fn seed(args: &Args, client_secret: &SecretString) -> anyhow::Result<()> {
    let mut cli = auth_server::config::Cli::parse_from(["auth-server"]);
    cli.config.storage.data_dir = args.data_dir.join("auth");
    cli.config.storage.database_url = None;
    cli.config.issuer = format!("http://{}", args.auth_addr);
    let state = auth_server::build_state(cli.config).await?;
    auth_server::cli::demo_seed(&state, client_secret).await?;
    state.pool.close().await;
    Ok(())
}

async fn wait_ready(address: SocketAddr, name: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://{address}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{name} did not become ready on {address} within 30 s")
}

/// SIGTERM (graceful drain), then SIGKILL after 10 s.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

fn print_walkthrough(args: &Args) {
    let (auth, users, orders) = (args.auth_addr, args.users_addr, args.orders_addr);
    println!(
        r#"
JWT platform is running (data in {data}).

  auth-server     http://{auth}/docs
  users-service   http://{users}/docs
  orders-service  http://{orders}/docs

Demo accounts: demo / demo-password, admin / admin-password.
In another terminal:

  TOKEN=$(curl -s -X POST http://{auth}/v1/auth/login -H 'content-type: application/json' \
      -d '{{"username":"demo","password":"demo-password"}}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  curl -s http://{users}/v1/users/me -H "authorization: Bearer $TOKEN"
  curl -s -X POST http://{orders}/v1/orders -H "authorization: Bearer $TOKEN" \
      -H 'content-type: application/json' -d '{{"item":"coffee","quantity":2}}'
  curl -s http://{orders}/v1/orders -H "authorization: Bearer $TOKEN"

Then press Enter here to stop the auth server and run the last two commands again: they
still work, because each service verifies tokens with its cached keys. Press Enter again to
start the auth server. Ctrl-C stops everything.
"#,
        data = args.data_dir.display()
    );
}
