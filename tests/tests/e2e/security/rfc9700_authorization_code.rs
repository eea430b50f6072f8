//! RFC 9700, OAuth 2.0 Security Best Current Practice, for the authorization code grant and
//! the hosted login of the real auth server (in-process), driven by `testkit::browser` as a
//! browser would: code injection (§4.5), PKCE downgrade (§4.8, §2.1.1), open redirection
//! (§4.11, §4.1), cross-site request forgery of the login (§4.7), clickjacking (§4.16), mix-up
//! (§4.4, RFC 9207), `state` and code replay (RFC 6749 §4.1.2), the `nonce` (OpenID Connect Core
//! §3.1.2.1), session fixation and the session cookie's attributes (OWASP ASVS 5.0 V7, RFC 6265bis
//! §4.1.3.2).
//!
//! Every case runs against a browser that already has a session wherever that makes a bypass
//! worse: an accepted attack would then hand out a code at once.

use reqwest::Url;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use testkit::browser::{BrowserAgent, Form, Page, Pkce, authorize_and_login};

use super::harness::AuthApp;

/// The user every case logs in as.
const USERNAME: &str = "browser-user";
/// Their password.
const PASSWORD: &str = "browser-password";

// Redirect URIs on the discard port: nothing listens there, and the browser never follows.
/// `app-a`'s first redirect URI.
const CALLBACK_A: &str = "http://127.0.0.1:9/a/callback";
/// `app-a`'s second redirect URI.
const CALLBACK_A2: &str = "http://127.0.0.1:9/a/second-callback";
/// `app-b`'s redirect URI.
const CALLBACK_B: &str = "http://127.0.0.1:9/b/callback";
/// The confidential `app-c`'s redirect URI.
const CALLBACK_C: &str = "http://127.0.0.1:9/c/callback";
/// The third-party (consent-needing) client's redirect URI.
const CALLBACK_THIRD: &str = "http://127.0.0.1:9/third/callback";
/// `app-a`'s post-logout redirect URI.
const LOGGED_OUT_A: &str = "http://127.0.0.1:9/a/logged-out";
/// `app-b`'s post-logout redirect URI.
const LOGGED_OUT_B: &str = "http://127.0.0.1:9/b/logged-out";

/// The auth server with four clients and one user:
///
/// | client | kind | consent |
/// |---|---|---|
/// | `app-a` | public, two redirect URIs | first party |
/// | `app-b` | public | first party |
/// | `app-c` | confidential | first party |
/// | `third-party` | public | asked |
struct Provider {
    auth: AuthApp,
    /// `app-c`'s secret.
    secret_c: String,
}

impl Provider {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut auth_server::config::Config)) -> Self {
        let auth = AuthApp::start_with(|config| {
            config.argon2_memory_kib = 1024;
            config.argon2_iterations = 1;
            adjust(config);
        })
        .await;
        let public =
            |redirect_uris: &[&str], post_logout: &[&str], first_party| auth_server::clients::Registration {
                scopes: vec!["profile:read".into(), "orders:read".into()],
                redirect_uris: redirect_uris.iter().map(|uri| (*uri).to_owned()).collect(),
                post_logout_redirect_uris: post_logout.iter().map(|uri| (*uri).to_owned()).collect(),
                public: true,
                first_party,
                ..auth_server::clients::Registration::default()
            };
        register(&auth, "app-a", &public(&[CALLBACK_A, CALLBACK_A2], &[LOGGED_OUT_A], true)).await;
        register(&auth, "app-b", &public(&[CALLBACK_B], &[LOGGED_OUT_B], true)).await;
        register(&auth, "third-party", &public(&[CALLBACK_THIRD], &[], false)).await;
        let confidential =
            auth_server::clients::Registration { public: false, ..public(&[CALLBACK_C], &[], true) };
        let secret_c = register(&auth, "app-c", &confidential).await;
        assert_eq!(auth.register(USERNAME, PASSWORD).await, 201);
        Self { auth, secret_c }
    }

    /// `/oauth2/authorize` with exactly these query parameters.
    fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        Url::parse_with_params(&format!("{}/oauth2/authorize", self.auth.url), params).unwrap().into()
    }

    /// The name of the browser-session cookie: `authsrv_<host>_<port>` of the issuer.
    fn session_cookie(&self) -> String {
        default_cookie_name(&self.auth.url)
    }

    /// A browser logged in as `username` (through `app-a`).
    async fn logged_in_as(&self, username: &str, password: &str) -> BrowserAgent {
        let agent = BrowserAgent::new();
        let pkce = Pkce::new();
        let redirect = authorize_and_login(
            &agent,
            &self.authorize_url(&request("app-a", CALLBACK_A, &pkce)),
            username,
            password,
        )
        .await;
        assert!(redirect.location_param("code").is_some(), "the control login: {}", redirect.describe());
        agent
    }

    /// A browser logged in as [`USERNAME`].
    async fn logged_in(&self) -> BrowserAgent {
        self.logged_in_as(USERNAME, PASSWORD).await
    }

    /// A code for the authorization request `params` through `agent` (logging in when it has
    /// no session).
    async fn code(&self, agent: &BrowserAgent, params: &[(&str, &str)]) -> String {
        let redirect = authorize_and_login(agent, &self.authorize_url(params), USERNAME, PASSWORD).await;
        assert_eq!(redirect.status, 302, "{}", redirect.describe());
        redirect.location_param("code").unwrap_or_else(|| panic!("no code: {}", redirect.describe()))
    }

    /// `POST /oauth2/token` with `form`, authenticated as `app-c` when `confidential`.
    async fn token(&self, form: &[(&str, &str)], confidential: bool) -> (u16, Value) {
        let mut request = self.auth.http.post(format!("{}/oauth2/token", self.auth.url)).form(form);
        if confidential {
            request = request.basic_auth("app-c", Some(&self.secret_c));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Redeems `code` for `client` as the legitimate client would; returns status and body.
    async fn redeem(&self, client: &str, code: &str, redirect_uri: &str, verifier: &str) -> (u16, Value) {
        self.token(&code_grant(client, code, redirect_uri, verifier), client == "app-c").await
    }

    /// The tokens of one complete authorization of `app-a` through `agent`.
    async fn tokens(&self, agent: &BrowserAgent) -> Value {
        let pkce = Pkce::new();
        let code = self.code(agent, &request("app-a", CALLBACK_A, &pkce)).await;
        let (status, body) = self.redeem("app-a", &code, CALLBACK_A, &pkce.verifier).await;
        assert_eq!(status, 200, "the control redemption: {body}");
        body
    }

    /// Whose session `agent` holds: the `sub` of an id_token from a silent authorization of
    /// `app-a`, or `None` when it gets the login page (no session).
    async fn session_subject(&self, agent: &BrowserAgent) -> Option<Value> {
        let pkce = Pkce::new();
        let page = agent.get(&self.authorize_url(&request("app-a", CALLBACK_A, &pkce))).await;
        if page.form_with_action("/oauth2/login").is_some() {
            return None;
        }
        let code = page.location_param("code").unwrap_or_else(|| panic!("{}", page.describe()));
        let (status, body) = self.redeem("app-a", &code, CALLBACK_A, &pkce.verifier).await;
        assert_eq!(status, 200, "{body}");
        Some(claims_of(body["id_token"].as_str().unwrap())["sub"].clone())
    }

    /// The status of `GET /oauth2/userinfo` with `access_token`, and its challenge.
    async fn userinfo(&self, access_token: &str) -> (u16, Option<String>) {
        let response = self
            .auth
            .http
            .get(format!("{}/oauth2/userinfo", self.auth.url))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        let challenge =
            response.headers().get("www-authenticate").map(|value| value.to_str().unwrap().to_owned());
        (response.status().as_u16(), challenge)
    }

    /// The session ids in `/v1/revocations`.
    async fn revoked_sessions(&self) -> Vec<String> {
        let list = self
            .auth
            .http
            .get(format!("{}/v1/revocations", self.auth.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let list: shared_auth::revocation::RevocationList = serde_json::from_value(claims_of(&list)).unwrap();
        list.sessions.into_iter().map(|entry| entry.id).collect()
    }
}

/// Registers a client; returns its secret (meaningless for a public one).
async fn register(
    auth: &AuthApp,
    client_id: &str,
    registration: &auth_server::clients::Registration,
) -> String {
    let secret = auth_server::clients::generate_secret();
    auth_server::clients::register(&auth.state.pool, client_id, &secret, registration).await.unwrap();
    secret.expose_secret().to_owned()
}

/// The parameters of a correct authorization request of `client`.
fn request<'a>(client: &'a str, redirect_uri: &'a str, pkce: &'a Pkce) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile:read"),
        ("state", "state-value"),
        ("nonce", "nonce-value"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// `params` with `name` set to `value` (replaced, or appended).
fn set<'a>(mut params: Vec<(&'a str, &'a str)>, name: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    match params.iter_mut().find(|(key, _)| *key == name) {
        Some(param) => param.1 = value,
        None => params.push((name, value)),
    }
    params
}

/// `params` without `name`.
fn unset<'a>(mut params: Vec<(&'a str, &'a str)>, name: &str) -> Vec<(&'a str, &'a str)> {
    params.retain(|(key, _)| *key != name);
    params
}

