//! What every rule module needs: an issuer whose private keys the tests hold, users-service
//! (and orders-service, auth-server) started in-process against it, a token forge that writes
//! header and payload bytes by hand, and one checker that asserts the exact RFC 6750 outcome of
//! a table of cases.
//!
//! The issuer is testkit's `FakeIssuer`, publishing three keys (EdDSA, ES256, RS256) whose
//! private halves this module holds ([`trusted_keys`]), so the tests can sign anything with
//! them: a forged `typ`, a `crit`, a `kid` that names another algorithm's key.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use shared_auth::VerifyError;
use shared_auth::jws::{Algorithm, Jwk, SigningKey, VerifyingKey};
use shared_auth::time::unix_now_i64;
use testkit::{FakeIssuer, TestDatabase};

/// Key ids the trusted issuer publishes.
pub(crate) const KID_EDDSA: &str = "trusted-eddsa";
/// The ES256 key's id.
pub(crate) const KID_ES256: &str = "trusted-es256";
/// The RS256 key's id.
pub(crate) const KID_RS256: &str = "trusted-rs256";

/// The issuer's three private keys, generated once per test process (RSA takes a while).
pub(crate) struct TrustedKeys {
    /// Ed25519, the platform default.
    pub eddsa: SigningKey,
    /// P-256.
    pub es256: SigningKey,
    /// RSA 2048.
    pub rs256: SigningKey,
}

impl TrustedKeys {
    /// The key published under `kid`.
    pub(crate) fn by_kid(&self, kid: &str) -> &SigningKey {
        match kid {
            KID_ES256 => &self.es256,
            KID_RS256 => &self.rs256,
            _ => &self.eddsa,
        }
    }

    /// `(kid, key)` for each published key.
    pub(crate) fn all(&self) -> [(&'static str, &SigningKey); 3] {
        [(KID_EDDSA, &self.eddsa), (KID_ES256, &self.es256), (KID_RS256, &self.rs256)]
    }
}

/// The process-wide trusted keys.
pub(crate) fn trusted_keys() -> &'static TrustedKeys {
    static KEYS: OnceLock<TrustedKeys> = OnceLock::new();
    KEYS.get_or_init(|| TrustedKeys {
        eddsa: SigningKey::generate(Algorithm::EdDSA).unwrap(),
        es256: SigningKey::generate(Algorithm::ES256).unwrap(),
        rs256: SigningKey::generate(Algorithm::RS256).unwrap(),
    })
}

/// A key nobody trusts, for signatures an attacker could make.
pub(crate) fn attacker_key(algorithm: Algorithm) -> &'static SigningKey {
    static EDDSA: OnceLock<SigningKey> = OnceLock::new();
    static ES256: OnceLock<SigningKey> = OnceLock::new();
    static RS256: OnceLock<SigningKey> = OnceLock::new();
    let slot = match algorithm {
        Algorithm::EdDSA => &EDDSA,
        Algorithm::ES256 => &ES256,
        Algorithm::RS256 => &RS256,
    };
    slot.get_or_init(|| SigningKey::generate(algorithm).unwrap())
}

/// The public JWK of a trusted key, exactly as the issuer publishes it.
pub(crate) fn trusted_jwk(kid: &str) -> Jwk {
    trusted_keys().by_kid(kid).verifying_key().to_jwk(kid)
}

/// The public key of a trusted key.
pub(crate) fn trusted_public(kid: &str) -> VerifyingKey {
    trusted_keys().by_kid(kid).verifying_key()
}

/// An issuer on a loopback port publishing the [`trusted_keys`].
pub(crate) async fn trusted_issuer() -> FakeIssuer {
    FakeIssuer::start_publishing(trusted_keys().all().map(|(kid, key)| key.verifying_key().to_jwk(kid))).await
}

