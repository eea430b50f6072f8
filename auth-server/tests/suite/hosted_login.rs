//! The hosted login page, consent and the browser session (issue 13), against the in-process server.
//!
//! A browser here is `testkit::browser::BrowserAgent`: its own cookie jar, no redirect
//! following, forms submitted with their hidden inputs unchanged.
use crate::common;

use std::time::Duration;

use auth_server::clients::{Registration, generate_secret, register};
use auth_server::config::Config;
use common::{TestApp, decode_part, lists, status_and_json};
use reqwest::Url;
use scraper::{Html, Selector};
use serde_json::Value;
use testkit::browser::{BrowserAgent, Page, Pkce, authorize_and_login};

/// A first-party client: no consent page.
const FIRST_PARTY: &str = "first-app";
/// Another first-party client, for single sign-on.
const SECOND_PARTY: &str = "second-app";
/// A client whose users are asked for consent.
const PARTNER: &str = "partner-app";
/// Redirect URIs on the discard port: nothing listens there, and the browser never follows.
const FIRST_CALLBACK: &str = "http://127.0.0.1:9/first/callback";
/// `second-app`'s redirect URI.
const SECOND_CALLBACK: &str = "http://127.0.0.1:9/second/callback";
/// `partner-app`'s redirect URI.
const PARTNER_CALLBACK: &str = "http://127.0.0.1:9/partner/callback";
/// The scopes every client is registered with.
const CLIENT_SCOPES: [&str; 3] = ["profile:read", "orders:read", "orders:write"];

/// Throttling and sessions do not depend on the hashing cost.
fn cheap_hashing(config: &mut Config) {
    config.argon2_memory_kib = 1024;
    config.argon2_iterations = 1;
}

/// Registers the three public clients.
async fn register_clients(app: &TestApp) {
    for (client_id, redirect_uri, first_party) in [
        (FIRST_PARTY, FIRST_CALLBACK, true),
        (SECOND_PARTY, SECOND_CALLBACK, true),
        (PARTNER, PARTNER_CALLBACK, false),
    ] {
        let registration = Registration {
            scopes: CLIENT_SCOPES.map(str::to_owned).to_vec(),
            redirect_uris: vec![redirect_uri.to_owned()],
            public: true,
            first_party,
            ..Registration::default()
        };
        register(&app.state.pool, client_id, &generate_secret(), &registration).await.unwrap();
    }
}

/// The server with the three clients and the user `username` (password `<username>-password`).
async fn app_with_user(app: TestApp, username: &str) -> TestApp {
    register_clients(&app).await;
    assert_eq!(app.register(username, &password_of(username)).await.status(), 201);
    app
}

fn password_of(username: &str) -> String {
    format!("{username}-password")
}

/// A correct authorization request of `client_id` (at its redirect URI), with `extra`
/// parameters set on top.
fn authorize_url(app: &TestApp, client_id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let redirect_uri = match client_id {
        FIRST_PARTY => FIRST_CALLBACK,
        SECOND_PARTY => SECOND_CALLBACK,
        _ => PARTNER_CALLBACK,
    };
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile:read"),
        ("state", "the-state"),
        ("nonce", "the-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        match params.iter_mut().find(|(key, _)| key == name) {
            Some(param) => param.1 = value,
            None => params.push((name, value)),
        }
    }
    Url::parse_with_params(&format!("{}/oauth2/authorize", app.url), &params).unwrap().into()
}

/// `GET /oauth2/authorize` for `client_id`; must answer with the login page.
async fn login_page(app: &TestApp, agent: &BrowserAgent, client_id: &str) -> Page {
    let page = agent.get(&authorize_url(app, client_id, &Pkce::new(), &[])).await;
    assert_eq!(page.status, 200, "{}", page.describe());
    assert!(page.form_with_action("/oauth2/login").is_some(), "not the login page: {}", page.describe());
    page
}