/// The token request redeeming `code` (`client_id` in the form, as public clients send it).
fn code_grant<'a>(
    client: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("client_id", client),
    ]
}

/// The contract's default cookie name for the issuer `url`: `authsrv_<host>_<port>`, every
/// non-alphanumeric character of the host as `_`.
fn default_cookie_name(url: &str) -> String {
    let url = Url::parse(url).unwrap();
    let host: String =
        url.host_str().unwrap().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("authsrv_{host}_{}", url.port_or_known_default().unwrap())
}

/// Every `Set-Cookie` value of a response.
fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().map(|value| value.to_str().unwrap().to_owned()).collect()
}

/// The `Set-Cookie` value that sets the cookie `name`, if any.
fn set_cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find(|cookie| {
        cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .is_some_and(|(key, _)| key.trim() == name)
    })
}

/// The attributes of a `Set-Cookie` value, lower-cased names, as `(name, value)`.
fn cookie_attributes(set_cookie: &str) -> Vec<(String, String)> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|attribute| {
            let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect()
}

/// The value of the cookie `name` this browser would send to `url`.
fn cookie_value(agent: &BrowserAgent, url: &str, name: &str) -> Option<String> {
    agent.cookies_for(url)?.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// The hosted login form of `page`, which must be the login page.
fn login_form(page: &Page) -> Form {
    page.form_with_action("/oauth2/login")
        .unwrap_or_else(|| panic!("not the login page: {}", page.describe()))
}

/// The target of `Location` without its query: where a redirect sends the browser.
fn redirect_target(page: &Page) -> Option<String> {
    page.location().map(|location| location.split(['?', '#']).next().unwrap_or_default().to_owned())
}

/// The claims of a JWT, unverified.
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

/// RFC 9700 §4.5 (authorization code injection): "the authorization server MUST ... bind the
/// code to the client and the PKCE challenge", and RFC 6749 §4.1.3 (the code was issued to the
/// authenticated client; `redirect_uri` is identical to the authorization request's). A code
/// of `app-a` redeemed by another public client, by an authenticated confidential client, with
/// A's other registered redirect URI, with an unregistered one, or with another PKCE verifier
/// is `invalid_grant`; and since any redemption attempt consumes a code, the code is then dead
/// for `app-a` too.
#[tokio::test]
async fn an_injected_code_is_refused_and_then_dead_for_its_own_client_too() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let other_verifier = Pkce::new().verifier;
    // (name, client_id, redirect_uri, verifier: None = the right one, confidential)
    let cases: [(&str, &str, &str, Option<&str>, bool); 6] = [
        ("redeemed by app-b with A's redirect URI and verifier", "app-b", CALLBACK_A, None, false),
        ("redeemed by app-b with its own redirect URI", "app-b", CALLBACK_B, None, false),
        ("redeemed by the authenticated confidential app-c", "app-c", CALLBACK_A, None, true),
        ("redeemed by app-a with its other registered redirect URI", "app-a", CALLBACK_A2, None, false),
        (
            "redeemed by app-a with an unregistered redirect URI",
            "app-a",
            "http://127.0.0.1:9/evil",
            None,
            false,
        ),
        (
            "redeemed by app-a with another PKCE verifier",
            "app-a",
            CALLBACK_A,
            Some(other_verifier.as_str()),
            false,
        ),
    ];
    for (name, client, redirect_uri, verifier, confidential) in cases {
        let pkce = Pkce::new();
        let code = provider.code(&agent, &request("app-a", CALLBACK_A, &pkce)).await;
        let verifier = verifier.unwrap_or(&pkce.verifier);

        let (status, body) =
            provider.token(&code_grant(client, &code, redirect_uri, verifier), confidential).await;
        let (legitimate_status, legitimate_body) =
            provider.redeem("app-a", &code, CALLBACK_A, &pkce.verifier).await;

        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{name}: {body}");
        assert!(body.get("access_token").is_none(), "{name}: {body}");
        assert_eq!(
            (legitimate_status, legitimate_body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{name}: the code must be dead for app-a after the attempt: {legitimate_body}"
        );
    }
    println!("[RFC 9700 §4.5, RFC 6749 §4.1.3: code injection] {} cases: all as required", cases.len());
}

/// The `code_verifier` a case sends for a PKCE pair; `None` leaves the parameter out.
type VerifierOf = fn(&Pkce) -> Option<String>;

/// RFC 9700 §4.8 (PKCE downgrade) and §2.1.1 ("authorization servers MUST support PKCE ...
/// MUST ... prevent PKCE downgrade attacks", by refusing a token request with a
/// `code_verifier` when the authorization request had no `code_challenge`, and vice versa),
/// with DESIGN.md's stricter rule: `code_challenge` and `code_challenge_method=S256` are
/// required. An authorization request without a challenge, with `plain`, with a challenge
/// but no method (RFC 7636 §4.3 defaults it to `plain`) or a method without a challenge gets an
/// `invalid_request` redirect and no code, even from a browser with a session; a code redeemed
/// without a verifier, with an empty one, or with its challenge as if it were `plain` gets no
/// token.
#[tokio::test]
async fn pkce_cannot_be_left_out_or_downgraded_to_plain() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let pkce = Pkce::new();
    let correct = request("app-a", CALLBACK_A, &pkce);
    let authorize_cases = [
        (
            "no code_challenge, no method",
            unset(unset(correct.clone(), "code_challenge"), "code_challenge_method"),
        ),
        (
            "code_challenge_method=plain",
            set(set(correct.clone(), "code_challenge_method", "plain"), "code_challenge", &pkce.verifier),
        ),
        ("a challenge without a method (plain by default)", unset(correct.clone(), "code_challenge_method")),
        ("S256 without a challenge", unset(correct.clone(), "code_challenge")),
        ("an empty challenge", set(correct.clone(), "code_challenge", "")),
    ];
    for (name, params) in &authorize_cases {
        let page = agent.get(&provider.authorize_url(params)).await;
        assert!(page.is_redirect(), "{name}: {}", page.describe());
        assert_eq!(redirect_target(&page).as_deref(), Some(CALLBACK_A), "{name}");
        assert_eq!(
            page.location_param("error").as_deref(),
            Some("invalid_request"),
            "{name}: {}",
            page.describe()
        );
        assert_eq!(page.location_param("code"), None, "{name}");
        assert_eq!(page.location_param("state").as_deref(), Some("state-value"), "{name}");
    }

    let token_cases: [(&str, VerifierOf); 3] = [
        ("no code_verifier", |_| None),
        ("an empty code_verifier", |_| Some(String::new())),
        ("the challenge as verifier (plain)", |pkce| Some(pkce.challenge.clone())),
    ];
    for (name, verifier_of) in token_cases {
        let pkce = Pkce::new();
        let code = provider.code(&agent, &request("app-a", CALLBACK_A, &pkce)).await;
        let verifier = verifier_of(&pkce);
        let form = match &verifier {
            Some(verifier) => code_grant("app-a", &code, CALLBACK_A, verifier),
            None => unset(code_grant("app-a", &code, CALLBACK_A, ""), "code_verifier"),
        };
        let (status, body) = provider.token(&form, false).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            matches!(body["error"].as_str(), Some("invalid_grant" | "invalid_request")),
            "{name}: {body}"
        );
        assert!(body.get("access_token").is_none(), "{name}: {body}");
    }
    println!(
        "[RFC 9700 §4.8, §2.1.1: PKCE downgrade] {} cases: all as required",
        authorize_cases.len() + token_cases.len()
    );
}