/// base64url without padding.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over the exact `header` and `payload` bytes, signed by `key`.
pub(crate) fn sign_raw(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

/// A compact JWS of JSON `header` and `claims`, signed by `key`.
pub(crate) fn sign_json(key: &SigningKey, header: &Value, claims: &Value) -> String {
    sign_raw(key, &serde_json::to_vec(header).unwrap(), &serde_json::to_vec(claims).unwrap())
}

/// The header a genuine access token signed by the trusted key `kid` has.
pub(crate) fn header_for(kid: &str) -> Value {
    let algorithm = trusted_keys().by_kid(kid).algorithm();
    json!({"alg": algorithm.as_str(), "typ": "at+jwt", "kid": kid})
}

/// Genuine claims of a user access token from `issuer` for `audience`.
pub(crate) fn user_claims(issuer: &str, audience: &str) -> Value {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = unix_now_i64();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": [audience],
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": format!("jti-{n}-{now}"),
        "client_id": "platform",
        "scope": "profile:read profile:write orders:read orders:write",
        "roles": [],
        "preferred_username": "alice",
        "sid": "session-1",
    })
}

/// Genuine claims of a client-credentials token.
pub(crate) fn service_claims(issuer: &str, audience: &str, scope: &str) -> Value {
    let mut claims = user_claims(issuer, audience);
    let object = claims.as_object_mut().unwrap();
    object.insert("sub".into(), json!("orders-service"));
    object.insert("client_id".into(), json!("orders-service"));
    object.insert("scope".into(), json!(scope));
    object.remove("sid");
    object.remove("preferred_username");
    claims
}

/// `claims` with `member` set to `value`.
pub(crate) fn with(mut claims: Value, member: &str, value: Value) -> Value {
    claims.as_object_mut().unwrap().insert(member.into(), value);
    claims
}

/// `claims` without `member`.
pub(crate) fn without(mut claims: Value, member: &str) -> Value {
    claims.as_object_mut().unwrap().remove(member);
    claims
}

/// A fresh SQLite database for a service started in-process.
fn storage(database: &TestDatabase) -> (Option<SecretString>, std::path::PathBuf) {
    (Some(SecretString::from(database.url.clone())), database.dir.path().to_path_buf())
}

/// users-service, in-process on a loopback port, trusting the [`trusted_issuer`].
pub(crate) struct UsersApp {
    /// Base URL.
    pub url: String,
    /// The issuer it trusts.
    pub issuer: FakeIssuer,
    /// The router, for `oneshot` calls that skip the socket.
    pub router: Router,
    /// HTTP client.
    pub http: reqwest::Client,
    _database: TestDatabase,
}

impl UsersApp {
    /// Starts users-service with fresh keys loaded, and proves a genuine token is accepted, so
    /// every rejection a test sees is the forgery's doing.
    pub(crate) async fn start() -> Self {
        Self::start_with_max_lifetime(None).await
    }

    /// [`UsersApp::start`] with `TOKEN_MAX_LIFETIME_SECS` set to `seconds` (`None`: the
    /// default, 24 h).
    pub(crate) async fn start_with_max_lifetime(seconds: Option<u32>) -> Self {
        let issuer = trusted_issuer().await;
        let database = TestDatabase::sqlite();
        let testkit::StartedService { url, router, .. } = testkit::start_resource_service(
            &users_service::SERVICE,
            users_service::api,
            &issuer.url,
            &database,
            |config| {
                if let Some(seconds) = seconds {
                    config.auth.token_max_lifetime_secs = seconds.to_string().parse().unwrap();
                }
            },
        )
        .await;
        let app = Self { url, issuer, router, http: reqwest::Client::new(), _database: database };
        for (kid, _) in trusted_keys().all() {
            let outcome = app.send_token(&app.token_signed_by(kid)).await;
            assert_eq!(outcome.status, 200, "control: a genuine {kid} token must be accepted: {outcome:?}");
        }
        app
    }

    /// Genuine claims for this service.
    pub(crate) fn claims(&self) -> Value {
        user_claims(&self.issuer.url, "users-service")
    }