/// Submits the login form of `page` with these credentials.
async fn post_credentials(agent: &BrowserAgent, page: &Page, username: &str, password: &str) -> Page {
    let form = page.form_with_action("/oauth2/login").unwrap_or_else(|| panic!("{}", page.describe()));
    agent.submit(page, &form, &[("username", username), ("password", password)]).await
}

/// Whether `page` is the hosted login page.
fn is_login_page(page: &Page) -> bool {
    page.form_with_action("/oauth2/login").is_some()
}

/// Whether `page` is a redirect to the client with a code.
fn has_code(page: &Page) -> bool {
    page.status == 302 && page.location_param("code").is_some()
}

/// A browser logged in as `username` through `first-app`.
async fn logged_in(app: &TestApp, username: &str) -> BrowserAgent {
    let agent = BrowserAgent::new();
    let redirect = authorize_and_login(
        &agent,
        &authorize_url(app, FIRST_PARTY, &Pkce::new(), &[]),
        username,
        &password_of(username),
    )
    .await;
    assert!(has_code(&redirect), "{}", redirect.describe());
    agent
}

/// One authorization of `client_id` through `agent` (logging in as `username` if needed),
/// redeemed: the token response.
async fn authorized_tokens(app: &TestApp, agent: &BrowserAgent, client_id: &str, username: &str) -> Value {
    let pkce = Pkce::new();
    let url = authorize_url(app, client_id, &pkce, &[]);
    let redirect = authorize_and_login(agent, &url, username, &password_of(username)).await;
    let code = redirect.location_param("code").unwrap_or_else(|| panic!("{}", redirect.describe()));
    let (status, body) = redeem(app, client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Redeems `code` of `client_id` at `app`'s token endpoint.
async fn redeem(app: &TestApp, client_id: &str, code: &str, pkce: &Pkce) -> (u16, Value) {
    let redirect_uri = Url::parse(&authorize_url(app, client_id, pkce, &[]))
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", client_id),
    ];
    status_and_json(app.post_form("/oauth2/token", &form).await).await
}

/// A refresh of a public client's token (which must name the client).
async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
    status_and_json(app.post_form("/oauth2/token", &form).await).await
}

/// The `Set-Cookie` names of a response.
fn set_cookie_names(page: &Page) -> Vec<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok()?.split('=').next().map(|name| name.trim().to_owned()))
        .collect()
}

/// The `Retry-After` seconds of a response.
fn retry_after(page: &Page) -> u64 {
    page.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {}", page.describe()))
        .parse()
        .unwrap()
}

/// The contract's default cookie name for `url`: `authsrv_<host>_<port>`.
fn default_cookie_name(url: &str) -> String {
    let url = Url::parse(url).unwrap();
    let host: String =
        url.host_str().unwrap().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("authsrv_{host}_{}", url.port_or_known_default().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Throttling: the form and `/v1/auth/login` share their buckets.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn five_failures_at_the_login_form_lock_the_json_login_too() {
    let app = app_with_user(
        TestApp::start_with_clock(testkit::TestDatabase::sqlite(), cheap_hashing).await,
        "hana",
    )
    .await;
    let agent = BrowserAgent::new();
    let mut page = login_page(&app, &agent, FIRST_PARTY).await;
    for attempt in 1..=5 {
        page = post_credentials(&agent, &page, "hana", "wrong-password").await;
        assert_eq!(page.status, 401, "form attempt {attempt}: {}", page.describe());
    }

    let json = app.login("hana", "hana-password").await;

    assert_eq!(json.status(), 429, "the right password at /v1/auth/login during the form's lock");
    let seconds: u64 = json.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&seconds), "{seconds}");
    let locked = post_credentials(&agent, &page, "hana", "hana-password").await;
    assert_eq!(locked.status, 429, "{}", locked.describe());
    assert!((1..=2).contains(&retry_after(&locked)));
}

