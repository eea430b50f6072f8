//! OpenID Connect Core 1.0 §3.1.3.7 (id_token validation) and §16 (security considerations)
//! for the auth server as a relying party ("Login with …", issue 15), plus RFC 8725 §3.1 for
//! the upstream's algorithms: the auth server in-process, the upstream a fake OpenID provider
//! whose id_tokens the tests forge byte by byte.
//!
//! Each forged answer must end in an error page and leave the account table as it was. Accounts
//! link by (provider, issuer, `sub`) only: a colliding upstream username or email never reaches
//! another account, and neither does a provider name registered again for another issuer.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use reqwest::Url;
use serde_json::{Value, json};
use shared_auth::time::unix_now_i64;
use testkit::browser::{BrowserAgent, Page, Pkce};

use super::harness::{AuthApp, KID_EDDSA, b64, sign_json, sign_raw, trusted_jwk, trusted_keys};

/// Our client id at the fake provider.
const CLIENT_AT_PROVIDER: &str = "our-client";
/// The browser client at our server.
const APP: &str = "federation-app";
/// Its redirect URI, on the discard port.
const APP_CALLBACK: &str = "http://127.0.0.1:9/federation-app/callback";

/// A fake OpenID provider: discovery, the trusted EdDSA key, and a token endpoint that answers
/// with whatever id_token the test set last.
#[derive(Clone)]
struct FakeProvider {
    url: String,
    id_token: Arc<Mutex<String>>,
}

impl FakeProvider {
    async fn start() -> Self {
        let id_token = Arc::new(Mutex::new(String::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
        });
        let jwks = json!({"keys": [trusted_jwk(KID_EDDSA)]});
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .route(
                "/token",
                post(|State(id_token): State<Arc<Mutex<String>>>| async move {
                    let id_token = id_token.lock().unwrap().clone();
                    axum::Json(
                        json!({"access_token": "upstream", "token_type": "Bearer", "id_token": id_token}),
                    )
                }),
            )
            .with_state(id_token.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, id_token }
    }

    fn answer_with(&self, id_token: String) {
        *self.id_token.lock().unwrap() = id_token;
    }

    /// Genuine claims of an id_token for our client.
    fn claims(&self, sub: &str, nonce: &str) -> Value {
        let now = unix_now_i64();
        json!({
            "iss": self.url,
            "sub": sub,
            "aud": CLIENT_AT_PROVIDER,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "preferred_username": sub,
        })
    }
}

/// Our server with the fake provider as `fake`.
struct Relying {
    ours: AuthApp,
    provider: FakeProvider,
}

/// A login sent to the provider: its browser, and the `state` and `nonce` it carries.
struct Started {
    agent: BrowserAgent,
    pkce: Pkce,
    state: String,
    nonce: String,
}

impl Relying {
    async fn start() -> Self {
        let ours = AuthApp::start().await;
        let provider = FakeProvider::start().await;
        let registration = auth_server::clients::Registration {
            scopes: vec!["profile:read".into()],
            redirect_uris: vec![APP_CALLBACK.into()],
            public: true,
            first_party: true,
            ..auth_server::clients::Registration::default()
        };
        auth_server::clients::register(
            &ours.state.pool,
            APP,
            &auth_server::clients::generate_secret(),
            &registration,
        )
        .await
        .unwrap();
        let relying = Self { ours, provider };
        relying.register(&relying.provider).await;
        relying
    }

    /// Registers `provider` as `fake`.
    async fn register(&self, provider: &FakeProvider) {
        let new = auth_server::federation::cli::NewProvider {
            name: "fake".into(),
            issuer: provider.url.clone(),
            client_id: CLIENT_AT_PROVIDER.into(),
            display_name: "Fake ID".into(),
            scope: "openid profile".into(),
        };
        let (_, discovery) = auth_server::federation::cli::add(&self.ours.state, &new, None).await.unwrap();
        discovery.unwrap();
    }

    /// Deletes `fake` and registers it again, for `provider`.
    async fn reregister(&self, provider: &FakeProvider) {
        assert!(
            auth_server::store::federation::delete_provider(&self.ours.state.pool, "fake").await.unwrap()
        );
        self.register(provider).await;
    }

