//! "Login with …" (issue 15): our server as a relying party of a second in-process auth server,
//! "Acme ID", through the hosted login page. What only the real binaries show (services
//! accepting the tokens, an upstream killed mid-flow, key-set faults) is in the e2e suite.
use crate::common;

use auth_server::clients::{Registration, generate_secret, register};
use auth_server::config::Config;
use auth_server::federation::cli::{NewProvider, add};
use common::{TestApp, decode_part, status_and_json};
use reqwest::Url;
use scraper::{Html, Selector};
use secrecy::SecretString;
use serde_json::Value;
use testkit::TestDatabase;
use testkit::browser::{BrowserAgent, Page, Pkce};

/// Our client, first-party (no consent page).
const APP: &str = "first-app";
/// Its redirect URI, on the discard port: the browser never follows it.
const APP_CALLBACK: &str = "http://127.0.0.1:9/first/callback";
/// Our client id at Acme.
const AT_ACME: &str = "our-server";
/// The user at Acme.
const ACME_USER: &str = "acme-user";
/// Their password.
const ACME_PASSWORD: &str = "acme-password";

fn cheap_hashing(config: &mut Config) {
    config.argon2_memory_kib = 1024;
    config.argon2_iterations = 1;
}

/// Two servers: ours, with `first-app` and the provider `acme`, and Acme, with our server as a
/// confidential first-party client and the user `acme-user`.
struct Federated {
    ours: TestApp,
    acme: TestApp,
}

impl Federated {
    async fn start(ours: TestDatabase, acme: TestDatabase) -> Self {
        Self::start_with(ours, acme, cheap_hashing).await
    }

    async fn start_with(ours: TestDatabase, acme: TestDatabase, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(TestApp::start_with(ours, adjust).await, acme).await
    }