#[tokio::test]
async fn five_failures_at_the_json_login_lock_the_form_with_a_429_page_until_retry_after() {
    let app =
        app_with_user(TestApp::start_with_clock(testkit::TestDatabase::sqlite(), cheap_hashing).await, "ida")
            .await;
    for attempt in 1..=5 {
        assert_eq!(app.login("ida", "wrong-password").await.status(), 401, "JSON attempt {attempt}");
    }
    let agent = BrowserAgent::new();
    let page = login_page(&app, &agent, FIRST_PARTY).await;

    let locked = post_credentials(&agent, &page, "ida", "ida-password").await;

    assert_eq!(
        locked.status,
        429,
        "the right password at the form during the JSON lock: {}",
        locked.describe()
    );
    let wait = retry_after(&locked);
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(locked.header("content-type").unwrap().starts_with("text/html"), "a page: {}", locked.describe());
    assert!(!locked.body.trim().is_empty(), "a page with a body");
    assert_eq!(locked.location(), None, "no code during a lock");
    let session_cookie = app.state.config.session_cookie_name();
    assert!(!set_cookie_names(&locked).contains(&session_cookie), "no session during a lock");
    assert!(is_login_page(&agent.get(&authorize_url(&app, FIRST_PARTY, &Pkce::new(), &[])).await));

    app.advance(Duration::from_secs(wait));
    let page = login_page(&app, &agent, FIRST_PARTY).await;
    let after = post_credentials(&agent, &page, "ida", "ida-password").await;
    assert!(has_code(&after), "the lock is over: {}", after.describe());
}

#[tokio::test]
async fn failures_at_the_form_and_at_the_json_login_add_up_in_the_same_buckets() {
    let app = app_with_user(
        TestApp::start_with_clock(testkit::TestDatabase::sqlite(), cheap_hashing).await,
        "jana",
    )
    .await;
    let agent = BrowserAgent::new();
    let mut page = login_page(&app, &agent, FIRST_PARTY).await;
    for attempt in 1..=2 {
        page = post_credentials(&agent, &page, "jana", "wrong-password").await;
        assert_eq!(page.status, 401, "form attempt {attempt}");
    }
    for attempt in 3..=5 {
        assert_eq!(app.login("jana", "wrong-password").await.status(), 401, "JSON attempt {attempt}");
    }

    let json = app.login("jana", "jana-password").await;
    let form = post_credentials(&agent, &page, "jana", "jana-password").await;

    assert_eq!(json.status(), 429, "two failures at the form and three at JSON reach the threshold of five");
    assert_eq!(form.status, 429, "{}", form.describe());
}

// ---------------------------------------------------------------------------------------------
// The page itself.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401_page() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "kira-4711")
            .await;
    let agent = BrowserAgent::new();
    let attempts = [
        ("wrong password", "kira-4711", "wrong-password"),
        ("unknown user", "mona-4711", "wrong-password"),
        ("username that cannot exist", "no such user!", "wrong-password"),
        ("password below the minimum", "kira-4711", "short"),
        ("username in capitals", "KIRA-4711", "wrong-password"),
    ];
    let alert = Selector::parse("[role=alert], .error").unwrap();
    let mut answers = Vec::new();
    // One authorization request for all, so the hidden copies of it are the same.
    let url = authorize_url(&app, FIRST_PARTY, &Pkce::new(), &[]);
    for (name, username, password) in attempts {
        let page = agent.get(&url).await;
        let answer = post_credentials(&agent, &page, username, password).await;
        let token = answer
            .form_with_action("/oauth2/login")
            .and_then(|form| form.field("csrf_token").map(str::to_owned))
            .unwrap_or_else(|| panic!("{name}: the form again: {}", answer.describe()));
        // What may differ: the CSRF token and the username typed, which the form shows again.
        let masked = answer.body.replace(&token, "CSRF-TOKEN").replace(username, "USERNAME");
        let message: Vec<String> =
            Html::parse_document(&answer.body).select(&alert).map(|element| element.html()).collect();
        answers.push((name, answer.status, answer.header("content-type"), message, masked));
    }

    let (_, status, content_type, message, body) = &answers[0];
    assert_eq!(*status, 401);
    assert_eq!(message.len(), 1, "one error message: {message:?}");
    for (name, other_status, other_type, other_message, other_body) in &answers[1..] {
        assert_eq!((other_status, other_type), (status, content_type), "{name}");
        assert_eq!(other_message, message, "{name}: the error message element");
        assert_eq!(
            other_body, body,
            "{name}: the page differs from a wrong password's beyond token and username"
        );
    }
}

