//! End-to-end harness: starts the real binaries of every service in `services.toml` (through
//! `testkit::launch`, the launcher `platform` uses too) as separate processes on free loopback
//! ports with a temporary data dir, with a fault-injecting proxy (owned by the tests) between
//! the services and the auth server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::Services;
use testkit::launch::{self, Launcher};

pub use proxy::{Fault, FaultProxy};

/// The secret `auth-server demo-seed` registers orders-service's client with in a test stack
/// (orders-service gets it as `CLIENT_SECRET`), for tests that act as orders-service.
pub const ORDERS_CLIENT_SECRET: &str = "e2e-orders-client-secret";

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

/// Every service, the proxy in front of the auth server, and their data dir.
pub struct Stack {
    services: launch::Stack,
    /// Between the services and the auth server; its URL is the issuer.
    pub proxy: FaultProxy,
    /// HTTP client for the tests.
    pub http: reqwest::Client,
    // Dropped last: the processes above are killed first.
    _data: tempfile::TempDir,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Stack").field("proxy", &self.proxy).finish_non_exhaustive()
    }
}

impl Stack {
    /// Seeds the auth server, starts every service and waits until all are ready.
    pub async fn start(options: StackOptions) -> Self {
        let services = Services::committed();
        let data = tempfile::tempdir().unwrap();
        let secret = SecretString::from(ORDERS_CLIENT_SECRET);
        let launcher = Launcher::new(
            services.clone(),
            launch::workspace_binaries(services).unwrap(),
            data.path(),
            secret,
        )
        .on_free_ports()
        .unwrap();
        let auth = launcher.url(&services.auth_server().name).unwrap();
        let proxy = FaultProxy::start(auth).await;
        let launcher = launcher
            .issuer(proxy.url())
            .auth_env("KEY_PREPUBLISH_SECS", options.key_prepublish_secs)
            .auth_env("KEY_RELOAD_SECS", 1)
            .auth_env("JWKS_MAX_AGE_SECS", options.jwks_cache_max_age_secs)
            .resource_env("JWKS_REFRESH_MIN_SECS", options.jwks_refresh_min_secs)
            .resource_env("JWKS_REFRESH_MAX_SECS", options.jwks_refresh_max_secs)
            .resource_env("REVOCATION_POLL_SECS", options.revocation_poll_secs)
            .resource_env("AUTH_FETCH_TIMEOUT_MS", options.auth_fetch_timeout_ms)
            .resource_env("UNKNOWN_KID_COOLDOWN_SECS", options.unknown_kid_cooldown_secs)
            .resource_env("USERS_SERVICE_TIMEOUT_MS", 1000)
            .rust_log(std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()));
        let services = launch::Stack::start(launcher).await.unwrap();
        Self {
            services,
            proxy,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
            _data: data,
        }
    }

    /// The launcher of the stack: addresses, the issuer, operator commands.
    pub fn launcher(&self) -> &Launcher {
        self.services.launcher()
    }

    /// Starts (or restarts) the auth server.
    pub async fn start_auth(&mut self) {
        let auth = self.services.auth_server().to_owned();
        self.services.start_service(&auth).await.unwrap();
    }

    /// SIGKILLs the auth server.
    pub async fn kill_auth(&mut self) {
        let auth = self.services.auth_server().to_owned();
        self.services.kill(&auth).await;
    }

    /// Starts (or restarts, SIGKILL first) users-service; during an auth outage it must come up
    /// from its disk cache.
    pub async fn start_users(&mut self) {
        self.services.start_service("users-service").await.unwrap();
    }

    /// Starts (or restarts, SIGKILL first) orders-service.
    pub async fn start_orders(&mut self) {
        self.services.start_service("orders-service").await.unwrap();
    }

    /// Runs an operator subcommand against the auth database; returns what it printed.
    pub async fn auth_cli(&self, args: &[&str]) -> String {
        self.services.launcher().run(self.services.auth_server(), args).await.unwrap()
    }

    /// The base URL of `service`.
    pub fn url(&self, service: &str) -> String {
        self.services.url(service).unwrap_or_else(|| panic!("{service} is not in services.toml"))
    }

    /// auth-server base URL (direct, not through the proxy).
    pub fn auth_url(&self) -> String {
        self.url(self.services.auth_server())
    }

    /// users-service base URL.
    pub fn users_url(&self) -> String {
        self.url("users-service")
    }

    /// orders-service base URL.
    pub fn orders_url(&self) -> String {
        self.url("orders-service")
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