/// RFC 9700 §4.11 (open redirection: "authorization servers ... MUST NOT ... automatically
/// redirect the user agent" to an unregistered URI), §4.1 and §2.1 ("exact string matching"),
/// RFC 6749 §3.1.2 (no fragment). For every variant of `app-a`'s registered URI (unregistered,
/// prefix, suffix, another path, another port, no port, upper-cased path and scheme, `@`
/// userinfo either way round, a fragment, a percent-encoded letter, another client's URI), a
/// missing or empty one, and an unknown or missing client, the answer is a 400 HTML page
/// without `Location`, from a browser with a session and from one without.
#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let provider = Provider::start().await;
    let pkce = Pkce::new();
    let correct = request("app-a", CALLBACK_A, &pkce);
    let redirect_uris = [
        ("another host", "https://attacker.example/a/callback"),
        ("a prefix", "http://127.0.0.1:9/a/callbac"),
        ("a path suffix", "http://127.0.0.1:9/a/callbackevil"),
        ("a trailing slash", "http://127.0.0.1:9/a/callback/"),
        ("a further path segment", "http://127.0.0.1:9/a/callback/../../evil"),
        ("an added query", "http://127.0.0.1:9/a/callback?next=https://attacker.example"),
        ("a host suffix", "http://127.0.0.1.attacker.example:9/a/callback"),
        ("another port", "http://127.0.0.1:10/a/callback"),
        ("no port", "http://127.0.0.1/a/callback"),
        ("localhost for 127.0.0.1", "http://localhost:9/a/callback"),
        ("an upper-cased path", "http://127.0.0.1:9/A/callback"),
        ("an upper-cased scheme", "HTTP://127.0.0.1:9/a/callback"),
        ("https for http", "https://127.0.0.1:9/a/callback"),
        ("userinfo before the attacker's host", "http://127.0.0.1:9@attacker.example/a/callback"),
        ("the attacker's userinfo", "http://attacker.example@127.0.0.1:9/a/callback"),
        ("a fragment", "http://127.0.0.1:9/a/callback#fragment"),
        ("an empty fragment", "http://127.0.0.1:9/a/callback#"),
        ("a percent-encoded letter", "http://127.0.0.1:9/a/%63allback"),
        ("another client's URI", CALLBACK_B),
        ("empty", ""),
    ];
    let mut cases: Vec<(String, Vec<(&str, &str)>)> = redirect_uris
        .iter()
        .map(|(name, uri)| {
            (format!("redirect_uri: {name} ({uri:?})"), set(correct.clone(), "redirect_uri", uri))
        })
        .collect();
    cases.push(("no redirect_uri".into(), unset(correct.clone(), "redirect_uri")));
    cases.push(("an unknown client with A's URI".into(), set(correct.clone(), "client_id", "no-such-app")));
    cases.push(("no client_id".into(), unset(correct.clone(), "client_id")));

    let fresh = BrowserAgent::new();
    let with_session = provider.logged_in().await;
    let mut failures = Vec::new();
    for (agent_name, agent) in [("no session", &fresh), ("a session", &with_session)] {
        for (name, params) in &cases {
            let page = agent.get(&provider.authorize_url(params)).await;
            let html = page.header("content-type").is_some_and(|value| value.starts_with("text/html"));
            if page.status != 400 || !html || page.location().is_some() {
                failures.push(format!(
                    "  - {name}, {agent_name}: {} {:?} Location {:?}",
                    page.status,
                    page.header("content-type"),
                    page.location()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "[RFC 9700 §4.11] {} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "[RFC 9700 §4.11, §4.1: open redirector at authorize] {} cases: all as required",
        cases.len() * 2
    );
}

/// RFC 9700 §4.11 for logout (OpenID RP-Initiated Logout 1.0 §3: the OP redirects only to a
/// `post_logout_redirect_uri` registered for the client, exactly), with DESIGN.md's rules: a
/// valid `id_token_hint` with an unregistered URI, another client's URI or a suffixed one still
/// logs out, then shows the "logged out" page; without a valid hint there is a confirmation
/// page, never a redirect; and the confirmed logout redirects only when `client_id` is given and
/// the URI is registered for it. The control: a valid hint and the registered URI redirect there
/// with `state`.
#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_never_redirects() {
    let provider = Provider::start().await;
    let logout_url = |params: &[(&str, &str)]| {
        Url::parse_with_params(&format!("{}/oauth2/logout", provider.auth.url), params).unwrap().to_string()
    };
    let with_hint = [
        ("an unregistered URI", "https://attacker.example/logged-out"),
        ("another client's URI", LOGGED_OUT_B),
        ("a suffixed URI", "http://127.0.0.1:9/a/logged-out/evil"),
        ("a fragment", "http://127.0.0.1:9/a/logged-out#x"),
    ];
    for (name, uri) in with_hint {
        let agent = provider.logged_in().await;
        let id_token = provider.tokens(&agent).await["id_token"].as_str().unwrap().to_owned();

        let page = agent
            .get(&logout_url(&[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", uri),
                ("state", "s"),
            ]))
            .await;

        assert_eq!((page.status, page.location()), (200, None), "valid hint, {name}: {}", page.describe());
        let after = agent.get(&provider.authorize_url(&request("app-a", CALLBACK_A, &Pkce::new()))).await;
        assert!(
            after.form_with_action("/oauth2/login").is_some(),
            "valid hint, {name}: still logged out? {}",
            after.describe()
        );
    }

    let agent = provider.logged_in().await;
    let id_token = provider.tokens(&agent).await["id_token"].as_str().unwrap().to_owned();
    let mut forged = id_token.clone();
    forged.push_str("AA");
    let without_valid_hint: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "no hint, client and registered URI",
            vec![("client_id", "app-a"), ("post_logout_redirect_uri", LOGGED_OUT_A)],
        ),
        ("no hint, no client_id, a registered URI", vec![("post_logout_redirect_uri", LOGGED_OUT_A)]),
        (
            "no hint, client and an unregistered URI",
            vec![("client_id", "app-a"), ("post_logout_redirect_uri", "https://attacker.example/")],
        ),
        (
            "a hint with a broken signature",
            vec![("id_token_hint", forged.as_str()), ("post_logout_redirect_uri", LOGGED_OUT_A)],
        ),
    ];
    for (name, params) in &without_valid_hint {
        let page = agent.get(&logout_url(params)).await;
        assert_eq!((page.status, page.location()), (200, None), "{name}: {}", page.describe());
        assert!(
            page.form_with_action("/oauth2/logout").is_some(),
            "{name}: a confirmation page: {}",
            page.describe()
        );
    }
    let confirmed = [without_valid_hint[1].clone(), without_valid_hint[2].clone()];
    for (name, params) in &confirmed {
        let agent = provider.logged_in().await;
        let confirmation = agent.get(&logout_url(params)).await;
        let form = confirmation.form_with_action("/oauth2/logout").unwrap();
        let page = agent.submit(&confirmation, &form, &[]).await;
        assert_eq!((page.status, page.location()), (200, None), "{name}, confirmed: {}", page.describe());
    }

    let id_token = provider.tokens(&agent).await["id_token"].as_str().unwrap().to_owned();
    let control = agent
        .get(&logout_url(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", LOGGED_OUT_A),
            ("state", "s 1"),
        ]))
        .await;
    assert!(control.is_redirect(), "the control: {}", control.describe());
    assert_eq!(redirect_target(&control).as_deref(), Some(LOGGED_OUT_A));
    assert_eq!(control.location_param("state").as_deref(), Some("s 1"));
    println!(
        "[RFC 9700 §4.11, RP-Initiated Logout §3: post-logout redirect] {} cases: all as required",
        with_hint.len() + without_valid_hint.len() + confirmed.len() + 1
    );
}

