//! `platform`: the whole stack in one command, on SQLite, no Docker.
//!
//! `cargo run -p platform` seeds demo data on first start, then runs every service of
//! `services.toml` (auth-server, users-service, orders-service, demo-web) as a separate process (this same
//! binary re-executed with a service name, through `testkit::launch`), each on its contract port
//! with its own SQLite file under one data dir. Separate processes matter: the walkthrough stops
//! the auth server alone and shows the services carry on. Press Enter to stop or start the auth
//! server; Ctrl-C stops everything.
//!
//! A second auth server, "Acme ID" (`--acme-addr`, default `127.0.0.1:8090`), runs beside them as
//! the upstream OpenID provider of the login page's "Continue with Acme ID", with the user
//! `acme-user` / `acme-password` (`testkit::federation` registers the two servers at each other).

use std::ffi::OsString;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use secrecy::{ExposeSecret as _, SecretString};
use testkit::Services;
use testkit::launch::{Launcher, Programs, Stack};
use tokio::io::AsyncBufReadExt as _;

/// The hidden flag that makes this binary run one service.
const SERVICE_FLAG: &str = "--service";
/// Acme ID's port: its own, so its cookies (named by issuer host and port) never clash with
/// ours on 127.0.0.1.
const ACME_PORT: u16 = 8090;

/// Runs the JWT platform locally.
#[derive(Debug, clap::Parser)]
#[command(name = "platform", version, about)]
struct Args {
    /// Directory holding every service's SQLite database and key cache.
    #[arg(long, env = "PLATFORM_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// auth-server address.
    #[arg(long, default_value_t = Services::committed().auth_server().contract_address())]
    auth_addr: SocketAddr,
    /// users-service address.
    #[arg(long, default_value_t = contract_address("users-service"))]
    users_addr: SocketAddr,
    /// orders-service address.
    #[arg(long, default_value_t = contract_address("orders-service"))]
    orders_addr: SocketAddr,
    /// Address of "Acme ID", a second auth server that is the upstream OpenID provider behind
    /// the login page's "Continue with Acme ID" (its data under `DATA_DIR/acme`).
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, ACME_PORT)))]
    acme_addr: SocketAddr,
    /// Internal: run one service in this process (used by the supervisor).
    #[arg(long, hide = true)]
    service: Option<String>,
    /// Internal: that service's own arguments (`demo-seed`, say).
    #[arg(hide = true, requires = "service", trailing_var_arg = true, allow_hyphen_values = true)]
    service_args: Vec<OsString>,
}

impl Args {
    /// The addresses the flags give: the auth server's and the two services that have a flag of
    /// their own. Any other service listens on its contract port.
    fn addresses(&self) -> [(&str, SocketAddr); 3] {
        [
            (&Services::committed().auth_server().name, self.auth_addr),
            ("users-service", self.users_addr),
            ("orders-service", self.orders_addr),
        ]
    }
}

/// The contract address of `service` in `services.toml` (`127.0.0.1:0` when it is not listed:
/// its flag then moves nothing).
fn contract_address(service: &str) -> SocketAddr {
    Services::committed()
        .get(service)
        .map_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), |service| service.contract_address())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.service.clone() {
        Some(service) => run_service(&service, args.service_args).await,
        None => supervise(args).await.map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("platform: {error:#}");
        ExitCode::FAILURE
    })
}

/// Runs one service from its command line (the first item is its name).
type ServiceMain = fn(Vec<OsString>) -> Pin<Box<dyn Future<Output = anyhow::Result<ExitCode>>>>;