    /// Both servers on SQLite, ours with cheap hashing and then `adjust`.
    async fn on_sqlite_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(TestDatabase::sqlite(), TestDatabase::sqlite(), |config| {
            cheap_hashing(config);
            adjust(config);
        })
        .await
    }

    /// Acme on `acme`, both servers' registrations, and the provider, around a server of ours
    /// already started.
    async fn start_on(ours: TestApp, acme: TestDatabase) -> Self {
        let acme = TestApp::start_with(acme, cheap_hashing).await;
        let app = Registration {
            scopes: vec!["profile:read".into()],
            redirect_uris: vec![APP_CALLBACK.into()],
            public: true,
            first_party: true,
            ..Registration::default()
        };
        register(&ours.state.pool, APP, &generate_secret(), &app).await.unwrap();
        let secret = generate_secret();
        let at_acme = Registration {
            scopes: vec!["profile".into()],
            redirect_uris: vec![format!("{}/federation/acme/callback", ours.url)],
            first_party: true,
            ..Registration::default()
        };
        register(&acme.state.pool, AT_ACME, &secret, &at_acme).await.unwrap();
        assert_eq!(acme.register(ACME_USER, ACME_PASSWORD).await.status(), 201);
        let federated = Self { ours, acme };
        let issuer = federated.acme.url.clone();
        let (added, discovery) = federated.add_provider("acme", "Acme ID", &issuer, Some(&secret)).await;
        discovery.unwrap();
        assert_eq!(added.redirect_uri, federated.callback_url());
        federated
    }

    async fn add_provider(
        &self,
        name: &str,
        display_name: &str,
        issuer: &str,
        secret: Option<&SecretString>,
    ) -> (auth_server::federation::cli::AddedProvider, anyhow::Result<()>) {
        let provider = NewProvider {
            name: name.into(),
            issuer: issuer.into(),
            client_id: AT_ACME.into(),
            display_name: display_name.into(),
            scope: "openid profile".into(),
        };
        add(&self.ours.state, &provider, secret).await.unwrap()
    }

    fn authorize_url(&self, pkce: &Pkce) -> String {
        let params = [
            ("response_type", "code"),
            ("client_id", APP),
            ("redirect_uri", APP_CALLBACK),
            ("scope", "openid profile:read"),
            ("state", "app-state"),
            ("nonce", "app-nonce"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        Url::parse_with_params(&format!("{}/oauth2/authorize", self.ours.url), &params).unwrap().into()
    }

    /// Our login page, and the URL of its "Continue with Acme ID" link.
    async fn continue_with_acme(&self, agent: &BrowserAgent, pkce: &Pkce) -> String {
        let page = agent.get(&self.authorize_url(pkce)).await;
        assert_eq!(page.status, 200, "{}", page.describe());
        provider_link(&page, "Continue with Acme ID")
            .unwrap_or_else(|| panic!("no link: {}", page.describe()))
    }

    /// From our login page to the redirect that Acme sends back to our callback: Acme's login
    /// form filled in as `username`.
    async fn to_callback(&self, agent: &BrowserAgent, pkce: &Pkce, username: &str, password: &str) -> String {
        let start = agent.get(&self.continue_with_acme(agent, pkce).await).await;
        assert_eq!(start.status, 302, "{}", start.describe());
        let at_acme = agent.get(&start.location().unwrap()).await;
        let form =
            at_acme.form_with_action("/oauth2/login").unwrap_or_else(|| panic!("{}", at_acme.describe()));
        let back = agent.submit(&at_acme, &form, &[("username", username), ("password", password)]).await;
        assert_eq!(back.status, 302, "{}", back.describe());
        let callback = back.location().unwrap();
        assert!(callback.starts_with(&format!("{}/federation/acme/callback?", self.ours.url)), "{callback}");
        callback
    }

    /// A whole federated login as `acme-user`, redeemed at our token endpoint.
    async fn federated_tokens(&self, agent: &BrowserAgent) -> Value {
        let pkce = Pkce::new();
        let callback = self.to_callback(agent, &pkce, ACME_USER, ACME_PASSWORD).await;
        let to_app = agent.get(&callback).await;
        // Not a 302: a page that moves on by itself, outside the upstream's redirect chain.
        assert_eq!(to_app.status, 200, "{}", to_app.describe());
        assert!(to_app.next_url().unwrap().starts_with(APP_CALLBACK), "{}", to_app.describe());
        assert_eq!(to_app.next_param("state").as_deref(), Some("app-state"));
        let code = to_app.next_param("code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", APP),
        ];
        let (status, tokens) = status_and_json(self.ours.post_form("/oauth2/token", &form).await).await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    /// Our callback for provider `acme`: the redirect URI registered at Acme.
    fn callback_url(&self) -> String {
        format!("{}/federation/acme/callback", self.ours.url)
    }

    /// Our callback with an authorization response from Acme carrying `error` and `state`.
    fn error_response(&self, error: &str, state: &str) -> Url {
        Url::parse_with_params(
            &self.callback_url(),
            &[("error", error), ("state", state), ("iss", self.acme.url.as_str())],
        )
        .unwrap()
    }

    async fn users(&self) -> i64 {
        testkit::count_rows(&self.ours.state.pool, "users").await
    }
}

/// The `href` of the login page's link with this text.
fn provider_link(page: &Page, text: &str) -> Option<String> {
    let html = Html::parse_document(&page.body);
    let selector = Selector::parse("a.provider").unwrap();
    let link = html.select(&selector).find(|link| link.text().collect::<String>() == text)?;
    let href = link.value().attr("href")?;
    Some(Url::parse(&page.url).unwrap().join(href).unwrap().into())
}

/// The text of an error page's message.
fn message(page: &Page) -> String {
    let html = Html::parse_document(&page.body);
    let selector = Selector::parse("p.error").unwrap();
    html.select(&selector).map(|element| element.text().collect::<String>()).collect()
}

testkit::on_both_backends! {
    async fn a_first_federated_login_creates_the_account_and_a_second_finds_it_by_the_upstream_sub(database) {
        let federated = Federated::start(database.same_database(), TestDatabase::sqlite()).await;
        let before = federated.users().await;

        let first = federated.federated_tokens(&BrowserAgent::new()).await;
        let second = federated.federated_tokens(&BrowserAgent::new()).await;

        assert_eq!(federated.users().await, before + 1, "one account, created by the first login");
        let access = |tokens: &Value| decode_part(tokens["access_token"].as_str().unwrap(), 1);
        let id_token = |tokens: &Value| decode_part(tokens["id_token"].as_str().unwrap(), 1);
        assert_eq!(access(&first)["sub"], access(&second)["sub"]);
        assert_eq!(access(&first)["preferred_username"], "acme:acme-user");
        assert_eq!(access(&first)["idp"], "acme");
        assert_eq!(id_token(&first)["idp"], "acme");
        assert_eq!(id_token(&second)["iss"], federated.ours.url.as_str());
        let refreshed = federated
            .ours
            .post_form(
                "/oauth2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", first["refresh_token"].as_str().unwrap()),
                    ("client_id", APP),
                ],
            )
            .await;
        let (status, refreshed) = status_and_json(refreshed).await;
        assert_eq!(status, 200, "{refreshed}");
        assert_eq!(access(&refreshed)["idp"], "acme");
    }
}