/// Login CSRF: RFC 9700 §4.7 and RFC 6749 §10.12 (CSRF), the OWASP CSRF Prevention Cheat Sheet's
/// "login CSRF", ASVS 5.0 3.5.1; DESIGN.md: "the CSRF token is bound to the browser ... the same
/// token posted from another cookie jar gets 403". The right credentials posted without a
/// `csrf_token`, with a wrong or empty one, with the attacker's own valid token from the
/// victim's browser, or with the victim's token from a browser without the victim's cookie get
/// 403 and no session cookie; the victim is still not logged in. The control posts the form
/// unchanged and logs in.
#[tokio::test]
async fn a_login_post_without_this_browsers_csrf_token_is_forbidden_and_logs_nobody_in() {
    let provider = Provider::start().await;
    let session_cookie = provider.session_cookie();
    let authorize = provider.authorize_url(&request("app-a", CALLBACK_A, &Pkce::new()));
    let victim = BrowserAgent::new();
    let page = victim.get(&authorize).await;
    let form = login_form(&page);
    let credentials = [("username", USERNAME), ("password", PASSWORD)];
    let attacker = BrowserAgent::new();
    let attacker_token = login_form(&attacker.get(&authorize).await)
        .field("csrf_token")
        .expect("a csrf_token field")
        .to_owned();
    let victim_token = form.field("csrf_token").unwrap().to_owned();
    assert_ne!(attacker_token, victim_token, "each browser has its own token");
    let target = form.target(&page.url);
    let fields = |token: Option<&str>| {
        let mut fields = form.fields_with(&credentials);
        fields.retain(|(name, _)| name != "csrf_token");
        if let Some(token) = token {
            fields.push(("csrf_token".into(), token.to_owned()));
        }
        fields
    };
    let cookieless = BrowserAgent::new();
    let cases = [
        ("no csrf_token", &victim, fields(None)),
        ("a wrong csrf_token", &victim, fields(Some("wrong-token"))),
        ("an empty csrf_token", &victim, fields(Some(""))),
        ("the attacker's valid token from the victim's browser", &victim, fields(Some(&attacker_token))),
        ("the victim's token from a browser without its cookie", &cookieless, fields(Some(&victim_token))),
    ];
    for (name, agent, fields) in &cases {
        let answer = agent.post_form(&target, fields).await;
        assert_eq!(answer.status, 403, "{name}: {}", answer.describe());
        assert_eq!(
            set_cookie_named(&answer.headers, &session_cookie),
            None,
            "{name}: a session cookie was set"
        );
        assert!(!agent.has_cookie(&provider.auth.url, &session_cookie), "{name}");
    }
    let still = victim.get(&authorize).await;
    assert!(
        still.form_with_action("/oauth2/login").is_some(),
        "the victim is not logged in: {}",
        still.describe()
    );

    let control = victim.submit(&page, &form, &credentials).await;
    assert_eq!(control.status, 302, "the control: {}", control.describe());
    assert!(
        set_cookie_named(&control.headers, &session_cookie).is_some(),
        "the control sets the session cookie"
    );
    println!(
        "[RFC 9700 §4.7, RFC 6749 §10.12, ASVS 3.5.1: login CSRF] {} cases: all as required",
        cases.len()
    );
}