/// How this binary runs the service called `name`. Every service of `services.toml` needs an
/// arm here (and its crate in platform's dependencies), because platform runs each service from
/// its own binary; a test checks that none is missing.
fn service_main(name: &str) -> Option<ServiceMain> {
    Some(match name {
        "auth-server" => |command_line| {
            Box::pin(async move {
                let cli = auth_server::config::Cli::parse_from(command_line);
                auth_server::cli::run(cli).await
            })
        },
        "users-service" => {
            |command_line| Box::pin(run_resource(&users_service::SERVICE, users_service::api, command_line))
        }
        "orders-service" => {
            |command_line| Box::pin(run_resource(&orders_service::SERVICE, orders_service::api, command_line))
        }
        "demo-web" => |command_line| {
            Box::pin(async move { demo_web::run(demo_web::Cli::parse_from(command_line)).await })
        },
        _ => return None,
    })
}

async fn run_resource<Settings, Api>(
    service: &'static service_kit::ResourceService<Settings>,
    api: Api,
    command_line: Vec<OsString>,
) -> anyhow::Result<ExitCode>
where
    Settings: clap::Args,
    Api: FnOnce(service_kit::Resources, &Settings) -> anyhow::Result<utoipa_axum::router::OpenApiRouter>,
{
    let config = service.config_from(command_line).unwrap_or_else(|error| error.exit());
    let healthy = service.run(config, api).await?;
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Child mode: one service, configured from the environment the supervisor set and `args`.
async fn run_service(service: &str, args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let main = service_main(service).with_context(|| format!("unknown service {service}"))?;
    service_kit::init_telemetry();
    let command_line = std::iter::once(OsString::from(service)).chain(args).collect();
    main(command_line).await.with_context(|| format!("{service} failed"))
}

async fn supervise(args: Args) -> anyhow::Result<()> {
    let services = Services::committed();
    // It holds every service's database and the demo client secret: 0700, files 0600.
    service_kit::files::private_dir(&args.data_dir)?;
    let client_secret = demo_client_secret(&args.data_dir)?;
    let program = std::env::current_exe().context("cannot find the platform binary")?;
    let programs = Programs::Dispatcher { program, flag: SERVICE_FLAG.to_owned() };
    let mut launcher =
        Launcher::new(services.clone(), programs.clone(), &args.data_dir, client_secret.clone())
            // Short refresh bounds so the local demo reacts quickly to key changes.
            .resource_env("JWKS_REFRESH_MIN_SECS", 5)
            .resource_env("REVOCATION_POLL_SECS", 5)
            .rust_log(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
    for (service, address) in args.addresses() {
        if services.get(service).is_some() {
            launcher = launcher.listen(service, address)?;
        }
    }

    // Acme first: our server's first look at its discovery then finds it up.
    let acme = acme_launcher(&args, &programs, &client_secret)?;
    let auth = services.auth_server().name.clone();
    let acme_process = acme.start(&auth).await.context("failed to start Acme ID")?;
    let mut stack = Stack::start(launcher).await?;
    if let Some(added) = testkit::federation::register(stack.launcher(), &acme).await? {
        println!("registered Acme ID as the provider acme: {}", added.trim());
    }
    print_walkthrough(&args, stack.launcher());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            () = service_kit::shutdown_signal() => break,
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(_)) => {
                    if stack.is_running(&auth) {
                        stack.terminate(&auth).await;
                        println!(">> {auth} stopped. The services keep verifying tokens from their key cache.");
                        println!(">> Press Enter to start it again.");
                    } else {
                        stack.start_service(&auth).await?;
                        println!(">> {auth} is back. Press Enter to stop it again.");
                    }
                }
                _ => stdin_open = false,
            },
            (service, status) = stack.exited() => anyhow::bail!("{service} exited: {status:?}"),
        }
    }
    println!("stopping ...");
    acme_process.terminate().await;
    stack.stop().await;
    println!("stopped; data kept in {}", args.data_dir.display());
    Ok(())
}

