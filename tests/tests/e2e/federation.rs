//! "Login with …" between two real auth-server binaries (issue 15): our stack, and a second
//! auth server, "Acme ID", behind a fault proxy of its own, registered at each other as
//! `platform` and the compose demo do it (`testkit::federation::register`).

use e2e::{Fault, FaultProxy, ORDERS_CLIENT_SECRET, Stack, StackOptions};
use reqwest::Url;
use scraper::{Html, Selector};
use secrecy::SecretString;
use serde_json::Value;
use testkit::Services;
use testkit::browser::{BrowserAgent, Page, Pkce};
use testkit::federation::{self, PASSWORD, USER};
use testkit::launch::{self, Launcher, Process};

/// The browser client the walk logs in to.
const APP: &str = "federated-app";
/// Its redirect URI, on the discard port: the browser never follows it.
const APP_CALLBACK: &str = "http://127.0.0.1:9/federated/callback";

/// Our stack and Acme.
struct TwoServers {
    stack: Stack,
    acme: Option<Process>,
    acme_launcher: Launcher,
    acme_proxy: FaultProxy,
    _acme_data: tempfile::TempDir,
}

impl TwoServers {
    async fn start() -> Self {
        let stack = Stack::start(StackOptions::default()).await;
        let services = Services::committed();
        let data = tempfile::tempdir().unwrap();
        let launcher = Launcher::new(
            services.clone(),
            launch::workspace_binaries(services).unwrap(),
            data.path(),
            SecretString::from(ORDERS_CLIENT_SECRET),
        )
        .on_free_ports()
        .unwrap();
        let acme_proxy = FaultProxy::start(launcher.url(&services.auth_server().name).unwrap()).await;
        let acme_launcher = launcher
            .issuer(acme_proxy.url())
            // A rotated key signs at once, and the running server picks it up within a second.
            .auth_env("KEY_PREPUBLISH_SECS", 0)
            .auth_env("KEY_RELOAD_SECS", 1)
            .rust_log(std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()));
        let acme = acme_launcher.start(&services.auth_server().name).await.unwrap();
        let printed = federation::register(stack.launcher(), &acme_launcher).await.unwrap().unwrap();
        let added: Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(added["redirect_uri"], format!("{}/federation/acme/callback", stack.proxy.url()));
        stack
            .auth_cli(&[
                "clients",
                "create",
                APP,
                "--public",
                "--first-party",
                "--redirect-uri",
                APP_CALLBACK,
                "--scope",
                "openid profile profile:read profile:write orders:read orders:write",
            ])
            .await;
        Self { stack, acme: Some(acme), acme_launcher, acme_proxy, _acme_data: data }
    }

    /// Our issuer: the browser reaches our server where the tokens say it is.
    fn ours(&self) -> String {
        self.stack.proxy.url()
    }

    fn authorize_url(&self, pkce: &Pkce) -> String {
        let params = [
            ("response_type", "code"),
            ("client_id", APP),
            ("redirect_uri", APP_CALLBACK),
            ("scope", "openid profile:read orders:read orders:write"),
            ("state", "app-state"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        Url::parse_with_params(&format!("{}/oauth2/authorize", self.ours()), &params).unwrap().into()
    }

    /// Our login page → "Continue with Acme ID" → Acme's login form as `username` → the
    /// redirect back to our callback, not yet followed.
    async fn to_callback(&self, agent: &BrowserAgent, pkce: &Pkce, username: &str, password: &str) -> String {
        let login = agent.get(&self.authorize_url(pkce)).await;
        assert_eq!(login.status, 200, "{}", login.describe());
        let link =
            provider_link(&login, "Continue with Acme ID").unwrap_or_else(|| panic!("{}", login.describe()));
        let start = agent.get(&link).await;
        assert_eq!(start.status, 302, "{}", start.describe());
        let at_acme = agent.get(&start.location().unwrap()).await;
        let form =
            at_acme.form_with_action("/oauth2/login").unwrap_or_else(|| panic!("{}", at_acme.describe()));
        let back = agent.submit(&at_acme, &form, &[("username", username), ("password", password)]).await;
        assert_eq!(back.status, 302, "{}", back.describe());
        back.location().unwrap()
    }

    /// A whole federated login as `acme-user`: our token response.
    async fn federated_tokens(&self) -> Value {
        let agent = BrowserAgent::new();
        let pkce = Pkce::new();
        let callback = self.to_callback(&agent, &pkce, USER, PASSWORD).await;
        let to_app = agent.get(&callback).await;
        assert_eq!(to_app.status, 200, "{}", to_app.describe());
        let code = to_app.next_param("code").unwrap_or_else(|| panic!("{}", to_app.describe()));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", APP),
        ];
        let response =
            self.stack.http.post(format!("{}/oauth2/token", self.ours())).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Whether our server has an account of this name.
    async fn has_account(&self, name: &str) -> bool {
        let auth = self.stack.launcher().services().auth_server().name.clone();
        self.stack.launcher().run(&auth, &["users", "disable", name]).await.is_ok()
    }

    async fn acme_cli(&self, args: &[&str], input: &str) -> String {
        let auth = self.acme_launcher.services().auth_server().name.clone();
        self.acme_launcher.run_with_input(&auth, args, input).await.unwrap()
    }
}

fn provider_link(page: &Page, text: &str) -> Option<String> {
    let html = Html::parse_document(&page.body);
    let selector = Selector::parse("a.provider").unwrap();
    let link = html.select(&selector).find(|link| link.text().collect::<String>() == text)?;
    Some(Url::parse(&page.url).unwrap().join(link.value().attr("href")?).unwrap().into())
}

fn message(page: &Page) -> String {
    let html = Html::parse_document(&page.body);
    let selector = Selector::parse("p.error").unwrap();
    html.select(&selector).map(|element| element.text().collect::<String>()).collect()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_federated_login_creates_one_account_found_again_by_its_sub_and_the_services_accept_its_tokens() {
    let servers = TwoServers::start().await;

    let first = servers.federated_tokens().await;
    let second = servers.federated_tokens().await;

    let (first_access, second_access) =
        (first["access_token"].as_str().unwrap(), second["access_token"].as_str().unwrap());
    assert_eq!(
        claims(first_access)["sub"],
        claims(second_access)["sub"],
        "the second login found the account"
    );
    assert_eq!(claims(first_access)["idp"], "acme");
    assert_eq!(claims(first["id_token"].as_str().unwrap())["idp"], "acme");
    let stack = &servers.stack;
    let me = stack.get(&format!("{}/v1/users/me", stack.users_url()), first_access).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "acme:acme-user");
    assert_eq!(stack.order(second_access, "federated coffee").await.status(), 201);
    println!("[federation] two logins through Acme ID: one account, tokens accepted by both services");
}

#[tokio::test]
async fn acme_killed_mid_flow_gets_a_502_page_creates_nothing_and_local_login_keeps_working() {
    let mut servers = TwoServers::start().await;
    let agent = BrowserAgent::new();
    let callback = servers.to_callback(&agent, &Pkce::new(), USER, PASSWORD).await;

    servers.acme.take().unwrap().kill().await;
    let page = agent.get(&callback).await;

    assert_eq!(page.status, 502, "{}", page.describe());
    assert!(message(&page).contains("Acme ID cannot be reached"), "{}", page.describe());
    assert!(!servers.has_account("acme:acme-user").await, "no account was created");
    servers.stack.login("demo", "demo-password").await;
}

#[tokio::test]
async fn an_id_token_signed_by_a_key_the_upstream_key_set_cannot_serve_is_refused_with_a_502_page() {
    let servers = TwoServers::start().await;
    servers.federated_tokens().await;
    servers.acme_cli(&["users", "create", "acme-other"], "acme-other-password").await;
    // Acme signs with a new key from now on, and its key set, through the proxy, fails.
    servers.acme_proxy.set_fault(Fault::ServerError);
    let rotated: Value = serde_json::from_str(&servers.acme_cli(&["keys", "rotate"], "").await).unwrap();
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    let direct = servers.acme_launcher.url("auth-server").unwrap();
    let mut published = false;
    for _ in 0..100 {
        let jwks: Value =
            reqwest::get(format!("{direct}/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
        if jwks["keys"].as_array().unwrap().iter().any(|key| key["kid"] == kid.as_str()) {
            published = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(published, "Acme never published its new key");
    let fetches = servers.acme_proxy.jwks_fetches();

    let agent = BrowserAgent::new();
    let callback = servers.to_callback(&agent, &Pkce::new(), "acme-other", "acme-other-password").await;
    let page = agent.get(&callback).await;

    assert_eq!(page.status, 502, "{}", page.describe());
    assert!(message(&page).contains("could not be verified"), "{}", page.describe());
    assert!(servers.acme_proxy.jwks_fetches() > fetches, "the unknown kid was looked up again");
    assert!(!servers.has_account("acme:acme-other").await, "no account was created");
    servers.stack.login("demo", "demo-password").await;
}