    /// A genuine token signed by the trusted EdDSA key.
    pub(crate) fn token(&self) -> String {
        self.token_signed_by(KID_EDDSA)
    }

    /// A genuine token signed by the trusted key `kid`.
    pub(crate) fn token_signed_by(&self, kid: &str) -> String {
        sign_json(trusted_keys().by_kid(kid), &header_for(kid), &self.claims())
    }

    /// `claims` with a genuine header, signed by the trusted EdDSA key.
    pub(crate) fn sign_claims(&self, claims: &Value) -> String {
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), claims)
    }

    /// Genuine claims under `header`, signed by the trusted EdDSA key.
    pub(crate) fn sign_header(&self, header: &Value) -> String {
        sign_json(&trusted_keys().eddsa, header, &self.claims())
    }

    /// `GET path` with exactly these `Authorization` header values (none, one or several).
    pub(crate) async fn get_with(&self, path: &str, authorization: &[&[u8]]) -> Outcome {
        let mut request = self.http.get(format!("{}{path}", self.url));
        for value in authorization {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        Outcome::read(request.send().await.unwrap()).await
    }

    /// `GET /v1/users/me` with `Authorization: Bearer <token>`.
    pub(crate) async fn send_token(&self, token: &str) -> Outcome {
        self.get_with("/v1/users/me", &[format!("Bearer {token}").as_bytes()]).await
    }
}

/// What came back: the parts of a response the RFC 6750 contract is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// The `WWW-Authenticate` value, if any.
    pub challenge: Option<String>,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
}

impl Outcome {
    /// Reads status and headers.
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        Self {
            status: response.status().as_u16(),
            challenge: header(reqwest::header::WWW_AUTHENTICATE),
            content_type: header(reqwest::header::CONTENT_TYPE),
        }
    }
}

/// The outcome a case must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// 401 `invalid_token` for exactly this reason (the `error_description`).
    Rejected(VerifyError),
    /// 400 `invalid_request`: the `Authorization` header is not `Bearer <b64token>`.
    InvalidRequest,
    /// 401 with a bare `Bearer` challenge: no token was presented.
    NoToken,
    /// 403 `insufficient_scope`.
    InsufficientScope,
    /// 403 with exactly `Bearer error="insufficient_scope", scope="<this scope>"`: the token
    /// lacks a scope the client could ask for, and the challenge names it (RFC 6750 §3).
    ScopeNeeded(&'static str),
    /// 403 with exactly `Bearer error="insufficient_scope"` and no `scope` attribute: what is
    /// missing is a role or a user behind the token, which no scope request can give.
    NotPermitted,
    /// Exactly this status (a success or a 404 past the auth check), never a 5xx.
    Status(u16),
    /// 422 `application/problem+json`: a valid token, a refused value.
    Unprocessable,
    /// 200: accepted (documents what the verifier deliberately tolerates).
    Accepted,
}