/// "Acme ID": the same auth server, on its own port and database under `DATA_DIR/acme`, as
/// the upstream provider of ours (only its auth server runs).
fn acme_launcher(args: &Args, programs: &Programs, client_secret: &SecretString) -> anyhow::Result<Launcher> {
    let services = Services::committed();
    let data_dir = args.data_dir.join("acme");
    service_kit::files::private_dir(&data_dir)?;
    Launcher::new(services.clone(), programs.clone(), data_dir, client_secret.clone())
        .rust_log(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .listen(&services.auth_server().name, args.acme_addr)
}

/// The client secret of the service with client credentials (orders-service): generated on
/// first start, kept (0600) in the data dir so a second start reuses it.
fn demo_client_secret(data_dir: &Path) -> anyhow::Result<SecretString> {
    let client =
        Services::committed().resource_services().find_map(|service| service.resource()?.client_id.clone());
    let path = data_dir.join(format!("{}-client-secret", client.as_deref().unwrap_or("demo")));
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(secret.trim().to_owned()));
    }
    let secret = auth_server::clients::generate_secret();
    // Written 0600 from the start: never readable by others, not even until a chmod.
    shared_auth::persist::write_atomically(&path, secret.expose_secret().as_bytes())?;
    Ok(secret)
}

fn print_walkthrough(args: &Args, launcher: &Launcher) {
    let (auth, users, orders) = (args.auth_addr, args.users_addr, args.orders_addr);
    // The web app first: it is what a newcomer opens.
    let apps: String = launcher
        .services()
        .web_apps()
        .filter_map(|service| {
            Some(format!(
                "open {} and log in as demo / demo-password,\n  or click \"Continue with {}\" and log in there as {} / {}\n",
                launcher.url(&service.name)?,
                testkit::federation::DISPLAY_NAME,
                testkit::federation::USER,
                testkit::federation::PASSWORD,
            ))
        })
        .collect();
    let docs: String = launcher
        .services()
        .all()
        .iter()
        .filter(|service| !service.is_web_app())
        .filter_map(|service| Some(format!("  {:<16}{}/docs\n", service.name, launcher.url(&service.name)?)))
        .collect();
    println!(
        r#"
{apps}
JWT platform is running (data in {data}). Press Enter here to stop the auth server, and
keep working in the page: the services verify tokens with their cached keys.

{docs}
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo secret is a credential: 0600 (written so from the start by
    /// `write_atomically`), in a 0700 data dir, and kept across starts.
    #[cfg(unix)]
    #[test]
    fn the_demo_client_secret_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("data");
        service_kit::files::private_dir(&data_dir).unwrap();

        let first = demo_client_secret(&data_dir).unwrap();
        let again = demo_client_secret(&data_dir).unwrap();

        let written: Vec<_> =
            std::fs::read_dir(&data_dir).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!((mode(&data_dir), mode(&written[0])), (0o700, 0o600));
        assert_eq!(first.expose_secret(), again.expose_secret(), "a second start reuses it");
    }

    #[test]
    fn this_binary_can_run_every_service_of_services_toml() {
        let services = Services::committed();

        let missing: Vec<&str> = services
            .all()
            .iter()
            .map(|service| service.name.as_str())
            .filter(|name| service_main(name).is_none())
            .collect();

        assert!(missing.is_empty(), "add an arm to service_main (and a dependency) for {missing:?}");
        assert!(service_main("no-such-service").is_none());
    }

    #[test]
    fn the_address_flags_default_to_the_contract_ports() {
        let args = Args::parse_from(["platform"]);

        let addresses: Vec<String> =
            args.addresses().iter().map(|(_, address)| address.to_string()).collect();
        assert_eq!(addresses, ["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"]);
    }

    #[test]
    fn the_service_flag_takes_the_services_own_arguments_after_it() {
        let args = Args::parse_from([
            "platform",
            "--service",
            "auth-server",
            "users",
            "create",
            "ann",
            "--role",
            "admin",
        ]);

        assert_eq!(args.service.as_deref(), Some("auth-server"));
        assert_eq!(args.service_args, ["users", "create", "ann", "--role", "admin"]);
        assert!(Args::try_parse_from(["platform", "demo-seed"]).is_err(), "arguments need --service");
    }
}
