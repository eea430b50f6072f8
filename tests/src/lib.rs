//! End-to-end harness: starts the real `auth-server`, `users-service` and `orders-service`
//! binaries as separate processes on free loopback ports with temporary data dirs, with a
//! fault-injecting proxy (owned by the tests) between the services and the auth server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use proxy::{Fault, FaultProxy};

/// The directory holding the workspace's binaries (next to this test executable), building
/// them first if they are missing.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let directory = BUILT.get_or_init(|| {
        // target/debug/deps/<test binary> -> target/debug
        let directory = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
        let names = ["auth-server", "users-service", "orders-service"];
        if names.iter().any(|name| !directory.join(name).exists()) {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "auth-server", "-p", "users-service", "-p", "orders-service"])
                .status()
                .unwrap();
            assert!(status.success(), "building the service binaries failed");
        }
        directory
    });
    directory.join(name)
}

/// A free loopback port (bound then released; the service binds it right after).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// One running service process; killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    /// Its address.
    pub address: SocketAddr,
}

impl Process {
    /// SIGKILL, no chance to clean up: the harshest outage.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Settings of a test stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Seconds between publishing and using a rotated key.
    pub key_prepublish_secs: u64,
    /// Services' key refresh bounds.
    pub jwks_refresh_min_secs: u64,
    /// Services' key refresh bounds.
    pub jwks_refresh_max_secs: u64,
    /// Revocation poll interval.
    pub revocation_poll_secs: u64,
    /// Timeout of every call from a service to the auth server.
    pub auth_fetch_timeout_ms: u64,
    /// Cooldown between unknown-kid refetches.
    pub unknown_kid_cooldown_secs: u64,
    /// `Cache-Control: max-age` the auth server puts on its key set (drives service refresh).
    pub jwks_cache_max_age_secs: u64,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Stack").field("proxy", &self.proxy).finish_non_exhaustive()
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            key_prepublish_secs: 600,
            jwks_refresh_min_secs: 1,
            jwks_refresh_max_secs: 300,
            revocation_poll_secs: 1,
            auth_fetch_timeout_ms: 500,
            unknown_kid_cooldown_secs: 30,
            jwks_cache_max_age_secs: 1,
        }
    }
}

/// The three services, the proxy in front of the auth server, and their data dirs.
pub struct Stack {
    /// auth-server (None while stopped).
    pub auth: Option<Process>,
    /// users-service.
    pub users: Option<Process>,
    /// orders-service.
    pub orders: Option<Process>,
    /// Between the services and the auth server; its URL is the issuer.
    pub proxy: FaultProxy,
    /// Where the auth server listens (stable across restarts).
    pub auth_address: SocketAddr,
    users_address: SocketAddr,
    orders_address: SocketAddr,
    options: StackOptions,
    client_secret: String,
    data: tempfile::TempDir,
    /// HTTP client for the tests.
    pub http: reqwest::Client,
}

impl Stack {
    /// Starts everything and waits until all three are ready.
    pub async fn start(options: StackOptions) -> Self {
        let auth_address = free_port();
        let proxy = FaultProxy::start(format!("http://{auth_address}")).await;
        let data = tempfile::tempdir().unwrap();
        let mut stack = Self {
            auth: None,
            users: None,
            orders: None,
            proxy,
            auth_address,
            users_address: free_port(),
            orders_address: free_port(),
            options,
            client_secret: "e2e-orders-client-secret".into(),
            data,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
        };
        let seed = stack
            .auth_command(&["demo-seed"])
            .env("DEMO_CLIENT_SECRET", &stack.client_secret)
            .output()
            .unwrap();
        assert!(seed.status.success(), "demo-seed failed: {}", String::from_utf8_lossy(&seed.stderr));
        stack.start_auth().await;
        stack.start_users().await;
        stack.start_orders().await;
        stack
    }