/// The headers RFC 9700 §4.16 (clickjacking: "authorization servers MUST prevent clickjacking
/// attacks ... X-Frame-Options ... Content-Security-Policy frame-ancestors") and DESIGN.md
/// "Pages" require of one HTML page; the failures.
fn page_header_failures(page: &Page) -> Vec<String> {
    let mut wrong = Vec::new();
    let header = |name: &str| page.header(name).unwrap_or_default();
    if !header("x-frame-options").eq_ignore_ascii_case("DENY") {
        wrong.push(format!("X-Frame-Options {:?}", page.header("x-frame-options")));
    }
    let policy = header("content-security-policy");
    if !policy.split(';').any(|directive| directive.trim() == "frame-ancestors 'none'") {
        wrong.push(format!("Content-Security-Policy {policy:?} lacks frame-ancestors 'none'"));
    }
    if !header("cache-control").split(',').any(|directive| directive.trim() == "no-store") {
        wrong.push(format!("Cache-Control {:?}", page.header("cache-control")));
    }
    if header("referrer-policy") != "no-referrer" {
        wrong.push(format!("Referrer-Policy {:?}", page.header("referrer-policy")));
    }
    if !header("content-type").eq_ignore_ascii_case("text/html; charset=utf-8") {
        wrong.push(format!("Content-Type {:?}", page.header("content-type")));
    }
    wrong
}

/// RFC 9700 §4.16 (clickjacking) and RFC 9700 §4.2/§4.3 (credentials leaking through Referer and
/// the browser's cache), as DESIGN.md's "Pages" rule has it: every HTML page of the auth
/// server carries `X-Frame-Options: DENY`, a CSP with `frame-ancestors 'none'`,
/// `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and `text/html; charset=utf-8`:
/// the login page, after wrong credentials and after a CSRF failure, the consent page, the
/// logout confirmation, the "logged out" page, and the error pages for an unknown client and an
/// unregistered redirect URI.
#[tokio::test]
async fn every_page_of_the_hosted_login_forbids_framing_caching_and_referrers() {
    let provider = Provider::start().await;
    let pkce = Pkce::new();
    let authorize = provider.authorize_url(&request("app-a", CALLBACK_A, &pkce));
    let fresh = BrowserAgent::new();
    let login = fresh.get(&authorize).await;
    let form = login_form(&login);
    let wrong_credentials =
        fresh.submit(&login, &form, &[("username", USERNAME), ("password", "wrong-password")]).await;
    let csrf_failure = fresh
        .submit(&login, &form, &[("username", USERNAME), ("password", PASSWORD), ("csrf_token", "forged")])
        .await;
    let agent = provider.logged_in().await;
    let consent = agent.get(&provider.authorize_url(&request("third-party", CALLBACK_THIRD, &pkce))).await;
    let confirmation = agent.get(&format!("{}/oauth2/logout", provider.auth.url)).await;
    let logged_out = agent
        .submit(
            &confirmation,
            &confirmation.form_with_action("/oauth2/logout").expect("the confirmation form"),
            &[],
        )
        .await;
    let unknown_client = fresh
        .get(&provider.authorize_url(&set(request("app-a", CALLBACK_A, &pkce), "client_id", "nobody")))
        .await;
    let unregistered = fresh
        .get(&provider.authorize_url(&set(
            request("app-a", CALLBACK_A, &pkce),
            "redirect_uri",
            "https://attacker.example/",
        )))
        .await;
    let pages = [
        ("the login page", 200, &login),
        ("the login page after wrong credentials", 401, &wrong_credentials),
        ("the CSRF failure page", 403, &csrf_failure),
        ("the consent page", 200, &consent),
        ("the logout confirmation", 200, &confirmation),
        ("the logged-out page", 200, &logged_out),
        ("the unknown-client error page", 400, &unknown_client),
        ("the unregistered-redirect error page", 400, &unregistered),
    ];
    let mut failures = Vec::new();
    for (name, status, page) in pages {
        let mut wrong = page_header_failures(page);
        if page.status != status {
            wrong.push(format!("status {} instead of {status}", page.status));
        }
        if !wrong.is_empty() {
            failures.push(format!("  - {name}: {}", wrong.join("; ")));
        }
    }
    assert!(consent.form_with_action("/oauth2/consent").is_some(), "{}", consent.describe());
    assert!(
        failures.is_empty(),
        "[RFC 9700 §4.16] {} of {} pages failed:\n{}",
        failures.len(),
        pages.len(),
        failures.join("\n")
    );
    println!("[RFC 9700 §4.16, §4.2, §4.3: page headers] {} cases: all as required", pages.len());
}