#[tokio::test]
async fn the_login_page_is_one_labelled_form_without_script_carrying_the_request() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "lena")
            .await;
    let pkce = Pkce::new();
    let url = authorize_url(
        &app,
        FIRST_PARTY,
        &pkce,
        &[("login_hint", "lena"), ("prompt", "login"), ("max_age", "600")],
    );

    let page = BrowserAgent::new().get(&url).await;

    assert_eq!(page.status, 200, "{}", page.describe());
    let document = Html::parse_document(&page.body);
    let select = |css: &str| document.select(&Selector::parse(css).unwrap()).collect::<Vec<_>>();
    let password_forms: Vec<_> = select("form")
        .into_iter()
        .filter(|form| form.select(&Selector::parse("input[type=password]").unwrap()).next().is_some())
        .collect();
    assert_eq!(password_forms.len(), 1, "exactly one form with a password input");
    let form = password_forms[0];
    assert_eq!(form.attr("method").map(str::to_ascii_lowercase).as_deref(), Some("post"));
    assert_eq!(select("input[type=password]").len(), 1);
    let visible: Vec<_> = form
        .select(&Selector::parse("input").unwrap())
        .filter(|input| !matches!(input.attr("type"), Some("hidden" | "submit" | "button")))
        .collect();
    assert!(visible.len() >= 2, "username and password inputs");
    for input in visible {
        let id = input.attr("id").unwrap_or_else(|| panic!("an input without id: {}", input.html()));
        assert_eq!(select(&format!("label[for=\"{id}\"]")).len(), 1, "one label for #{id}");
    }
    assert!(select("script").is_empty() && !page.body.to_ascii_lowercase().contains("<script"), "no script");
    let viewport = select("meta[name=viewport]");
    assert_eq!(viewport.len(), 1, "a viewport meta");
    assert!(viewport[0].attr("content").is_some_and(|content| content.contains("width=device-width")));

    let login = page.form_with_action("/oauth2/login").unwrap();
    let sent: Vec<(String, String)> = Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    for (name, value) in &sent {
        assert_eq!(login.field(name), Some(value.as_str()), "the hidden copy of {name}");
    }
    assert_eq!(login.input("username").unwrap().value, "lena", "login_hint pre-fills the username");
    assert!(login.field("csrf_token").is_some_and(|token| !token.is_empty()));
    // Browsers apply form-action to the redirect after the post too: it must name the client's
    // origin, and only it (a real browser stayed on this page under form-action 'self').
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' http://127.0.0.1:9;"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
}

// ---------------------------------------------------------------------------------------------
// Single sign-on, replicas, cookie names.
// ---------------------------------------------------------------------------------------------