    fn auth_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("auth-server"));
        command
            .args(args)
            .env("LISTEN_ADDR", self.auth_address.to_string())
            .env("DATA_DIR", self.data.path().join("auth"))
            .env("ISSUER", self.proxy.url())
            .env("KEY_PREPUBLISH_SECS", self.options.key_prepublish_secs.to_string())
            .env("KEY_RELOAD_SECS", "1")
            .env("JWKS_MAX_AGE_SECS", self.options.jwks_cache_max_age_secs.to_string())
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::null());
        command
    }

    fn service_command(&self, binary_name: &str, address: SocketAddr, data: &str) -> Command {
        let options = &self.options;
        let mut command = Command::new(binary(binary_name));
        command
            .env("LISTEN_ADDR", address.to_string())
            .env("DATA_DIR", self.data.path().join(data))
            .env_remove("DATABASE_URL")
            .env("AUTH_ISSUER", self.proxy.url())
            .env("USERS_SERVICE_URL", format!("http://{}", self.users_address))
            .env("CLIENT_ID", "orders-service")
            .env("CLIENT_SECRET", &self.client_secret)
            .env("JWKS_REFRESH_MIN_SECS", options.jwks_refresh_min_secs.to_string())
            .env("JWKS_REFRESH_MAX_SECS", options.jwks_refresh_max_secs.to_string())
            .env("REVOCATION_POLL_SECS", options.revocation_poll_secs.to_string())
            .env("AUTH_FETCH_TIMEOUT_MS", options.auth_fetch_timeout_ms.to_string())
            .env("UNKNOWN_KID_COOLDOWN_SECS", options.unknown_kid_cooldown_secs.to_string())
            .env("USERS_SERVICE_TIMEOUT_MS", "1000")
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::null());
        command
    }

    async fn launch(&self, mut command: Command, address: SocketAddr, name: &str) -> Process {
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        let process = Process { child: Some(child), address };
        self.wait_ready(&process.url(), name).await;
        process
    }

    async fn wait_ready(&self, url: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(format!("{url}/readyz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{name} not ready within 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts (or restarts) the auth server.
    pub async fn start_auth(&mut self) {
        let command = self.auth_command(&["serve"]);
        self.auth = Some(self.launch(command, self.auth_address, "auth-server").await);
    }

    /// SIGKILLs the auth server.
    pub fn kill_auth(&mut self) {
        if let Some(mut auth) = self.auth.take() {
            auth.kill();
        }
    }

    /// Starts (or restarts) users-service; during an auth outage it must come up from its
    /// disk cache.
    pub async fn start_users(&mut self) {
        if let Some(mut old) = self.users.take() {
            old.kill();
        }
        let command = self.service_command("users-service", self.users_address, "users");
        self.users = Some(self.launch(command, self.users_address, "users-service").await);
    }

    /// Starts (or restarts) orders-service.
    pub async fn start_orders(&mut self) {
        if let Some(mut old) = self.orders.take() {
            old.kill();
        }
        let command = self.service_command("orders-service", self.orders_address, "orders");
        self.orders = Some(self.launch(command, self.orders_address, "orders-service").await);
    }

    /// Runs an operator subcommand against the auth database.
    pub fn auth_cli(&self, args: &[&str]) -> String {
        let output = self.auth_command(args).output().unwrap();
        assert!(output.status.success(), "auth-server {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// auth-server base URL (direct, not through the proxy).
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.auth_address)
    }

    /// users-service base URL.
    pub fn users_url(&self) -> String {
        format!("http://{}", self.users_address)
    }

    /// orders-service base URL.
    pub fn orders_url(&self) -> String {
        format!("http://{}", self.orders_address)
    }

    /// Registers a user.
    pub async fn register(&self, username: &str, password: &str) {
        let response = self
            .http
            .post(format!("{}/v1/users", self.auth_url()))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "register {username}");
    }

    /// Logs in; returns the token response.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/v1/auth/login", self.auth_url()))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login {username}");
        response.json().await.unwrap()
    }

    /// Uses a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth2/token", self.auth_url()))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .send()
            .await
            .unwrap()
    }

    /// GET with a bearer token.
    pub async fn get(&self, url: &str, token: &str) -> reqwest::Response {
        self.http.get(url).bearer_auth(token).send().await.unwrap()
    }

    /// Creates an order.
    pub async fn order(&self, token: &str, item: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/orders", self.orders_url()))
            .bearer_auth(token)
            .json(&json!({"item": item, "quantity": 1}))
            .send()
            .await
            .unwrap()
    }
}

/// What a stream of requests saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Requests sent.
    pub requests: usize,
    /// Responses that were not the expected status (or no response).
    pub failures: usize,
    /// Slowest request.
    pub worst: Duration,
    /// Statuses seen, for diagnostics.
    pub unexpected: Vec<String>,
}

impl LoadReport {
    /// Merges another report.
    pub fn merge(&mut self, other: LoadReport) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.worst = self.worst.max(other.worst);
        self.unexpected.extend(other.unexpected.into_iter().take(5));
    }

    /// Prints the figures under a label.
    pub fn print(&self, label: &str) {
        println!(
            "[{label}] requests: {}, failures: {}, worst latency: {:.1} ms",
            self.requests,
            self.failures,
            self.worst.as_secs_f64() * 1000.0
        );
    }
}

/// Sends GETs to `urls` in turn with `token`, `workers` at a time, for `duration`, expecting
/// `expected` every time.
pub async fn steady_stream(
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
    expected: u16,
    workers: usize,
    duration: Duration,
) -> LoadReport {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let http = http.clone();
            let urls = urls.to_vec();
            let token = token.to_owned();
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                let mut index = worker;
                while Instant::now() < deadline {
                    let url = &urls[index % urls.len()];
                    index += 1;
                    let started = Instant::now();
                    let outcome = http.get(url).bearer_auth(&token).send().await;
                    report.worst = report.worst.max(started.elapsed());
                    report.requests += 1;
                    match outcome {
                        Ok(response) if response.status().as_u16() == expected => {}
                        Ok(response) => {
                            report.failures += 1;
                            report.unexpected.push(format!("{url} -> {}", response.status()));
                        }
                        Err(error) => {
                            report.failures += 1;
                            report.unexpected.push(format!("{url} -> {error}"));
                        }
                    }
                    // About 100 requests per second per worker: steady, not a benchmark.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                report
            })
        })
        .collect();
    let mut total = LoadReport::default();
    for task in tasks {
        total.merge(task.await.unwrap());
    }
    total
}