    async fn begin(&self) -> Started {
        let pkce = Pkce::new();
        let params = [
            ("response_type", "code"),
            ("client_id", APP),
            ("redirect_uri", APP_CALLBACK),
            ("scope", "openid profile:read"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let start =
            Url::parse_with_params(&format!("{}/federation/fake/start", self.ours.url), &params).unwrap();
        let agent = BrowserAgent::new();
        let page = agent.get(start.as_str()).await;
        assert_eq!(page.status, 302, "{}", page.describe());
        let state = page.location_param("state").unwrap();
        let nonce = page.location_param("nonce").unwrap();
        Started { agent, pkce, state, nonce }
    }

    async fn callback(&self, started: &Started) -> Page {
        let url = Url::parse_with_params(
            &format!("{}/federation/fake/callback", self.ours.url),
            &[("code", "upstream-code"), ("state", started.state.as_str())],
        )
        .unwrap();
        started.agent.get(url.as_str()).await
    }

    /// A whole login whose id_token is `forge(nonce)`: the callback's answer.
    async fn login_with(&self, forge: impl FnOnce(&str) -> String) -> Page {
        self.login_started_with(forge).await.1
    }

    async fn login_started_with(&self, forge: impl FnOnce(&str) -> String) -> (Started, Page) {
        let started = self.begin().await;
        self.provider.answer_with(forge(&started.nonce));
        let page = self.callback(&started).await;
        (started, page)
    }

    /// A genuine login of the upstream user `sub` named `username`: the local account's `sub`.
    async fn genuine_login(&self, sub: &str, username: &str, email: Option<&str>) -> String {
        let (started, page) = self
            .login_started_with(|nonce| {
                let mut claims = self.provider.claims(sub, nonce);
                claims["preferred_username"] = json!(username);
                if let Some(email) = email {
                    claims["email"] = json!(email);
                    claims["email_verified"] = json!(true);
                }
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            })
            .await;
        assert_eq!(page.status, 200, "{}", page.describe());
        assert!(page.next_url().unwrap().starts_with(APP_CALLBACK));
        let code = page.next_param("code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", started.pkce.verifier.as_str()),
            ("client_id", APP),
        ];
        let tokens: Value = self.ours.post_form("/oauth2/token", &form).await.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}"));
        let payload = access.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["idp"], "fake");
        claims["sub"].as_str().unwrap().to_owned()
    }

    async fn accounts(&self) -> i64 {
        testkit::count_rows(&self.ours.state.pool, "users").await
    }

    async fn name_of(&self, user_id: &str) -> String {
        auth_server::store::users::find_by_id(&self.ours.state.pool, user_id).await.unwrap().unwrap().username
    }
}

fn eddsa_header() -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": KID_EDDSA})
}

#[tokio::test]
async fn forged_or_misdirected_id_tokens_get_an_error_page_and_create_no_account() {
    let relying = Relying::start().await;
    let valid = |nonce: &str| relying.provider.claims("forged-user", nonce);
    let public_key = serde_json::to_vec(&trusted_jwk(KID_EDDSA)).unwrap();
    type Forge<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(&str, u16, Forge<'_>)> = vec![
        (
            "an id_token from another issuer (Core §3.1.3.7 step 2)",
            502,
            Box::new(|nonce| {
                let claims = super::harness::with(valid(nonce), "iss", json!("http://127.0.0.1:9"));
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            }),
        ),
        (
            "an id_token for another client (step 3)",
            502,
            Box::new(|nonce| {
                let claims = super::harness::with(valid(nonce), "aud", json!("another-client"));
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            }),
        ),
        (
            "several audiences with azp naming another client (steps 4, 5)",
            502,
            Box::new(|nonce| {
                let claims =
                    super::harness::with(valid(nonce), "aud", json!([CLIENT_AT_PROVIDER, "another"]));
                let claims = super::harness::with(claims, "azp", json!("another"));
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            }),
        ),
        (
            "alg none, unsigned (RFC 8725 §3.1)",
            502,
            Box::new(|nonce| {
                let header = json!({"alg": "none", "typ": "JWT", "kid": KID_EDDSA});
                let claims = serde_json::to_vec(&valid(nonce)).unwrap();
                format!("{}.{}.", b64(serde_json::to_vec(&header).unwrap()), b64(claims))
            }),
        ),
        (
            "HS256 keyed with the provider's public key (RFC 8725 §2.1)",
            502,
            Box::new(|nonce| {
                let header =
                    serde_json::to_vec(&json!({"alg": "HS256", "typ": "JWT", "kid": KID_EDDSA})).unwrap();
                let claims = serde_json::to_vec(&valid(nonce)).unwrap();
                let input = format!("{}.{}", b64(&header), b64(&claims));
                let mac = super::rfc8725::hmac::<sha2::Sha256>(64, &public_key, input.as_bytes());
                format!("{input}.{}", b64(mac))
            }),
        ),
        (
            "signed by a key the provider does not publish",
            502,
            Box::new(|nonce| {
                let key = super::harness::attacker_key(shared_auth::jws::Algorithm::EdDSA);
                let header =
                    serde_json::to_vec(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "attacker"})).unwrap();
                sign_raw(key, &header, &serde_json::to_vec(&valid(nonce)).unwrap())
            }),
        ),
        (
            "expired beyond the leeway (step 9)",
            502,
            Box::new(|nonce| {
                let claims = super::harness::with(valid(nonce), "exp", json!(unix_now_i64() - 3600));
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            }),
        ),
        (
            "another login's nonce: an injected code (step 11)",
            400,
            Box::new(|_| {
                let claims = relying.provider.claims("forged-user", "another-login-nonce");
                sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims)
            }),
        ),
    ];
    let accounts = relying.accounts().await;
    let count = cases.len();

    for (name, status, forge) in cases {
        let page = relying.login_with(forge).await;

        assert_eq!(page.status, status, "{name}: {}", page.describe());
        assert!(page.next_url().is_none(), "{name}: sent on");
        assert!(page.body.contains("Sign-in failed"), "{name}: {}", page.describe());
        assert_eq!(relying.accounts().await, accounts, "{name}: an account was created");
    }
    println!("[OpenID Connect Core §3.1.3.7 / RFC 8725] {count} cases");
}