testkit::on_both_backends! {
    async fn one_login_serves_a_second_client_without_the_form(database) {
        let app = app_with_user(TestApp::start_with(database, cheap_hashing).await, "mira").await;
        let agent = BrowserAgent::new();
        let first = authorized_tokens(&app, &agent, FIRST_PARTY, "mira").await;
        let pkce = Pkce::new();

        let page = agent.get(&authorize_url(&app, SECOND_PARTY, &pkce, &[])).await;

        assert_eq!(page.status, 302, "{}", page.describe());
        assert!(page.location().unwrap().starts_with(SECOND_CALLBACK));
        assert_eq!(page.location_param("state").as_deref(), Some("the-state"));
        assert_eq!(page.location_param("iss").as_deref(), Some(app.url.as_str()));
        let (status, second) = redeem(&app, SECOND_PARTY, &page.location_param("code").unwrap(), &pkce).await;
        assert_eq!(status, 200, "{second}");
        let id_token = |tokens: &Value| decode_part(tokens["id_token"].as_str().unwrap(), 1);
        let access = |tokens: &Value| decode_part(tokens["access_token"].as_str().unwrap(), 1);
        assert_eq!(id_token(&first)["sid"], id_token(&second)["sid"], "one browser session");
        assert_ne!(
            access(&first)["sid"],
            access(&second)["sid"],
            "each authorization has its own refresh family"
        );
    }

    async fn a_browser_session_made_on_one_replica_is_honoured_by_another(database) {
        let cookie = |config: &mut Config| {
            cheap_hashing(config);
            config.session_cookie_name = Some("authsrv_replicated".into());
        };
        let first = app_with_user(TestApp::start_with(database, cookie).await, "nina").await;
        let issuer = first.url.clone();
        let second = TestApp::start_with(first.database.same_database(), |config| {
            cookie(config);
            config.issuer = issuer;
        })
        .await;
        let agent = BrowserAgent::new();
        let on_first = authorized_tokens(&first, &agent, FIRST_PARTY, "nina").await;
        let pkce = Pkce::new();
        let url = authorize_url(&first, SECOND_PARTY, &pkce, &[]).replace(&first.url, &second.url);

        let page = agent.get(&url).await;

        assert!(has_code(&page), "the session made on the first replica: {}", page.describe());
        assert_eq!(page.location_param("iss").as_deref(), Some(first.url.as_str()), "one issuer");
        let code = page.location_param("code").unwrap();
        let (status, on_second) = redeem(&second, SECOND_PARTY, &code, &pkce).await;
        assert_eq!(status, 200, "{on_second}");
        assert_eq!(
            decode_part(on_second["id_token"].as_str().unwrap(), 1)["sid"],
            decode_part(on_first["id_token"].as_str().unwrap(), 1)["sid"],
            "the same browser session"
        );

        let confirmation = agent.get(&format!("{}/oauth2/logout", second.url)).await;
        let form = confirmation
            .form_with_action("/oauth2/logout")
            .unwrap_or_else(|| panic!("{}", confirmation.describe()));
        let logged_out = agent.submit(&confirmation, &form, &[]).await;
        assert!(logged_out.status < 400, "{}", logged_out.describe());
        let after = agent.get(&authorize_url(&first, FIRST_PARTY, &Pkce::new(), &[])).await;
        assert!(
            is_login_page(&after),
            "a logout on one replica ends the session on the other: {}",
            after.describe()
        );
    }
}

#[tokio::test]
async fn two_auth_servers_on_one_host_get_different_default_cookie_names() {
    let first =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "olga")
            .await;
    let second =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "olga")
            .await;
    let agent = BrowserAgent::new();

    authorized_tokens(&first, &agent, FIRST_PARTY, "olga").await;
    authorized_tokens(&second, &agent, FIRST_PARTY, "olga").await;

    let (first_name, second_name) = (default_cookie_name(&first.url), default_cookie_name(&second.url));
    assert_ne!(first_name, second_name);
    // Browsers share cookies across the ports of one host: the jar sends both to either.
    assert!(agent.has_cookie(&first.url, &first_name), "{:?}", agent.cookies_for(&first.url));
    assert!(agent.has_cookie(&first.url, &second_name), "{:?}", agent.cookies_for(&first.url));
    for app in [&first, &second] {
        let page = agent.get(&authorize_url(app, SECOND_PARTY, &Pkce::new(), &[])).await;
        assert!(has_code(&page), "{}: still logged in after the other's login: {}", app.url, page.describe());
    }
}

