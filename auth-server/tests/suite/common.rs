//! `TestApp`: the auth server on a free port with a fresh database, and typed calls.
#![allow(dead_code)]

use auth_server::config::{Cli, Config};
use auth_server::state::AppState;
use clap::Parser as _;
use secrecy::SecretString;
use serde_json::Value;
use shared_auth::time::{Clock, ManualClock};
use testkit::TestDatabase;

/// A running auth server.
pub(crate) struct TestApp {
    /// Base URL, also the issuer.
    pub url: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The server's state (pool, key ring, hasher).
    pub state: AppState,
    /// Keeps the database (and data dir) alive.
    pub database: TestDatabase,
    /// The server's clock, when the test controls it ([`TestApp::start_with_clock`]).
    pub clock: Option<ManualClock>,
}

/// The configuration a test server starts from: defaults, the test database, `issuer` set.
pub(crate) fn test_config(database: &TestDatabase, issuer: &str) -> Config {
    let mut config = Cli::parse_from(["auth-server"]).config;
    config.storage.database_url = Some(SecretString::from(database.url.clone()));
    config.storage.data_dir = database.dir.path().to_path_buf();
    config.issuer = issuer.to_owned();
    config
}

impl TestApp {
    /// Starts with default settings.
    pub(crate) async fn start(database: TestDatabase) -> Self {
        Self::start_with(database, |_| {}).await
    }

    /// Starts with settings adjusted by `adjust`.
    pub(crate) async fn start_with(database: TestDatabase, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(database, adjust, None).await
    }

    /// Starts with a clock that stands still until [`TestApp::advance`] moves it: expiry,
    /// throttle and rotation tests move time instead of sleeping through it.
    pub(crate) async fn start_with_clock(database: TestDatabase, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(database, adjust, Some(ManualClock::starting_now())).await
    }

    /// Moves the server's clock forward.
    pub(crate) fn advance(&self, by: std::time::Duration) {
        self.clock.as_ref().expect("started with start_with_clock").advance(by);
    }

    async fn start_on(
        database: TestDatabase,
        adjust: impl FnOnce(&mut Config),
        clock: Option<ManualClock>,
    ) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            service_kit::init_telemetry();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = test_config(&database, &url);
        adjust(&mut config);
        let server_clock = clock.as_ref().map_or_else(Clock::system, ManualClock::clock);
        let state = auth_server::build_state_with_clock(config, server_clock).await.unwrap();
        let router = auth_server::router(state.clone());
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).await.unwrap()
        });
        Self { url, client: reqwest::Client::new(), state, database, clock }
    }

    /// POST JSON.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.url)).json(body).send().await.unwrap()
    }

    /// GET.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).send().await.unwrap()
    }

    /// POST /v1/users.
    pub(crate) async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json("/v1/users", &serde_json::json!({"username": username, "password": password})).await
    }

    /// POST /v1/auth/login.
    pub(crate) async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json("/v1/auth/login", &serde_json::json!({"username": username, "password": password}))
            .await
    }

    /// Registers and logs in; returns the token response.
    pub(crate) async fn registered_login(&self, username: &str, password: &str) -> Value {
        assert_eq!(self.register(username, password).await.status(), 201);
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// POST a form to the token endpoint (or another OAuth endpoint).
    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.url)).form(form).send().await.unwrap()
    }

    /// Registers a client directly in the database; returns its secret.
    pub(crate) async fn create_client(&self, client_id: &str, scopes: &[&str], audiences: &[&str]) -> String {
        let secret = auth_server::clients::generate_secret();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let audiences: Vec<String> = audiences.iter().map(|s| s.to_string()).collect();
        auth_server::clients::create(&self.state.pool, client_id, &secret, &scopes, &audiences)
            .await
            .unwrap();
        secrecy::ExposeSecret::expose_secret(&secret).to_owned()
    }

    /// Registers a client that may introspect every token (`clients create --introspect`);
    /// returns its secret.
    pub(crate) async fn create_introspecting_client(&self, client_id: &str) -> String {
        let secret = auth_server::clients::generate_secret();
        let registration = auth_server::clients::Registration {
            scopes: Vec::new(),
            audiences: vec!["users-service".into()],
            introspect_any: true,
            ..auth_server::clients::Registration::default()
        };
        auth_server::clients::register(&self.state.pool, client_id, &secret, &registration).await.unwrap();
        secrecy::ExposeSecret::expose_secret(&secret).to_owned()
    }

    /// The current JWKS.
    pub(crate) async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.json().await.unwrap()
    }
}

/// Decodes a JWT part without verifying it.
pub(crate) fn decode_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Calls of the OAuth endpoints, logout and the revocation feed.
impl TestApp {
    /// POST /oauth2/token with `grant_type=refresh_token`, without client authentication.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_form("/oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await
    }

    /// Refreshes and asserts success; returns the token response.
    pub(crate) async fn refreshed(&self, refresh_token: &str) -> Value {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), 200, "refresh failed");
        response.json().await.unwrap()
    }

    /// POST a form authenticated as a client by HTTP Basic.
    pub(crate) async fn post_form_as(
        &self,
        path: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A client-credentials token response (HTTP Basic, registered scopes); asserts 200.
    pub(crate) async fn client_token(&self, client_id: &str, secret: &str) -> Value {
        let response = self
            .post_form_as("/oauth2/token", client_id, secret, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), 200, "client credentials grant failed");
        response.json().await.unwrap()
    }

    /// POST /oauth2/introspect as the given client; asserts 200 and returns the body.
    pub(crate) async fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Value {
        let response = self.post_form_as("/oauth2/introspect", client_id, secret, &[("token", token)]).await;
        assert_eq!(response.status(), 200, "introspection failed");
        response.json().await.unwrap()
    }

    /// POST /v1/auth/logout with `access_token` as bearer.
    pub(crate) async fn logout(&self, access_token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/auth/logout", self.url))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// The payload of `GET /v1/revocations`, decoded without checking the signature (tests that
    /// care about the signature check it themselves).
    pub(crate) async fn revocation_list(&self) -> shared_auth::revocation::RevocationList {
        let response = self.get("/v1/revocations").await;
        assert_eq!(response.status(), 200);
        let compact = response.text().await.unwrap();
        let parts = shared_auth::jws::split_compact(&compact).unwrap();
        serde_json::from_slice(&parts.payload).unwrap()
    }
}

/// The status and JSON body of a response.
pub(crate) async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Whether `id` is listed in `entries` (sessions or tokens of a revocation list).
pub(crate) fn lists(entries: &[shared_auth::revocation::RevokedEntry], id: &str) -> bool {
    entries.iter().any(|entry| entry.id == id)
}