#[tokio::test]
async fn a_replayed_state_is_refused_and_creates_nothing() {
    let relying = Relying::start().await;
    let started = relying.begin().await;
    let claims = relying.provider.claims("replayed-user", &started.nonce);
    relying.provider.answer_with(sign_json(&trusted_keys().eddsa, &eddsa_header(), &claims));
    assert!(relying.callback(&started).await.next_param("code").is_some());
    let accounts = relying.accounts().await;

    let replay = relying.callback(&started).await;

    assert_eq!(replay.status, 400, "{}", replay.describe());
    assert!(replay.body.contains("already been used"), "{}", replay.describe());
    assert_eq!(relying.accounts().await, accounts);
}

#[tokio::test]
async fn a_colliding_upstream_username_or_email_never_reaches_another_account() {
    let relying = Relying::start().await;
    assert_eq!(relying.ours.register("victim", "victim-password").await, 201);
    let local_victim = auth_server::store::users::find_by_name(&relying.ours.state.pool, "victim")
        .await
        .unwrap()
        .unwrap()
        .id;

    // An upstream user who picked the local victim's name and email.
    let attacker = relying.genuine_login("attacker-sub", "victim", Some("victim@example.com")).await;
    // A second upstream user with the same upstream username, another sub.
    let second = relying.genuine_login("second-sub", "victim", None).await;
    // The first upstream user again.
    let attacker_again = relying.genuine_login("attacker-sub", "someone-else-now", None).await;

    assert_ne!(attacker, local_victim, "linked by (provider, sub), never by username or email");
    assert_eq!(relying.name_of(&attacker).await, "fake:victim");
    assert_ne!(second, attacker, "a colliding upstream username gets its own account");
    assert_eq!(relying.name_of(&second).await, "fake:victim-2");
    assert_eq!(attacker_again, attacker, "the same sub finds the same account whatever its name now");
    let takeover = relying.ours.login("fake:victim", "victim-password").await;
    assert_eq!(takeover.status(), 401, "no password login into a federated account");
}

/// OpenID Connect Core §2: `sub` is unique only within its issuer. A provider name deleted and
/// added again for another issuer must not hand that issuer's users the accounts of the first
/// one's, even for the same `sub`; added again for the first issuer, it finds them.
#[tokio::test]
async fn a_provider_name_registered_again_for_another_issuer_never_reaches_the_first_ones_accounts() {
    let mut relying = Relying::start().await;
    let first = relying.provider.clone();
    let original = relying.genuine_login("shared-sub", "alice", None).await;

    let other = FakeProvider::start().await;
    relying.reregister(&other).await;
    relying.provider = other;
    let at_the_other_issuer = relying.genuine_login("shared-sub", "alice", None).await;

    relying.reregister(&first).await;
    relying.provider = first;
    let back_at_the_first = relying.genuine_login("shared-sub", "alice", None).await;

    assert_ne!(at_the_other_issuer, original, "another issuer's sub reached the first issuer's account");
    assert_eq!(relying.name_of(&at_the_other_issuer).await, "fake:alice-2");
    assert_eq!(back_at_the_first, original, "the first issuer's user finds their account again");
}