#[tokio::test]
async fn a_federated_account_cannot_log_in_with_a_password_not_even_an_empty_one() {
    let federated = Federated::on_sqlite_with(|config| {
        // Six failures in a row: the throttle is not what this test is about.
        config.login_failure_threshold = 100;
    })
    .await;
    federated.federated_tokens(&BrowserAgent::new()).await;

    for password in ["", "acme-password", "anything-at-all"] {
        let json = federated.ours.login("acme:acme-user", password).await;
        assert!(matches!(json.status().as_u16(), 401 | 422), "{password:?}: {}", json.status());
        let agent = BrowserAgent::new();
        let page = agent.get(&federated.authorize_url(&Pkce::new())).await;
        let form = page.form_with_action("/oauth2/login").unwrap();
        let answer =
            agent.submit(&page, &form, &[("username", "acme:acme-user"), ("password", password)]).await;
        assert_eq!(answer.status, 401, "{password:?}: {}", answer.describe());
    }
}

#[tokio::test]
async fn users_disable_applies_to_a_federated_account() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    federated.federated_tokens(&BrowserAgent::new()).await;

    auth_server::cli::disable_user(&federated.ours.state, "acme:acme-user").await.unwrap();

    let agent = BrowserAgent::new();
    let callback = federated.to_callback(&agent, &Pkce::new(), ACME_USER, ACME_PASSWORD).await;
    let page = agent.get(&callback).await;
    assert_eq!(page.status, 403, "{}", page.describe());
    assert_eq!(message(&page), "This account is disabled.");
}

#[tokio::test]
async fn a_replayed_callback_is_refused_and_creates_nothing_more() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let callback = federated.to_callback(&agent, &Pkce::new(), ACME_USER, ACME_PASSWORD).await;
    assert!(agent.get(&callback).await.next_param("code").is_some());
    let users = federated.users().await;

    let replay = agent.get(&callback).await;

    assert_eq!(replay.status, 400, "{}", replay.describe());
    assert!(message(&replay).contains("already been used"), "{}", replay.describe());
    assert_eq!(federated.users().await, users);
}

#[tokio::test]
async fn a_callback_in_another_browser_is_refused_and_creates_no_account() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let victim = BrowserAgent::new();
    let callback = federated.to_callback(&victim, &Pkce::new(), ACME_USER, ACME_PASSWORD).await;
    let users = federated.users().await;

    // Login CSRF: an attacker's own upstream login, delivered to another browser.
    let page = BrowserAgent::new().get(&callback).await;

    assert_eq!(page.status, 400, "{}", page.describe());
    assert!(message(&page).contains("another browser"), "{}", page.describe());
    assert_eq!(federated.users().await, users);
}

#[tokio::test]
async fn an_unknown_or_missing_state_is_refused() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();

    let forged =
        agent.get(&format!("{}/federation/acme/callback?code=x&state=forged", federated.ours.url)).await;
    let missing = agent.get(&format!("{}/federation/acme/callback?code=x", federated.ours.url)).await;

    assert_eq!(forged.status, 400, "{}", forged.describe());
    assert!(message(&forged).contains("unknown"), "{}", forged.describe());
    assert_eq!(missing.status, 400, "{}", missing.describe());
}

#[tokio::test]
async fn a_callback_after_the_pending_login_expired_is_refused() {
    let ours = TestApp::start_with_clock(TestDatabase::sqlite(), cheap_hashing).await;
    let federated = Federated::start_on(ours, TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let callback = federated.to_callback(&agent, &Pkce::new(), ACME_USER, ACME_PASSWORD).await;

    federated.ours.advance(std::time::Duration::from_secs(601));
    let page = agent.get(&callback).await;

    assert_eq!(page.status, 400, "{}", page.describe());
    assert!(message(&page).contains("expired"), "{}", page.describe());
}

#[tokio::test]
async fn a_sign_in_cancelled_at_the_upstream_shows_a_page_and_creates_nothing() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let start = agent.get(&federated.continue_with_acme(&agent, &Pkce::new()).await).await;
    let upstream = Url::parse(&start.location().unwrap()).unwrap();
    let state = upstream.query_pairs().find(|(name, _)| name == "state").unwrap().1.into_owned();
    let users = federated.users().await;

    let callback = federated.error_response("access_denied", &state);
    let page = agent.get(callback.as_str()).await;

    assert_eq!(page.status, 403, "{}", page.describe());
    assert!(message(&page).contains("cancelled at Acme ID"), "{}", page.describe());
    assert_eq!(federated.users().await, users);
}

