//! The one launcher of the platform's real binaries, shared by `platform` and the end-to-end
//! tests: it starts each service of `services.toml` as a separate process with the environment
//! its role there calls for (listen address, data dir, issuer, the other services' URLs, client
//! credentials, the web apps' origins for CORS), waits until it answers `/readyz`, and stops it.
//!
//! A [`Program`] is a path and the arguments before a service's own, so both ways of running a
//! service fit: the tests run the workspace's binaries ([`Programs::Directory`]), `platform`
//! re-executes itself as `platform --service NAME` ([`Programs::Dispatcher`]).
//!
//! This module runs inside `platform`, not only in tests, so it returns errors rather than
//! panicking.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::process::{Child, Command};

use crate::services::{Role, Services};

/// How long a service may take from its start to its first 200 on `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a service may drain after SIGTERM before it is killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A program that runs one service: its path and the arguments before the service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The executable.
    pub path: PathBuf,
    /// Arguments that come first (`--service NAME` for a dispatcher).
    pub leading_args: Vec<OsString>,
}

/// Where each service's program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Programs {
    /// `DIRECTORY/NAME`: the binaries cargo built (what the end-to-end tests run).
    Directory(PathBuf),
    /// `PROGRAM FLAG NAME`: one program that can run every service (`platform --service NAME`).
    Dispatcher {
        /// The program.
        program: PathBuf,
        /// The flag that names the service.
        flag: String,
    },
}

impl Programs {
    /// The program that runs `service`.
    pub fn program(&self, service: &str) -> Program {
        match self {
            Self::Directory(directory) => Program { path: directory.join(service), leading_args: vec![] },
            Self::Dispatcher { program, flag } => {
                Program { path: program.clone(), leading_args: vec![flag.into(), service.into()] }
            }
        }
    }
}

/// The workspace's binaries next to the running test executable (`target/debug/deps/TEST` →
/// `target/debug`), built with cargo first when one of `services` is missing there.
pub fn workspace_binaries(services: &Services) -> anyhow::Result<Programs> {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let executable = std::env::current_exe().context("cannot find the running executable")?;
    let directory = executable
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in a cargo target directory", executable.display()))?
        .to_path_buf();
    let missing = || services.all().iter().any(|service| !directory.join(&service.name).exists());
    // One build per test process, whatever the number of tests asking at once.
    let _building = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if missing() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.arg("build");
        for service in services.all() {
            build.args(["-p", &service.name]);
        }
        let status = build.status().context("failed to run cargo build")?;
        anyhow::ensure!(status.success(), "building the service binaries failed ({status})");
    }
    Ok(Programs::Directory(directory))
}

/// A free loopback port (bound, then released for the service to bind right after).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?)
}

/// How to start every service of a stack: programs, addresses, data dir, issuer, secrets and
/// extra settings.
#[derive(Debug)]
pub struct Launcher {
    services: Services,
    programs: Programs,
    data_dir: PathBuf,
    addresses: HashMap<String, SocketAddr>,
    issuer: Option<String>,
    client_secret: SecretString,
    auth_env: Vec<(String, String)>,
    resource_env: Vec<(String, String)>,
    rust_log: Option<String>,
}

impl Launcher {
    /// Every service of `services` on its contract port, with its data under `data_dir`; the
    /// service with a client id (and the auth server's `demo-seed`) gets `client_secret`.
    pub fn new(
        services: Services,
        programs: Programs,
        data_dir: impl Into<PathBuf>,
        client_secret: SecretString,
    ) -> Self {
        let addresses =
            services.all().iter().map(|service| (service.name.clone(), service.contract_address())).collect();
        Self {
            services,
            programs,
            data_dir: data_dir.into(),
            addresses,
            issuer: None,
            client_secret,
            auth_env: vec![],
            resource_env: vec![],
            rust_log: None,
        }
    }

    /// Every service on a free loopback port instead.
    pub fn on_free_ports(mut self) -> anyhow::Result<Self> {
        for address in self.addresses.values_mut() {
            *address = free_port()?;
        }
        Ok(self)
    }

    /// `service` listens on `address`.
    pub fn listen(mut self, service: &str, address: SocketAddr) -> anyhow::Result<Self> {
        let slot =
            self.addresses.get_mut(service).with_context(|| format!("{service} is not in services.toml"))?;
        *slot = address;
        Ok(self)
    }