// ---------------------------------------------------------------------------------------------
// Consent.
// ---------------------------------------------------------------------------------------------

/// Walks to the consent page of `partner-app` for `scope`, logging in as `username` if the
/// browser has no session.
async fn consent_page(app: &TestApp, agent: &BrowserAgent, username: &str, extra: &[(&str, &str)]) -> Page {
    let mut page = agent.get(&authorize_url(app, PARTNER, &Pkce::new(), extra)).await;
    if is_login_page(&page) {
        page = post_credentials(agent, &page, username, &password_of(username)).await;
    }
    assert_eq!(page.status, 200, "{}", page.describe());
    assert!(page.form_with_action("/oauth2/consent").is_some(), "not the consent page: {}", page.describe());
    page
}

/// Clicks `decision` (`allow` or `deny`) on the consent page.
async fn decide(agent: &BrowserAgent, page: &Page, decision: &str) -> Page {
    let form = page.form_with_action("/oauth2/consent").unwrap();
    agent.submit(page, &form, &[("decision", decision)]).await
}

#[tokio::test]
async fn a_third_party_client_gets_a_consent_page_and_a_denial_redirects_with_access_denied() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "petra")
            .await;
    let agent = BrowserAgent::new();

    let page = consent_page(&app, &agent, "petra", &[("scope", "openid profile:read orders:read")]).await;

    assert!(page.body.contains(PARTNER), "the page names the client");
    for scope in ["profile:read", "orders:read"] {
        assert!(page.body.contains(scope), "the page lists {scope}");
    }
    let form = page.form_with_action("/oauth2/consent").unwrap();
    for value in ["allow", "deny"] {
        assert!(
            form.inputs
                .iter()
                .any(|input| input.tag == "button" && input.name == "decision" && input.value == value),
            "a decision={value} button: {:?}",
            form.inputs
        );
    }
    let denied = decide(&agent, &page, "deny").await;
    assert!(denied.is_redirect(), "{}", denied.describe());
    assert!(denied.location().unwrap().starts_with(PARTNER_CALLBACK));
    assert_eq!(denied.location_param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.location_param("state").as_deref(), Some("the-state"));
    assert_eq!(denied.location_param("iss").as_deref(), Some(app.url.as_str()));
    assert_eq!(denied.location_param("code"), None);
    consent_page(&app, &agent, "petra", &[("scope", "openid profile:read orders:read")]).await;
}

#[tokio::test]
async fn an_allowed_consent_is_remembered_and_covers_any_subset_of_its_scopes() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "rita")
            .await;
    assert_eq!(app.register("sara", "sara-password").await.status(), 201);
    let agent = BrowserAgent::new();
    let granted = [("scope", "openid profile:read orders:read")];
    let page = consent_page(&app, &agent, "rita", &granted).await;
    assert!(has_code(&decide(&agent, &page, "allow").await));

    let again = agent.get(&authorize_url(&app, PARTNER, &Pkce::new(), &granted)).await;
    let subset =
        agent.get(&authorize_url(&app, PARTNER, &Pkce::new(), &[("scope", "openid profile:read")])).await;
    let more =
        agent.get(&authorize_url(&app, PARTNER, &Pkce::new(), &[("scope", "openid orders:write")])).await;
    let other_user = consent_page(&app, &BrowserAgent::new(), "sara", &granted).await;

    assert!(has_code(&again), "the same scopes again: {}", again.describe());
    assert!(has_code(&subset), "a subset: {}", subset.describe());
    assert!(more.form_with_action("/oauth2/consent").is_some(), "a scope never granted: {}", more.describe());
    assert!(other_user.body.contains(PARTNER), "consent is per user");
}