#[tokio::test]
async fn another_upstream_error_is_a_502_page_that_shows_the_error_code_escaped() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let start = agent.get(&federated.continue_with_acme(&agent, &Pkce::new()).await).await;
    let state = start.location_param("state").unwrap();
    let users = federated.users().await;

    let callback = federated.error_response("<b>server_error</b>", &state);
    let page = agent.get(callback.as_str()).await;

    assert_eq!(page.status, 502, "{}", page.describe());
    assert!(message(&page).contains("(error: <b>server_error</b>)"), "{}", page.describe());
    assert!(!page.body.contains("<b>server_error"), "escaped: {}", page.body);
    assert_eq!(federated.users().await, users);
}

#[tokio::test]
async fn an_authorization_response_without_the_advertised_iss_is_refused() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let callback = federated.to_callback(&agent, &Pkce::new(), ACME_USER, ACME_PASSWORD).await;
    let mut url = Url::parse(&callback).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "iss")
        .map(|(a, b)| (a.into_owned(), b.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept).append_pair("iss", "http://127.0.0.1:9");

    let page = agent.get(url.as_str()).await;

    assert_eq!(page.status, 400, "{}", page.describe());
    assert!(message(&page).contains("did not come from Acme ID"), "{}", page.describe());
}

#[tokio::test]
async fn the_redirect_to_the_upstream_carries_pkce_s256_state_and_nonce_and_the_registered_callback() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();

    let start = agent.get(&federated.continue_with_acme(&agent, &Pkce::new()).await).await;

    assert_eq!(start.status, 302, "{}", start.describe());
    assert!(start.location().unwrap().starts_with(&format!("{}/oauth2/authorize?", federated.acme.url)));
    let param = |name: &str| start.location_param(name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), AT_ACME);
    assert_eq!(param("redirect_uri"), federated.callback_url());
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("code_challenge").len(), 43);
    assert!(param("state").len() >= 43 && param("nonce").len() >= 43);
    assert_ne!(param("state"), param("nonce"));
    assert!(param("scope").split(' ').any(|scope| scope == "openid"));
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_502_page_and_local_login_keeps_working() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    // Nothing listens on the discard port.
    let (_, discovery) = federated.add_provider("down", "Down ID", "http://127.0.0.1:9", None).await;
    assert!(discovery.is_err(), "providers add says the discovery cannot be read");
    assert_eq!(federated.ours.register("local-user", "local-password").await.status(), 201);
    let agent = BrowserAgent::new();
    let page = agent.get(&federated.authorize_url(&Pkce::new())).await;
    assert!(page.body.contains("Continue with Down ID (unavailable)"), "{}", page.describe());
    assert!(provider_link(&page, "Continue with Acme ID").is_some(), "{}", page.describe());

    let start =
        agent.get(&format!("{}/federation/down/start?{}", federated.ours.url, query_of(&federated))).await;

    assert_eq!(start.status, 502, "{}", start.describe());
    assert!(message(&start).contains("cannot be reached"), "{}", start.describe());
    assert_eq!(federated.ours.login("local-user", "local-password").await.status(), 200);
}

#[tokio::test]
async fn a_silent_upstream_gets_a_504_page_within_the_timeout() {
    let federated = Federated::on_sqlite_with(|config| {
        config.upstream_timeout_ms = 300;
    })
    .await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            open.push(connection);
        }
    });
    let (_, discovery) = federated.add_provider("slow", "Slow ID", &silent_url, None).await;
    assert!(discovery.is_err());

    let page = BrowserAgent::new()
        .get(&format!("{}/federation/slow/start?{}", federated.ours.url, query_of(&federated)))
        .await;

    assert_eq!(page.status, 504, "{}", page.describe());
    assert!(message(&page).contains("did not answer in time"), "{}", page.describe());
}

#[tokio::test]
async fn starts_beyond_the_limit_per_address_get_a_429_page_and_store_no_pending_login() {
    let federated = Federated::on_sqlite_with(|config| {
        config.federation_start_limit_per_minute = 2;
    })
    .await;
    assert_eq!(federated.ours.register("local-user", "local-password").await.status(), 201);
    let start = format!("{}/federation/acme/start?{}", federated.ours.url, query_of(&federated));
    let agent = BrowserAgent::new();
    for _ in 0..2 {
        assert_eq!(agent.get(&start).await.status, 302);
    }
    let pending = testkit::count_rows(&federated.ours.state.pool, "federation_logins").await;

    let refused = agent.get(&start).await;

    assert_eq!(refused.status, 429, "{}", refused.describe());
    assert!(message(&refused).contains("Please wait and try again"), "{}", refused.describe());
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(testkit::count_rows(&federated.ours.state.pool, "federation_logins").await, pending);
    assert_eq!(federated.ours.login("local-user", "local-password").await.status(), 200);
}