    /// The issuer URL the auth server names and the services trust (default: the auth server's
    /// own URL; a proxy in front of it in the end-to-end tests).
    pub fn issuer(mut self, url: impl Into<String>) -> Self {
        self.issuer = Some(url.into());
        self
    }

    /// An environment variable for the auth server.
    pub fn auth_env(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.auth_env.push((name.into(), value.to_string()));
        self
    }

    /// An environment variable for every resource service.
    pub fn resource_env(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.resource_env.push((name.into(), value.to_string()));
        self
    }

    /// `RUST_LOG` for every service (default: inherited).
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = Some(filter.into());
        self
    }

    /// The services it starts.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Where `service` listens.
    pub fn address(&self, service: &str) -> Option<SocketAddr> {
        self.addresses.get(service).copied()
    }

    /// The base URL of `service`.
    pub fn url(&self, service: &str) -> Option<String> {
        self.address(service).map(|address| format!("http://{address}"))
    }

    /// The issuer URL.
    pub fn issuer_url(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| format!("http://{}", self.auth_address()))
    }

    /// The stack's data dir (each service has a sub-directory).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The browser origins of the web apps where this launcher starts them: the other binaries'
    /// `CORS_ALLOWED_ORIGINS`.
    pub fn web_origins(&self) -> Vec<String> {
        self.services.web_apps().filter_map(|service| self.url(&service.name)).collect()
    }

    fn auth_address(&self) -> SocketAddr {
        // `new` gives every listed service an address, and the auth server is always listed.
        self.addresses[&self.services.auth_server().name]
    }

    /// The command that runs `service` with `args` (none: the server itself), its environment
    /// set; standard input is closed and the process is killed if the command is dropped.
    pub fn command(&self, service: &str, args: &[&str]) -> anyhow::Result<Command> {
        let entry =
            self.services.get(service).with_context(|| format!("{service} is not in services.toml"))?;
        let address = self.address(service).with_context(|| format!("{service} has no address"))?;
        let program = self.programs.program(service);
        let mut command = Command::new(&program.path);
        command
            .args(&program.leading_args)
            .args(args)
            .env("LISTEN_ADDR", address.to_string())
            .env("DATA_DIR", self.data_dir.join(&entry.data_dir))
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(filter) = &self.rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut web_origins = self.web_origins();
        if matches!(entry.role, Role::AuthServer) && !web_origins.is_empty() {
            // Swagger UI on each service's /docs logs in at the auth server and posts the code
            // to its token endpoint from the service's origin.
            web_origins
                .extend(self.services.resource_services().filter_map(|service| self.url(&service.name)));
        }
        if !entry.is_web_app() && !web_origins.is_empty() {
            command.env("CORS_ALLOWED_ORIGINS", web_origins.join(","));
        }
        match &entry.role {
            Role::AuthServer => {
                command.env("ISSUER", self.issuer_url());
                let audiences = self.services.user_audiences();
                if !audiences.is_empty() {
                    command.env("TOKEN_AUDIENCES", audiences.join(","));
                }
                command.envs(self.auth_env.iter().map(|(name, value)| (name, value)));
            }
            Role::Resource(needs) => {
                command.env("AUTH_ISSUER", self.issuer_url());
                for (variable, target) in &needs.urls {
                    let url =
                        self.url(target).with_context(|| format!("{service}: {target} has no address"))?;
                    command.env(variable, url);
                }
                if let Some(client_id) = &needs.client_id {
                    command.env("CLIENT_ID", client_id).env("CLIENT_SECRET", self.secret());
                }
                command.envs(self.resource_env.iter().map(|(name, value)| (name, value)));
            }
            Role::WebApp(needs) => {
                // What the browser reaches: the issuer and the services' URLs.
                command.env("AUTH_ISSUER", self.issuer_url());
                for (variable, target) in &needs.urls {
                    let url =
                        self.url(target).with_context(|| format!("{service}: {target} has no address"))?;
                    command.env(variable, url);
                }
            }
        }
        Ok(command)
    }

    fn secret(&self) -> &str {
        self.client_secret.expose_secret()
    }

    /// Runs `service args` to completion (an operator subcommand such as `keys rotate`) and
    /// returns its standard output; a failure carries its standard error.
    pub async fn run(&self, service: &str, args: &[&str]) -> anyhow::Result<String> {
        finish(self.command(service, args)?, service, args).await
    }

    /// [`Launcher::run`] with `input` on standard input (a password, a client secret).
    pub async fn run_with_input(&self, service: &str, args: &[&str], input: &str) -> anyhow::Result<String> {
        use tokio::io::AsyncWriteExt as _;
        let mut command = self.command(service, args)?;
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().with_context(|| format!("failed to run {service} {args:?}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).await.context("failed to write standard input")?;
        }
        let output =
            child.wait_with_output().await.with_context(|| format!("failed to run {service} {args:?}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{service} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .with_context(|| format!("{service} {args:?} printed something not UTF-8"))
    }

    /// `auth-server demo-seed`: the demo accounts and the client of `services.toml` with the
    /// client secret, each created only if missing. Returns what it printed.
    pub async fn seed(&self) -> anyhow::Result<String> {
        let auth = &self.services.auth_server().name;
        let mut command = self.command(auth, &["demo-seed"])?;
        // Errors only: what it warns about at start, the server it seeds warns about again.
        command.env("DEMO_CLIENT_SECRET", self.secret()).env("RUST_LOG", "error");
        finish(command, auth, &["demo-seed"]).await
    }

    /// Registers the demo's public browser clients for the addresses this launcher uses: each
    /// web app under its own name (demo-web's default `CLIENT_ID`), redirecting to
    /// `URL/callback`, and `swagger-ui`, redirecting to every binary's `/docs`. `demo-seed`
    /// registers them for the contract ports and keeps a client that exists, so calling this
    /// before [`Stack::start`] lets a real browser log in to a stack on free ports.
    pub async fn register_browser_clients(&self) -> anyhow::Result<()> {
        let auth = self.services.auth_server().name.clone();
        let user_scope = self
            .auth_env
            .iter()
            .rev()
            .find(|(name, _)| name == "USER_SCOPE")
            .map_or_else(|| crate::scopes::USER_SCOPES.join(" "), |(_, value)| value.clone());
        let scope = format!("openid profile {user_scope}");
        for web_app in self.services.web_apps() {
            let origin =
                self.url(&web_app.name).with_context(|| format!("{} has no address", web_app.name))?;
            let (callback, home) = (format!("{origin}/callback"), format!("{origin}/"));
            // The web apps bind their tokens to a key the page cannot export (DPoP).
            let args = [
                "clients",
                "create",
                &web_app.name,
                "--public",
                "--first-party",
                "--dpop",
                "--scope",
                &scope,
            ];
            let uris = ["--redirect-uri", &callback, "--post-logout-redirect-uri", &home];
            self.run(&auth, &[&args[..], &uris[..]].concat()).await?;
        }
        let docs: Vec<String> = self
            .services
            .all()
            .iter()
            .filter(|service| !service.is_web_app())
            .filter_map(|service| self.url(&service.name))
            .map(|url| format!("{url}/docs/oauth2-redirect.html"))
            .collect();
        let mut args =
            vec!["clients", "create", "swagger-ui", "--public", "--first-party", "--scope", &scope];
        for uri in &docs {
            args.extend(["--redirect-uri", uri]);
        }
        self.run(&auth, &args).await?;
        Ok(())
    }

    /// Starts `service` and waits until it is ready.
    pub async fn start(&self, service: &str) -> anyhow::Result<Process> {
        let mut process = self.spawn(service)?;
        process.wait_ready().await?;
        Ok(process)
    }

    /// [`Launcher::start`] with the service's standard error, where its logs go, written to
    /// `log`: for tests that read what a real binary logged.
    pub async fn start_logging_to(&self, service: &str, log: std::fs::File) -> anyhow::Result<Process> {
        self.reserve_data_dir(service)?;
        let mut command = self.command(service, &[])?;
        command.stderr(Stdio::from(log));
        let child = command.spawn().with_context(|| format!("failed to start {service}"))?;
        let address = self.address(service).with_context(|| format!("{service} has no address"))?;
        let mut process = Process { name: service.to_owned(), address, child, started: Instant::now() };
        process.wait_ready().await?;
        Ok(process)
    }

    fn spawn(&self, service: &str) -> anyhow::Result<Process> {
        self.reserve_data_dir(service)?;
        let child =
            self.command(service, &[])?.spawn().with_context(|| format!("failed to start {service}"))?;
        let address = self.address(service).with_context(|| format!("{service} has no address"))?;
        Ok(Process { name: service.to_owned(), address, child, started: Instant::now() })
    }
}

impl Launcher {
    /// A web app keeps nothing on disk, so it never creates its data dir; the stack does (0700),
    /// so every service of the file has one, as the others create theirs at start.
    fn reserve_data_dir(&self, service: &str) -> anyhow::Result<()> {
        match self.services.get(service) {
            Some(entry) if entry.is_web_app() => {
                service_kit::files::private_dir(&self.data_dir)?;
                service_kit::files::private_dir(&self.data_dir.join(&entry.data_dir))
            }
            _ => Ok(()),
        }
    }
}

async fn finish(mut command: Command, service: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = command.output().await.with_context(|| format!("failed to run {service} {args:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{service} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .with_context(|| format!("{service} {args:?} printed something not UTF-8"))
}

/// One running service; killed if dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    address: SocketAddr,
    child: Child,
    started: Instant,
}

impl Process {
    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until `/readyz` answers 200; fails when the process exits first or it takes longer
    /// than 30 s.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/readyz", self.url());
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited ({status}) before it was ready", self.name);
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            anyhow::ensure!(
                self.started.elapsed() < READY_TIMEOUT,
                "{} did not become ready on {} within {} s",
                self.name,
                self.address,
                READY_TIMEOUT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL, no chance to clean up (the harshest outage), and waits for the exit.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM (a graceful drain), then SIGKILL after 10 s.
    pub async fn terminate(mut self) {
        self.send_sigterm().await;
        self.wait_or_kill().await;
    }

    async fn send_sigterm(&self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
    }

    async fn wait_or_kill(&mut self) {
        if tokio::time::timeout(DRAIN_TIMEOUT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// Waits until it exits by itself.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }
}

/// The running stack: the processes a [`Launcher`] started, by service name.
#[derive(Debug)]
pub struct Stack {
    launcher: Launcher,
    running: HashMap<String, Process>,
}

impl Stack {
    /// Seeds the auth server's database ([`Launcher::seed`], printing what it created), starts
    /// the auth server, then every resource service and web app, and waits until each is ready.
    pub async fn start(launcher: Launcher) -> anyhow::Result<Self> {
        print!("{}", launcher.seed().await?);
        let mut stack = Self { launcher, running: HashMap::new() };
        let auth = stack.auth_server().to_owned();
        stack.start_service(&auth).await?;
        let mut starting = Vec::new();
        for service in stack.launcher.services.all().iter().filter(|service| service.name != auth) {
            starting.push(stack.launcher.spawn(&service.name)?);
        }
        for mut process in starting {
            process.wait_ready().await?;
            stack.running.insert(process.name.clone(), process);
        }
        Ok(stack)
    }

    /// The launcher: addresses, URLs, operator commands.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// The auth server's name.
    pub fn auth_server(&self) -> &str {
        &self.launcher.services.auth_server().name
    }

    /// The base URL of `service`.
    pub fn url(&self, service: &str) -> Option<String> {
        self.launcher.url(service)
    }

    /// Whether `service` is running.
    pub fn is_running(&self, service: &str) -> bool {
        self.running.contains_key(service)
    }

    /// Starts `service`, or restarts it (SIGKILL first) when it runs, and waits until it is
    /// ready.
    pub async fn start_service(&mut self, service: &str) -> anyhow::Result<()> {
        self.kill(service).await;
        let process = self.launcher.start(service).await?;
        self.running.insert(service.to_owned(), process);
        Ok(())
    }

    /// SIGKILLs `service`, if it runs.
    pub async fn kill(&mut self, service: &str) {
        if let Some(process) = self.running.remove(service) {
            process.kill().await;
        }
    }

    /// Stops `service` gracefully, if it runs.
    pub async fn terminate(&mut self, service: &str) {
        if let Some(process) = self.running.remove(service) {
            process.terminate().await;
        }
    }

    /// Stops every service gracefully: SIGTERM to all at once, then SIGKILL to any still
    /// running after 10 s.
    pub async fn stop(&mut self) {
        let stopping: Vec<Process> = self.running.drain().map(|(_, process)| process).collect();
        for process in &stopping {
            process.send_sigterm().await;
        }
        for mut process in stopping {
            process.wait_or_kill().await;
        }
    }

    /// Waits until a running resource service exits by itself; returns its name and status.
    /// Pending forever while none runs.
    pub async fn exited(&mut self) -> (String, std::io::Result<ExitStatus>) {
        let auth = &self.launcher.services.auth_server().name;
        let waits: Vec<_> = self
            .running
            .iter_mut()
            .filter(|(name, _)| *name != auth)
            .map(|(name, process)| Box::pin(async move { (name.clone(), process.wait().await) }))
            .collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        futures_util::future::select_all(waits).await.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher(programs: Programs) -> Launcher {
        Launcher::new(Services::committed().clone(), programs, "/data", SecretString::from("s3cret"))
    }

    fn env_of(command: &Command) -> HashMap<String, Option<String>> {
        command
            .as_std()
            .get_envs()
            .map(|(name, value)| {
                (name.to_string_lossy().into_owned(), value.map(|value| value.to_string_lossy().into_owned()))
            })
            .collect()
    }

    fn set(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    #[test]
    fn a_dispatcher_gets_the_flag_and_the_service_before_the_services_own_arguments() {
        let launcher =
            launcher(Programs::Dispatcher { program: "/bin/platform".into(), flag: "--service".into() });

        let command = launcher.command("auth-server", &["keys", "rotate"]).unwrap();

        let command = command.as_std();
        assert_eq!(command.get_program(), "/bin/platform");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["--service", "auth-server", "keys", "rotate"]);
    }

    #[test]
    fn a_directory_program_is_the_binary_of_the_service() {
        let launcher = launcher(Programs::Directory("/target/debug".into()));

        let command = launcher.command("users-service", &[]).unwrap();

        assert_eq!(command.as_std().get_program(), "/target/debug/users-service");
        assert_eq!(command.as_std().get_args().count(), 0);
    }

    #[test]
    fn the_auth_server_gets_the_issuer_and_the_audiences_of_user_tokens() {
        let launcher = launcher(Programs::Directory("/bin".into()))
            .issuer("http://127.0.0.1:9999")
            .auth_env("KEY_RELOAD_SECS", 1);

        let env = env_of(&launcher.command("auth-server", &[]).unwrap());

        assert_eq!(env["LISTEN_ADDR"], set("127.0.0.1:8080"));
        assert_eq!(env["DATA_DIR"], set("/data/auth"));
        assert_eq!(env["DATABASE_URL"], None, "removed, so the SQLite file under DATA_DIR is used");
        assert_eq!(env["ISSUER"], set("http://127.0.0.1:9999"));
        assert_eq!(env["TOKEN_AUDIENCES"], set(&launcher.services().user_audiences().join(",")));
        assert!(env["TOKEN_AUDIENCES"].as_ref().unwrap().starts_with("users-service,orders-service"));
        assert_eq!(env["KEY_RELOAD_SECS"], set("1"));
        assert!(!env.contains_key("AUTH_ISSUER") && !env.contains_key("CLIENT_SECRET"));
    }

    #[test]
    fn a_resource_service_gets_the_issuer_its_urls_and_its_client_credentials() {
        let launcher = launcher(Programs::Directory("/bin".into()))
            .listen("users-service", "127.0.0.1:7001".parse().unwrap())
            .unwrap()
            .resource_env("REVOCATION_POLL_SECS", 5)
            .rust_log("warn");

        let orders = env_of(&launcher.command("orders-service", &[]).unwrap());
        let users = env_of(&launcher.command("users-service", &[]).unwrap());

        assert_eq!(orders["LISTEN_ADDR"], set("127.0.0.1:8082"));
        assert_eq!(orders["DATA_DIR"], set("/data/orders"));
        assert_eq!(orders["AUTH_ISSUER"], set("http://127.0.0.1:8080"), "the auth server itself by default");
        assert_eq!(orders["USERS_SERVICE_URL"], set("http://127.0.0.1:7001"));
        assert_eq!(orders["CLIENT_ID"], set("orders-service"));
        assert_eq!(orders["CLIENT_SECRET"], set("s3cret"));
        assert_eq!(orders["REVOCATION_POLL_SECS"], set("5"));
        assert_eq!(orders["RUST_LOG"], set("warn"));
        assert_eq!(users["LISTEN_ADDR"], set("127.0.0.1:7001"));
        assert!(!users.contains_key("CLIENT_SECRET") && !users.contains_key("ISSUER"));
    }

    #[test]
    fn the_web_app_gets_the_urls_the_browser_reaches_and_the_others_allow_its_origin() {
        let launcher = launcher(Programs::Directory("/bin".into()))
            .listen("demo-web", "127.0.0.1:7083".parse().unwrap())
            .unwrap()
            .resource_env("REVOCATION_POLL_SECS", 5);

        let web = env_of(&launcher.command("demo-web", &[]).unwrap());

        assert_eq!(web["LISTEN_ADDR"], set("127.0.0.1:7083"));
        assert_eq!(web["AUTH_ISSUER"], set("http://127.0.0.1:8080"));
        assert_eq!(web["USERS_SERVICE_URL"], set("http://127.0.0.1:8081"));
        assert_eq!(web["ORDERS_SERVICE_URL"], set("http://127.0.0.1:8082"));
        assert!(!web.contains_key("CORS_ALLOWED_ORIGINS") && !web.contains_key("REVOCATION_POLL_SECS"));
        for service in ["users-service", "orders-service"] {
            let env = env_of(&launcher.command(service, &[]).unwrap());
            assert_eq!(env["CORS_ALLOWED_ORIGINS"], set("http://127.0.0.1:7083"), "{service}");
        }
        // The auth server also allows the services' origins: their Swagger UI posts its code to
        // the token endpoint.
        let auth = env_of(&launcher.command("auth-server", &[]).unwrap());
        assert_eq!(
            auth["CORS_ALLOWED_ORIGINS"],
            set("http://127.0.0.1:7083,http://127.0.0.1:8081,http://127.0.0.1:8082")
        );
    }

    #[test]
    fn free_ports_are_distinct_loopback_addresses() {
        let launcher = launcher(Programs::Directory("/bin".into())).on_free_ports().unwrap();

        let addresses: std::collections::HashSet<SocketAddr> = launcher
            .services()
            .all()
            .iter()
            .map(|service| launcher.address(&service.name).unwrap())
            .collect();

        assert_eq!(addresses.len(), launcher.services().all().len());
        assert!(addresses.iter().all(|address| address.ip().is_loopback() && address.port() != 0));
    }

    #[test]
    fn a_service_not_in_the_file_is_an_error() {
        let launcher = launcher(Programs::Directory("/bin".into()));

        let error = launcher.command("no-such-service", &[]).unwrap_err();

        assert!(error.to_string().contains("no-such-service is not in services.toml"), "{error}");
        assert!(launcher.listen("no-such-service", "127.0.0.1:1".parse().unwrap()).is_err());
    }

    #[tokio::test]
    async fn a_program_that_exits_before_it_is_ready_fails_the_start_at_once() {
        // `false --service users-service`: exits 1 at once.
        let programs = Programs::Dispatcher { program: "false".into(), flag: "--service".into() };
        let launcher = launcher(programs).on_free_ports().unwrap();
        let started = Instant::now();

        let error = launcher.start("users-service").await.unwrap_err();

        assert!(
            error.to_string().contains("users-service exited (exit status: 1) before it was ready"),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "it waited for the ready timeout");
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_standard_error() {
        // `sh -c auth-server keys`: sh runs a command `auth-server` that does not exist.
        let launcher = launcher(Programs::Dispatcher { program: "sh".into(), flag: "-c".into() });

        let error = launcher.run("auth-server", &["keys"]).await.unwrap_err();

        let message = error.to_string();
        assert!(message.starts_with("auth-server [\"keys\"] failed (exit status: 127)"), "{message}");
        assert!(message.contains("not found"), "the standard error is in the message: {message}");
    }
}