/// RFC 9700 §4.4 (mix-up: "clients ... MUST ... the iss parameter", "authorization servers
/// ... MUST send it") and RFC 9207 §2 ("the authorization server MUST ... in both successful and
/// error responses"): every authorization response carries exactly one `iss`, equal to the
/// issuer: a first login, single sign-on, after consent; and the errors `login_required`,
/// `invalid_request`, `unsupported_response_type`, `invalid_scope`, `request_not_supported`,
/// `consent_required` and `access_denied`, each with the request's `state`.
#[tokio::test]
async fn every_authorization_response_names_the_issuer() {
    let provider = Provider::start().await;
    let pkce = Pkce::new();
    let a = request("app-a", CALLBACK_A, &pkce);
    let third = request("third-party", CALLBACK_THIRD, &pkce);
    let agent = BrowserAgent::new();
    let mut responses = Vec::new();

    let silent = agent.get(&provider.authorize_url(&set(a.clone(), "prompt", "none"))).await;
    responses.push(("login_required", Some("login_required"), CALLBACK_A, silent));
    let first = authorize_and_login(&agent, &provider.authorize_url(&a), USERNAME, PASSWORD).await;
    responses.push(("a first login", None, CALLBACK_A, first));
    let sso = agent.get(&provider.authorize_url(&request("app-b", CALLBACK_B, &pkce))).await;
    responses.push(("single sign-on", None, CALLBACK_B, sso));
    let errors = [
        ("no code_challenge", "invalid_request", CALLBACK_A, unset(a.clone(), "code_challenge")),
        (
            "response_type=token",
            "unsupported_response_type",
            CALLBACK_A,
            set(a.clone(), "response_type", "token"),
        ),
        (
            "an unregistered scope",
            "invalid_scope",
            CALLBACK_A,
            set(a.clone(), "scope", "openid orders:write"),
        ),
        (
            "a request object",
            "request_not_supported",
            CALLBACK_A,
            set(a.clone(), "request", "eyJhbGciOiJub25lIn0.e30."),
        ),
        (
            "prompt=none, consent needed",
            "consent_required",
            CALLBACK_THIRD,
            set(third.clone(), "prompt", "none"),
        ),
    ];
    for (name, error, uri, params) in errors {
        let page = agent.get(&provider.authorize_url(&params)).await;
        responses.push((name, Some(error), uri, page));
    }
    let consent = agent.get(&provider.authorize_url(&third)).await;
    let form =
        consent.form_with_action("/oauth2/consent").unwrap_or_else(|| panic!("{}", consent.describe()));
    responses.push((
        "consent denied",
        Some("access_denied"),
        CALLBACK_THIRD,
        agent.submit(&consent, &form, &[("decision", "deny")]).await,
    ));
    let consent = agent.get(&provider.authorize_url(&third)).await;
    let form =
        consent.form_with_action("/oauth2/consent").unwrap_or_else(|| panic!("{}", consent.describe()));
    responses.push((
        "consent allowed",
        None,
        CALLBACK_THIRD,
        agent.submit(&consent, &form, &[("decision", "allow")]).await,
    ));

    let mut failures = Vec::new();
    for (name, error, uri, page) in &responses {
        let issuers: Vec<String> = page
            .location_params()
            .into_iter()
            .filter(|(key, _)| key == "iss")
            .map(|(_, value)| value)
            .collect();
        let outcome = (redirect_target(page), page.location_param("error"), page.location_param("state"));
        let expected = (Some((*uri).to_owned()), error.map(str::to_owned), Some("state-value".to_owned()));
        if issuers != [provider.auth.url.clone()]
            || outcome != expected
            || (error.is_none() && page.location_param("code").is_none())
        {
            failures.push(format!(
                "  - {name}: iss {issuers:?}, (target, error, state) {outcome:?}: {}",
                page.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "[RFC 9207] {} of {} responses failed:\n{}",
        failures.len(),
        responses.len(),
        failures.join("\n")
    );
    println!(
        "[RFC 9700 §4.4, RFC 9207 §2: iss in every response] {} cases: all as required",
        responses.len()
    );
}

/// RFC 6749 §4.1.2 ("state ... REQUIRED if the state parameter was present in the client
/// authorization request. The exact value received from the client") and RFC 9700 §4.7.1
/// (`state` carries the client's CSRF token): values of RFC 6749's `VSCHAR`s that need URL
/// encoding (space, `&`, `=`, `+`, `%`, `#`, `?`, `/`, quotes, angle brackets), one that looks
/// already encoded, and a long one come back byte for byte, in a success and in an error
/// response.
#[tokio::test]
async fn state_comes_back_exactly_as_sent() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let long = "0123456789abcdef".repeat(32);
    let states = ["a b&c=d/+%?#\"<>'", "%41%2F%20", "+", "=&=&", " leading and trailing ", long.as_str()];
    let pkce = Pkce::new();
    let mut count = 0;
    for state in states {
        for (kind, params) in [
            ("success", set(request("app-a", CALLBACK_A, &pkce), "state", state)),
            ("error", unset(set(request("app-a", CALLBACK_A, &pkce), "state", state), "code_challenge")),
        ] {
            let page = agent.get(&provider.authorize_url(&params)).await;
            assert!(page.is_redirect(), "{kind}, state {state:?}: {}", page.describe());
            assert_eq!(page.location_param("state").as_deref(), Some(state), "{kind}: {}", page.describe());
            assert_eq!(
                page.location_param("code").is_some(),
                kind == "success",
                "{kind}: {}",
                page.describe()
            );
            count += 1;
        }
    }
    println!("[RFC 6749 §4.1.2, RFC 9700 §4.7.1: state] {count} cases: all as required");
}

/// RFC 6749 §4.1.2 ("if an authorization code is used more than once, the authorization server
/// MUST deny the request and SHOULD revoke ... all tokens previously issued based on that
/// authorization code"), RFC 9700 §4.5, and DESIGN.md: the second redemption is
/// `invalid_grant`, the refresh family issued from the code ends (its refresh token is
/// `invalid_grant`), its `sid` is published in `/v1/revocations`, and userinfo refuses its
/// access token with 401 and a Bearer challenge.
#[tokio::test]
async fn a_code_used_twice_is_refused_and_revokes_what_it_issued() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let pkce = Pkce::new();
    let code = provider.code(&agent, &request("app-a", CALLBACK_A, &pkce)).await;
    let (status, first) = provider.redeem("app-a", &code, CALLBACK_A, &pkce.verifier).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    let sid = claims_of(access)["sid"].as_str().unwrap().to_owned();
    assert_eq!(provider.userinfo(access).await.0, 200, "the control: userinfo before the replay");

    let (status, replay) = provider.redeem("app-a", &code, CALLBACK_A, &pkce.verifier).await;

    assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")), "{replay}");
    assert!(provider.revoked_sessions().await.contains(&sid), "the code's refresh family {sid} is published");
    let (status, challenge) = provider.userinfo(access).await;
    assert_eq!(status, 401, "userinfo with the first access token");
    assert!(challenge.is_some_and(|challenge| challenge.starts_with("Bearer")), "an RFC 6750 challenge");
    let (status, refreshed) = provider
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
                ("client_id", "app-a"),
            ],
            false,
        )
        .await;
    assert_eq!((status, refreshed["error"].as_str()), (400, Some("invalid_grant")), "{refreshed}");
    println!("[RFC 6749 §4.1.2, RFC 9700 §4.5: code replay] 4 cases: all as required");
}