#[tokio::test]
async fn an_unknown_provider_gets_a_404_page() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;

    let page = BrowserAgent::new()
        .get(&format!("{}/federation/nobody/start?{}", federated.ours.url, query_of(&federated)))
        .await;

    assert_eq!(page.status, 404, "{}", page.describe());
}

#[tokio::test]
async fn a_start_with_an_unregistered_redirect_uri_is_a_400_page_not_a_redirect() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let query = query_of(&federated).replace("127.0.0.1%3A9", "evil.example");

    let page =
        BrowserAgent::new().get(&format!("{}/federation/acme/start?{query}", federated.ours.url)).await;

    assert_eq!(page.status, 400, "{}", page.describe());
    assert!(page.location().is_none());
}

#[tokio::test]
async fn a_deleted_provider_leaves_the_login_page_and_its_logins_stop() {
    let federated = Federated::start(TestDatabase::sqlite(), TestDatabase::sqlite()).await;
    let agent = BrowserAgent::new();
    let start = federated.continue_with_acme(&agent, &Pkce::new()).await;

    assert!(
        auth_server::store::federation::delete_provider(&federated.ours.state.pool, "acme").await.unwrap()
    );

    let page = agent.get(&federated.authorize_url(&Pkce::new())).await;
    assert!(provider_link(&page, "Continue with Acme ID").is_none(), "{}", page.describe());
    assert_eq!(agent.get(&start).await.status, 404);
}

#[tokio::test]
async fn a_client_secret_is_stored_encrypted_when_a_key_encryption_key_is_set() {
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let federated = Federated::on_sqlite_with(|config| {
        config.key_encryption_key = Some(SecretString::from(key));
    })
    .await;
    let stored = auth_server::store::federation::find_provider(&federated.ours.state.pool, "acme")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.sealed_secret.starts_with("v1:"), "sealed");

    // And the login, which opens it, works.
    let tokens = federated.federated_tokens(&BrowserAgent::new()).await;
    assert_eq!(decode_part(tokens["access_token"].as_str().unwrap(), 1)["idp"], "acme");
    let listed = serde_json::to_string(
        &auth_server::store::federation::list_providers(&federated.ours.state.pool).await.unwrap(),
    )
    .unwrap();
    assert!(!listed.contains("v1:") && !listed.contains("secret"), "{listed}");
}

/// The query of a valid authorization request of `first-app`.
fn query_of(federated: &Federated) -> String {
    Url::parse(&federated.authorize_url(&Pkce::new())).unwrap().query().unwrap().to_owned()
}

#[test]
fn providers_add_issuer_names_the_upstream_and_leaves_our_own_issuer_alone() {
    use clap::Parser as _;
    let cli = auth_server::config::Cli::parse_from([
        "auth-server",
        "providers",
        "add",
        "google",
        "--issuer",
        "https://accounts.google.com",
        "--client-id",
        "1234.apps.googleusercontent.com",
        "--display-name",
        "Google",
    ]);

    assert_eq!(cli.config.issuer, "http://127.0.0.1:8080");
    let Some(auth_server::config::Command::Providers(auth_server::config::ProvidersCommand::Add {
        issuer,
        scope,
        ..
    })) = cli.command
    else {
        panic!("not providers add");
    };
    assert_eq!(issuer, "https://accounts.google.com");
    assert_eq!(scope, "openid profile");
}

#[tokio::test]
async fn the_demo_seeds_of_both_servers_make_continue_with_acme_id_work_and_may_run_again() {
    let ours = TestApp::start_with(TestDatabase::sqlite(), cheap_hashing).await;
    let acme = TestApp::start_with(TestDatabase::sqlite(), cheap_hashing).await;
    let app = Registration {
        scopes: vec!["profile:read".into()],
        redirect_uris: vec![APP_CALLBACK.into()],
        public: true,
        first_party: true,
        ..Registration::default()
    };
    register(&ours.state.pool, APP, &generate_secret(), &app).await.unwrap();
    let secret = generate_secret();

    for _ in 0..2 {
        auth_server::federation::cli::demo_seed_acme(&acme.state, &ours.url, &secret).await.unwrap();
        auth_server::federation::cli::demo_seed_provider(&ours.state, &acme.url, &secret).await.unwrap();
    }

    let federated = Federated { ours, acme };
    let tokens = federated.federated_tokens(&BrowserAgent::new()).await;
    let access = decode_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        (access["idp"].as_str(), access["preferred_username"].as_str()),
        (Some("acme"), Some("acme:acme-user"))
    );
}