impl Expect {
    /// Why `outcome` does not satisfy this expectation, if it does not.
    pub(crate) fn mismatch(self, outcome: &Outcome) -> Option<String> {
        let challenge = outcome.challenge.as_deref().unwrap_or("");
        let problem_json = outcome.content_type.as_deref() == Some("application/problem+json");
        let ok = match self {
            Self::Rejected(reason) => {
                outcome.status == 401
                    && challenge == format!(r#"Bearer error="invalid_token", error_description="{reason}""#)
                    && problem_json
            }
            Self::InvalidRequest => {
                outcome.status == 400 && challenge == r#"Bearer error="invalid_request""# && problem_json
            }
            Self::NoToken => outcome.status == 401 && challenge == "Bearer" && problem_json,
            Self::InsufficientScope => {
                outcome.status == 403
                    && challenge.starts_with(r#"Bearer error="insufficient_scope""#)
                    && problem_json
            }
            Self::ScopeNeeded(scope) => {
                outcome.status == 403
                    && challenge == format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
                    && problem_json
            }
            Self::NotPermitted => {
                outcome.status == 403 && challenge == r#"Bearer error="insufficient_scope""# && problem_json
            }
            Self::Accepted => outcome.status == 200,
            Self::Status(status) => outcome.status == status,
            Self::Unprocessable => outcome.status == 422 && challenge.is_empty() && problem_json,
        };
        let grammar = challenge_follows_rfc6750_grammar(challenge);
        if outcome.status >= 500 {
            Some(format!("server error {outcome:?}"))
        } else if !ok {
            Some(format!("expected {self:?}, got {outcome:?}"))
        } else if !grammar {
            Some(format!("WWW-Authenticate breaks the RFC 6750 §3 grammar: {challenge:?}"))
        } else {
            None
        }
    }
}

/// RFC 6750 §3: `error` and `error_description` values use %x20-21 / %x23-5B / %x5D-7E only
/// (no `"` or `\` inside the quoted string).
fn challenge_follows_rfc6750_grammar(challenge: &str) -> bool {
    let Some(parameters) = challenge.strip_prefix("Bearer") else {
        return challenge.is_empty();
    };
    parameters.split(", ").filter(|part| !part.trim().is_empty()).all(|part| {
        let Some((_, value)) = part.trim().split_once('=') else {
            return false;
        };
        let Some(inner) = value.strip_prefix('"').and_then(|value| value.strip_suffix('"')) else {
            return false;
        };
        inner.bytes().all(|byte| matches!(byte, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    })
}

/// One row of a rule's table: what is sent and what must come back.
pub(crate) struct Case {
    /// Short description, shown on failure.
    pub name: String,
    /// The `Authorization` header values sent (usually one `Bearer <token>`).
    pub authorization: Vec<Vec<u8>>,
    /// Request path (default `/v1/users/me`).
    pub path: &'static str,
    /// Request method (default GET).
    pub method: reqwest::Method,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// The required outcome.
    pub expect: Expect,
}

impl Case {
    /// `Authorization: Bearer <token>` on `GET /v1/users/me`.
    pub(crate) fn token(name: impl Into<String>, token: impl Into<String>, expect: Expect) -> Self {
        Self::header(name, format!("Bearer {}", token.into()).into_bytes(), expect)
    }

    /// `Authorization: <value>` verbatim.
    pub(crate) fn header(name: impl Into<String>, value: impl Into<Vec<u8>>, expect: Expect) -> Self {
        Self {
            name: name.into(),
            authorization: vec![value.into()],
            path: "/v1/users/me",
            method: reqwest::Method::GET,
            body: None,
            expect,
        }
    }

    /// No `Authorization` header, on `path`.
    pub(crate) fn anonymous(name: impl Into<String>, path: &'static str, expect: Expect) -> Self {
        Self { authorization: vec![], ..Self::header(name, Vec::new(), expect).on(path) }
    }

    /// The same request on another path.
    pub(crate) fn on(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }

    /// The same request as `method` with the JSON `body`.
    pub(crate) fn sending(mut self, method: reqwest::Method, body: Value) -> Self {
        self.method = method;
        self.body = Some(body);
        self
    }
}

/// Runs every case against `app`, then fails with the list of every case that went wrong (not
/// just the first). Returns the number of cases, which each rule's test prints.
pub(crate) async fn check(app: &UsersApp, rule: &str, cases: Vec<Case>) -> usize {
    check_at(&app.url, &app.http, rule, cases).await
}

/// [`check`] against the service at `base_url` (orders-service, say).
pub(crate) async fn check_at(base_url: &str, http: &reqwest::Client, rule: &str, cases: Vec<Case>) -> usize {
    let mut failures = Vec::new();
    for case in &cases {
        let mut request = http.request(case.method.clone(), format!("{base_url}{}", case.path));
        for value in &case.authorization {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        if let Some(body) = &case.body {
            request = request.json(body);
        }
        let outcome = Outcome::read(request.send().await.unwrap()).await;
        if let Some(why) = case.expect.mismatch(&outcome) {
            failures.push(format!("  - {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "[{rule}] {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("[{rule}] {} cases: all as required", cases.len());
    cases.len()
}

/// The auth server in-process on a loopback port, with a fresh database and cheap Argon2 unless
/// a test asks otherwise.
pub(crate) struct AuthApp {
    /// Base URL, also the issuer.
    pub url: String,
    /// The router, for `oneshot` calls.
    pub router: Router,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The server's state.
    pub state: auth_server::state::AppState,
    _database: TestDatabase,
}

impl AuthApp {
    /// Starts with Argon2 at 1 MiB × 1 iteration (tests hash many passwords).
    pub(crate) async fn start() -> Self {
        Self::start_with(|config| {
            config.argon2_memory_kib = 1024;
            config.argon2_iterations = 1;
        })
        .await
    }

    /// Starts with the configuration adjusted by `adjust`.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut auth_server::config::Config)) -> Self {
        let database = TestDatabase::sqlite();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = auth_server::config::Cli::parse_from(["auth-server"]).config;
        (config.storage.database_url, config.storage.data_dir) = storage(&database);
        config.issuer = url.clone();
        adjust(&mut config);
        let state = auth_server::build_state(config).await.unwrap();
        let router = auth_server::router(state.clone());
        let served = router.clone();
        tokio::spawn(async move {
            let service = served.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).await.unwrap()
        });
        Self { url, router, http: reqwest::Client::new(), state, _database: database }
    }

    /// POST JSON.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).json(body).send().await.unwrap()
    }

    /// POST a form.
    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).form(form).send().await.unwrap()
    }

    /// `POST /v1/users`; returns the status.
    pub(crate) async fn register(&self, username: &str, password: &str) -> u16 {
        self.post_json("/v1/users", &json!({"username": username, "password": password}))
            .await
            .status()
            .as_u16()
    }

    /// `POST /v1/auth/login`.
    pub(crate) async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json("/v1/auth/login", &json!({"username": username, "password": password})).await
    }

    /// Registers and logs in; returns the token response.
    pub(crate) async fn registered_login(&self, username: &str, password: &str) -> Value {
        assert_eq!(self.register(username, password).await, 201);
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// orders-service in-process against the [`trusted_issuer`], without a users-service (orders
/// are created without a customer name).
pub(crate) struct OrdersApp {
    /// Base URL.
    pub url: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The router, for `oneshot` calls.
    pub router: Router,
    /// The issuer it trusts.
    pub issuer: FakeIssuer,
    _database: TestDatabase,
}

impl OrdersApp {
    /// Starts orders-service with keys loaded.
    pub(crate) async fn start() -> Self {
        let issuer = trusted_issuer().await;
        let database = TestDatabase::sqlite();
        let started = testkit::start_resource_service(
            &orders_service::SERVICE,
            orders_service::api,
            &issuer.url,
            &database,
            |config| {
                config.service.users_service_url = "http://127.0.0.1:9".into();
                config.service.client_secret = None;
            },
        )
        .await;
        Self {
            url: started.url,
            http: reqwest::Client::new(),
            router: started.router,
            issuer,
            _database: database,
        }
    }

    /// A genuine user token for orders-service.
    pub(crate) fn token(&self) -> String {
        self.sign_claims(&self.claims())
    }

    /// Genuine user claims for orders-service.
    pub(crate) fn claims(&self) -> Value {
        user_claims(&self.issuer.url, "orders-service")
    }

    /// `claims` with a genuine header, signed by the trusted EdDSA key.
    pub(crate) fn sign_claims(&self, claims: &Value) -> String {
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), claims)
    }
}

/// Sends `request` through `router` without a socket; returns status, content type and body.
pub(crate) async fn oneshot(
    router: &Router,
    request: axum::http::Request<axum::body::Body>,
) -> (u16, Option<String>, Vec<u8>) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, content_type, body)
}