#[tokio::test]
async fn prompt_consent_shows_the_consent_page_even_to_a_first_party_client() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "tina")
            .await;
    let agent = BrowserAgent::new();
    let page = login_page(&app, &agent, FIRST_PARTY).await;
    let first = post_credentials(&agent, &page, "tina", "tina-password").await;
    assert!(has_code(&first), "a first-party client is not asked: {}", first.describe());

    let page = agent.get(&authorize_url(&app, FIRST_PARTY, &Pkce::new(), &[("prompt", "consent")])).await;

    assert_eq!(page.status, 200, "{}", page.describe());
    assert!(page.form_with_action("/oauth2/consent").is_some(), "the consent page: {}", page.describe());
    assert!(page.body.contains(FIRST_PARTY));
    assert!(has_code(&decide(&agent, &page, "allow").await));
}

#[tokio::test]
async fn prompt_none_when_consent_is_needed_answers_consent_required() {
    let app =
        app_with_user(TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await, "ulla")
            .await;
    let agent = logged_in(&app, "ulla").await;

    let page = agent.get(&authorize_url(&app, PARTNER, &Pkce::new(), &[("prompt", "none")])).await;
    let no_session =
        BrowserAgent::new().get(&authorize_url(&app, FIRST_PARTY, &Pkce::new(), &[("prompt", "none")])).await;

    assert!(page.is_redirect(), "{}", page.describe());
    assert!(page.location().unwrap().starts_with(PARTNER_CALLBACK));
    assert_eq!(page.location_param("error").as_deref(), Some("consent_required"));
    assert_eq!(page.location_param("state").as_deref(), Some("the-state"));
    assert_eq!(page.location_param("iss").as_deref(), Some(app.url.as_str()));
    assert_eq!(page.location_param("code"), None);
    assert_eq!(
        no_session.location_param("error").as_deref(),
        Some("login_required"),
        "{}",
        no_session.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Logout.
// ---------------------------------------------------------------------------------------------

testkit::on_both_backends! {
    async fn logout_ends_the_single_sign_on_session_and_the_refresh_tokens_it_started(database) {
        let app = app_with_user(TestApp::start_with(database, cheap_hashing).await, "vera").await;
        let agent = BrowserAgent::new();
        let first = authorized_tokens(&app, &agent, FIRST_PARTY, "vera").await;
        let second = authorized_tokens(&app, &agent, SECOND_PARTY, "vera").await;
        let session_cookie = app.state.config.session_cookie_name();
        assert!(agent.has_cookie(&app.url, &session_cookie));

        let confirmation = agent.get(&format!("{}/oauth2/logout", app.url)).await;
        assert_eq!(confirmation.status, 200, "{}", confirmation.describe());
        let still = agent.get(&authorize_url(&app, FIRST_PARTY, &Pkce::new(), &[])).await;
        assert!(has_code(&still), "a GET alone logs nobody out: {}", still.describe());
        let form = confirmation
            .form_with_action("/oauth2/logout")
            .unwrap_or_else(|| panic!("{}", confirmation.describe()));
        let logged_out = agent.submit(&confirmation, &form, &[]).await;

        assert_eq!(logged_out.status, 200, "{}", logged_out.describe());
        assert!(!agent.has_cookie(&app.url, &session_cookie), "the cookie is cleared");
        let next = agent.get(&authorize_url(&app, SECOND_PARTY, &Pkce::new(), &[])).await;
        assert!(is_login_page(&next), "the next authorize shows the login page: {}", next.describe());
        let revoked = app.revocation_list().await;
        for (client_id, tokens) in [(FIRST_PARTY, &first), (SECOND_PARTY, &second)] {
            let (status, body) = refresh(&app, client_id, tokens["refresh_token"].as_str().unwrap()).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{client_id}: {body}");
            let access = decode_part(tokens["access_token"].as_str().unwrap(), 1);
            let sid = access["sid"].as_str().unwrap().to_owned();
            assert!(lists(&revoked.sessions, &sid), "{client_id}'s refresh family {sid} is published");
        }
    }
}