/// RFC 6749 §4.1.2 ("the client MUST NOT use the authorization code more than once") under a
/// race: two redemptions of one code at the same moment (the client and an attacker who
/// intercepted it) get exactly one token response; the other is `invalid_grant`.
#[tokio::test]
async fn a_code_redeemed_twice_at_once_succeeds_only_once() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let pkce = Pkce::new();
    let code = provider.code(&agent, &request("app-a", CALLBACK_A, &pkce)).await;

    let (a, b) = tokio::join!(
        provider.redeem("app-a", &code, CALLBACK_A, &pkce.verifier),
        provider.redeem("app-a", &code, CALLBACK_A, &pkce.verifier)
    );

    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "exactly one of two concurrent redemptions succeeds: {a:?} {b:?}");
    let loser = if a.0 == 400 { &a.1 } else { &b.1 };
    assert_eq!(loser["error"], "invalid_grant");
    println!("[RFC 6749 §4.1.2: concurrent code redemption] 1 case: as required");
}

/// OpenID Connect Core §3.1.2.1 (`nonce` "associate[s] a Client session with an ID Token, and to
/// mitigate replay attacks") and §3.1.3.7 step 11, RFC 9700 §4.5.3 (nonce as code-injection
/// defence): the nonce is bound to its code. Two authorizations in one browser with different
/// nonces, redeemed in the opposite order, each give an id_token with its own nonce; one
/// without a nonce gives an id_token without one.
#[tokio::test]
async fn each_id_token_carries_the_nonce_of_its_own_authorization() {
    let provider = Provider::start().await;
    let agent = provider.logged_in().await;
    let (first, second, none) = (Pkce::new(), Pkce::new(), Pkce::new());
    let first_code =
        provider.code(&agent, &set(request("app-a", CALLBACK_A, &first), "nonce", "first-nonce")).await;
    let second_code =
        provider.code(&agent, &set(request("app-a", CALLBACK_A, &second), "nonce", "second-nonce")).await;
    let none_code = provider.code(&agent, &unset(request("app-a", CALLBACK_A, &none), "nonce")).await;

    let mut nonces = Vec::new();
    for (code, pkce) in [(&second_code, &second), (&first_code, &first), (&none_code, &none)] {
        let (status, body) = provider.redeem("app-a", code, CALLBACK_A, &pkce.verifier).await;
        assert_eq!(status, 200, "{body}");
        nonces.push(claims_of(body["id_token"].as_str().unwrap()).get("nonce").cloned());
    }

    assert_eq!(
        nonces,
        [Some(Value::from("second-nonce")), Some(Value::from("first-nonce")), None],
        "(second, first, none)"
    );
    println!("[OpenID Connect Core §3.1.2.1, RFC 9700 §4.5.3: nonce] 3 cases: all as required");
}

/// Session fixation (OWASP ASVS 5.0 7.2.4: "a new session token is generated on user
/// authentication"; the OWASP Session Management Cheat Sheet; DESIGN.md: "a successful login
/// always creates a NEW browser session id"). A session cookie planted in the victim's browser
/// before login (a value the attacker made up, or the attacker's own live session) is replaced
/// by the login, and the planted session does not become the victim's: the attacker's cookie
/// authorizes as the attacker or not at all. A second login (`prompt=login`) issues yet another
/// value.
#[tokio::test]
async fn a_session_cookie_planted_before_login_is_replaced_and_never_becomes_the_victims() {
    let provider = Provider::start().await;
    let name = provider.session_cookie();
    let url = provider.auth.url.clone();
    assert_eq!(provider.auth.register("mallory", "mallory-password").await, 201);
    let attacker = provider.logged_in_as("mallory", "mallory-password").await;
    let attacker_session = cookie_value(&attacker, &url, &name).expect("the attacker's session cookie");
    let attacker_sub = provider.session_subject(&attacker).await.expect("the attacker's session");

    let mut seen = vec![attacker_session.clone()];
    for (planted_name, planted) in [
        ("a made-up value", "planted-session-value".to_owned()),
        ("the attacker's own session", attacker_session.clone()),
    ] {
        let victim = BrowserAgent::new();
        let page = victim.get(&provider.authorize_url(&request("app-a", CALLBACK_A, &Pkce::new()))).await;
        let form = login_form(&page);
        let jar = victim.cookies_for(&url).expect("the login page set the CSRF cookie");
        // A Cookie header set by hand replaces the jar's for this request; what the response
        // sets lands in the jar.
        let response = victim
            .client()
            .post(form.target(&page.url))
            .header(COOKIE, format!("{jar}; {name}={planted}"))
            .form(&form.fields_with(&[("username", USERNAME), ("password", PASSWORD)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{planted_name}");
        let new_cookie = set_cookie_named(response.headers(), &name)
            .unwrap_or_else(|| panic!("{planted_name}: no new session cookie"));
        let after = cookie_value(&victim, &url, &name).expect("the victim's session cookie");
        assert!(new_cookie.starts_with(&format!("{name}={after}")), "{planted_name}: {new_cookie}");
        assert_ne!(after, planted, "{planted_name}: the planted value survived the login");
        assert!(!seen.contains(&after), "{planted_name}: a value seen before");
        seen.push(after.clone());

        let victim_sub = provider.session_subject(&victim).await.expect("the victim's session");
        assert_ne!(victim_sub, attacker_sub, "{planted_name}");
        // The planted session may live on as the attacker's, or have been ended by the login;
        // it must never be the victim's.
        let attacker_now = provider.session_subject(&attacker).await;
        assert_ne!(
            attacker_now,
            Some(victim_sub),
            "{planted_name}: the attacker's cookie became the victim's session"
        );

        let again = authorize_and_login(
            &victim,
            &provider.authorize_url(&set(request("app-a", CALLBACK_A, &Pkce::new()), "prompt", "login")),
            USERNAME,
            PASSWORD,
        )
        .await;
        assert_eq!(again.status, 302, "{planted_name}, prompt=login: {}", again.describe());
        let relogged = cookie_value(&victim, &url, &name).unwrap();
        assert!(!seen.contains(&relogged), "{planted_name}: prompt=login kept the session id {relogged}");
        seen.push(relogged);
    }
    println!("[ASVS 7.2.4: session fixation] 6 cases: all as required");
}

/// The browser-session cookie (DESIGN.md "A login creates a browser session"; RFC 6265bis
/// §4.1.2.5-7, §4.1.3.2; ASVS 5.0 3.3.1, 3.3.2, 3.3.4): `HttpOnly`, `SameSite=Lax`, `Path=/`,
/// no `Domain`, `Max-Age` the SSO lifetime (8 h by default), named `authsrv_<host>_<port>`
/// under a plain-http issuer. With an https `ISSUER` (served here over loopback http, as
/// behind a TLS-terminating proxy) the cookie is `__Host-authsrv_<host>_<port>` with `Secure`;
/// so is the CSRF cookie, as the prefix requires.
#[tokio::test]
async fn the_session_cookie_is_httponly_samesite_lax_and_host_prefixed_under_https() {
    let mut count = 0;
    for https in [false, true] {
        let provider = if https {
            Provider::start_with(|config| config.issuer = "https://auth.example.test".into()).await
        } else {
            Provider::start().await
        };
        let issuer = if https { "https://auth.example.test".to_owned() } else { provider.auth.url.clone() };
        let name = format!("{}{}", if https { "__Host-" } else { "" }, default_cookie_name(&issuer));
        let agent = BrowserAgent::new();
        let authorize = provider.authorize_url(&request("app-a", CALLBACK_A, &Pkce::new()));
        let login_page = agent.get(&authorize).await;
        let csrf = set_cookie_named(&login_page.headers, &format!("{name}_csrf"));
        assert!(
            csrf.is_some(),
            "https {https}: the CSRF cookie {name}_csrf, got {:?}",
            set_cookies(&login_page.headers)
        );
        let redirect = agent
            .submit(&login_page, &login_form(&login_page), &[("username", USERNAME), ("password", PASSWORD)])
            .await;
        assert_eq!(redirect.status, 302, "https {https}: {}", redirect.describe());

        let session = set_cookie_named(&redirect.headers, &name).unwrap_or_else(|| {
            panic!("https {https}: no cookie {name}: {:?}", set_cookies(&redirect.headers))
        });
        let attributes = cookie_attributes(&session);
        let has = |attribute: &str, value: &str| {
            attributes.iter().any(|(key, found)| key == attribute && found.eq_ignore_ascii_case(value))
        };
        assert!(has("httponly", ""), "https {https}: {session}");
        assert!(has("samesite", "lax"), "https {https}: {session}");
        assert!(has("path", "/"), "https {https}: {session}");
        assert!(has("max-age", "28800"), "https {https}: {session}");
        assert!(!attributes.iter().any(|(key, _)| key == "domain"), "https {https}: {session}");
        if https {
            for cookie in [&session, csrf.as_ref().unwrap()] {
                let attributes = cookie_attributes(cookie);
                assert!(
                    attributes.iter().any(|(key, _)| key == "secure"),
                    "a __Host- cookie needs Secure: {cookie}"
                );
                assert!(attributes.iter().any(|(key, value)| key == "path" && value == "/"), "{cookie}");
                assert!(!attributes.iter().any(|(key, _)| key == "domain"), "{cookie}");
            }
            assert_eq!(redirect.location_param("iss").as_deref(), Some("https://auth.example.test"));
        }
        count += 1;
    }
    println!("[RFC 6265bis §4.1.3.2, ASVS 3.3.1-3.3.4: session cookie] {count} cases: all as required");
}
