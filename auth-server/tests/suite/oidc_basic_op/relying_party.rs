//! The relying party side of the Basic OP checks: an `openidconnect` client discovered from the
//! server under test, the requests it builds, what it verifies, and the assertions the checks
//! share.
use crate::common;

use auth_server::clients::Registration;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, decode_part};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken,
    CoreIdTokenClaims, CoreResponseType, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, AuthorizationRequest, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, RequestTokenError, StandardErrorResponse,
    SubjectIdentifier, TokenResponse as _,
};
use reqwest::Url;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use testkit::TestDatabase;
use testkit::browser::{BrowserAgent, Page, authorize_and_login};

/// The relying party's callback. Nothing listens there: the browser stops at the 302.
pub(super) const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Where the relying party wants the browser back after logout.
pub(super) const LOGGED_OUT_URI: &str = "http://127.0.0.1:9/logged-out";
pub(super) const USERNAME: &str = "anna";
pub(super) const PASSWORD: &str = "anna-password";

/// The relying party as discovery builds it: authorization endpoint set, token and userinfo
/// endpoints "maybe" (discovery need not list them).
pub(super) type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;
pub(super) type AuthRequest<'a> = AuthorizationRequest<'a, CoreAuthDisplay, CoreAuthPrompt, CoreResponseType>;
pub(super) type TokenError =
    RequestTokenError<HttpClientError<reqwest::Error>, StandardErrorResponse<CoreErrorResponseType>>;

/// The provider under test, with one registered user, and the relying parties' HTTP client.
pub(super) struct Op {
    pub(super) app: TestApp,
    pub(super) http: reqwest::Client,
}

impl Op {
    pub(super) async fn start(database: TestDatabase) -> Self {
        Self::with(TestApp::start(database).await).await
    }

    /// A provider whose clock moves only when the test says so.
    pub(super) async fn start_with_clock(database: TestDatabase) -> Self {
        Self::with(TestApp::start_with_clock(database, |_| {}).await).await
    }

    async fn with(app: TestApp) -> Self {
        assert_eq!(app.register(USERNAME, PASSWORD).await.status(), 201);
        // openidconnect requires a client that does not follow redirects (SSRF).
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, http }
    }

    pub(super) fn issuer(&self) -> IssuerUrl {
        IssuerUrl::new(self.app.url.clone()).unwrap()
    }

    pub(super) async fn discover(&self) -> ProviderMetadataWithLogout {
        ProviderMetadataWithLogout::discover_async(self.issuer(), &self.http)
            .await
            .unwrap_or_else(|error| panic!("discovery failed: {error:?}"))
    }

    /// Registers `client_id` as `clients create` does (which publishes a key of its id_token
    /// algorithm), then builds its relying party from discovery. The relying party keeps the key
    /// set it discovered: openidconnect never fetches it again, not even for an unknown `kid`.
    pub(super) async fn relying_party(&self, client_id: &str, registration: Registration) -> RelyingParty {
        let secret = auth_server::clients::generate_secret();
        auth_server::cli::create_client(&self.app.state, client_id, &secret, &registration).await.unwrap();
        let metadata = self.discover().await;
        let client_secret =
            (!registration.public).then(|| ClientSecret::new(secret.expose_secret().to_owned()));
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.to_owned()),
            client_secret,
        )
        .set_redirect_uri(RedirectUrl::new(registration.redirect_uris[0].clone()).unwrap());
        RelyingParty {
            client,
            metadata,
            http: self.http.clone(),
            issuer: self.app.url.clone(),
            client_id: client_id.to_owned(),
        }
    }

    /// A public, first-party client (an SPA): no secret, no consent page.
    pub(super) async fn spa(&self) -> RelyingParty {
        self.relying_party("spa", public_registration()).await
    }

    /// A confidential client that is not first-party (a server-side web app): it has a secret
    /// and its users see the consent page.
    pub(super) async fn web_app(&self) -> RelyingParty {
        self.relying_party("web", confidential_registration()).await
    }

    /// The browser-session cookie's name for this issuer.
    pub(super) fn session_cookie(&self) -> String {
        self.app.state.config.session_cookie_name()
    }

    pub(super) async fn revoked_sessions(&self) -> Vec<shared_auth::revocation::RevokedEntry> {
        self.app.revocation_list().await.sessions
    }
}

pub(super) fn public_registration() -> Registration {
    Registration {
        scopes: vec!["profile".into()],
        redirect_uris: vec![REDIRECT_URI.into()],
        post_logout_redirect_uris: vec![LOGGED_OUT_URI.into()],
        public: true,
        first_party: true,
        ..Registration::default()
    }
}

pub(super) fn confidential_registration() -> Registration {
    Registration {
        scopes: vec!["profile".into()],
        redirect_uris: vec![REDIRECT_URI.into()],
        post_logout_redirect_uris: vec![LOGGED_OUT_URI.into()],
        ..Registration::default()
    }
}

/// One relying party (an `openidconnect` client) of the provider.
pub(super) struct RelyingParty {
    pub(super) client: RpClient,
    pub(super) metadata: ProviderMetadataWithLogout,
    pub(super) http: reqwest::Client,
    pub(super) issuer: String,
    pub(super) client_id: String,
}

/// An authorization request the relying party built and must remember.
pub(super) struct Pending {
    pub(super) url: Url,
    pub(super) state: CsrfToken,
    pub(super) nonce: Nonce,
    pub(super) verifier: PkceCodeVerifier,
}

impl Pending {
    pub(super) fn state(&self) -> &str {
        self.state.secret()
    }

    /// Its URL with `changes` applied: `Some` sets a parameter (replacing it), `None` removes it.
    pub(super) fn url_with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(String, String)> = self.url.query_pairs().into_owned().collect();
        for (name, value) in changes {
            pairs.retain(|(key, _)| key != name);
            if let Some(value) = value {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        let mut url = self.url.clone();
        url.query_pairs_mut().clear().extend_pairs(&pairs);
        url.into()
    }

    /// Its parameters, for a form POST to the authorization endpoint.
    pub(super) fn parameters(&self) -> Vec<(String, String)> {
        self.url.query_pairs().into_owned().collect()
    }

    pub(super) fn endpoint(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.into()
    }
}

/// What a completed sign-in leaves the relying party with.
pub(super) struct SignedIn {
    pub(super) code: String,
    pub(super) tokens: CoreTokenResponse,
    pub(super) claims: CoreIdTokenClaims,
}

impl SignedIn {
    pub(super) fn access_token(&self) -> &str {
        self.tokens.access_token().secret()
    }

    pub(super) fn refresh_token(&self) -> &RefreshToken {
        self.tokens.refresh_token().expect("the code grant issues a refresh token")
    }

    pub(super) fn id_token(&self) -> &CoreIdToken {
        self.tokens.id_token().expect("an id_token, since openid was granted")
    }

    /// The compact id_token.
    pub(super) fn raw_id_token(&self) -> String {
        self.id_token().to_string()
    }

    /// The id_token's `sid`: the browser session.
    pub(super) fn browser_sid(&self) -> String {
        decode_part(&self.raw_id_token(), 1)["sid"].as_str().expect("id_token sid").to_owned()
    }

    /// The access token's `sid`: the refresh family this authorization started.
    pub(super) fn family_sid(&self) -> String {
        decode_part(self.access_token(), 1)["sid"].as_str().expect("access token sid").to_owned()
    }

    pub(super) fn auth_time(&self) -> i64 {
        self.claims.auth_time().expect("id_token auth_time").timestamp()
    }
}

impl RelyingParty {
    /// Builds an authorization request the way the crate does (code flow, PKCE S256, random
    /// state and nonce, scope `openid`), adjusted by `customize`.
    pub(super) fn authorization(
        &self,
        customize: impl FnOnce(AuthRequest<'_>) -> AuthRequest<'_>,
    ) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        let (url, state, nonce) = customize(request).url();
        Pending { url, state, nonce, verifier }
    }

    /// Reads the code from the redirect to the client, checking `state` and `iss` (RFC 9207).
    pub(super) fn code_from(&self, redirect: &Page, pending: &Pending) -> String {
        assert_eq!(redirect.status, 302, "{}", redirect.describe());
        let location = redirect.location().unwrap();
        assert_to_callback(&location, self.client.redirect_uri().unwrap().as_str());
        assert_eq!(redirect.location_param("error"), None, "{location}");
        assert_eq!(redirect.location_param("state").as_deref(), Some(pending.state()), "{location}");
        assert_eq!(redirect.location_param("iss").as_deref(), Some(self.issuer.as_str()), "{location}");
        redirect.location_param("code").unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// Authorize (logging in and consenting as needed) and return the code.
    pub(super) async fn authorize_code(
        &self,
        agent: &BrowserAgent,
        customize: impl FnOnce(AuthRequest<'_>) -> AuthRequest<'_>,
    ) -> (String, Pending) {
        let pending = self.authorization(customize);
        let redirect = authorize_and_login(agent, pending.url.as_str(), USERNAME, PASSWORD).await;
        (self.code_from(&redirect, &pending), pending)
    }

    pub(super) async fn exchange(
        &self,
        code: &str,
        verifier: &PkceCodeVerifier,
    ) -> Result<CoreTokenResponse, TokenError> {
        self.client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .unwrap()
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
            .request_async(&self.http)
            .await
    }

    /// The whole relying-party side: authorize, redeem the code, verify the id_token (signature,
    /// iss, aud, exp, nonce) and its `at_hash`.
    pub(super) async fn sign_in(
        &self,
        agent: &BrowserAgent,
        customize: impl FnOnce(AuthRequest<'_>) -> AuthRequest<'_>,
    ) -> SignedIn {
        let (code, pending) = self.authorize_code(agent, customize).await;
        self.redeem(code, &pending).await
    }

    pub(super) async fn redeem(&self, code: String, pending: &Pending) -> SignedIn {
        let tokens = self
            .exchange(&code, &pending.verifier)
            .await
            .unwrap_or_else(|error| panic!("code exchange failed: {error:?}"));
        let claims = self.verified_claims(&tokens, &pending.nonce);
        SignedIn { code, tokens, claims }
    }

    /// The id_token's claims as the crate verifies them, after checking `at_hash` the way the
    /// crate's documentation does (`AccessTokenHash::from_token`).
    pub(super) fn verified_claims(&self, tokens: &CoreTokenResponse, nonce: &Nonce) -> CoreIdTokenClaims {
        let id_token = tokens.id_token().expect("an id_token, since openid was granted");
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, nonce)
            .unwrap_or_else(|error| panic!("the id_token does not verify: {error:?}"))
            .clone();
        let expected = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims.access_token_hash().map(|hash| hash.as_str()),
            Some(expected.as_str()),
            "at_hash is not what openidconnect computes for {:?}",
            id_token.signing_alg()
        );
        claims
    }

    pub(super) async fn refresh(
        &self,
        refresh_token: &RefreshToken,
    ) -> Result<CoreTokenResponse, TokenError> {
        self.client.exchange_refresh_token(refresh_token).unwrap().request_async(&self.http).await
    }

    pub(super) fn userinfo_url(&self) -> String {
        self.metadata.userinfo_endpoint().expect("userinfo_endpoint in discovery").url().to_string()
    }

    /// The crate's own userinfo call: a GET with the bearer header, `sub` checked.
    pub(super) async fn userinfo(&self, signed_in: &SignedIn) -> CoreUserInfoClaims {
        let subject = SubjectIdentifier::new(signed_in.claims.subject().to_string());
        self.client
            .user_info(AccessToken::new(signed_in.access_token().to_owned()), Some(subject))
            .unwrap()
            .request_async(&self.http)
            .await
            .unwrap_or_else(|error| panic!("userinfo failed: {error:?}"))
    }

    /// A GET to userinfo with `token` as bearer: what a relying party sees of a dead token.
    pub(super) async fn userinfo_status(&self, token: &str) -> u16 {
        self.http.get(self.userinfo_url()).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    /// The end-session URL, built by the crate.
    pub(super) fn logout_url(
        &self,
        hint: Option<&CoreIdToken>,
        post_logout: Option<&str>,
        state: Option<&str>,
    ) -> String {
        let endpoint =
            self.metadata.additional_metadata().end_session_endpoint.clone().expect("end_session_endpoint");
        let mut request = LogoutRequest::from(endpoint);
        if let Some(hint) = hint {
            request = request.set_id_token_hint(hint);
        }
        if let Some(uri) = post_logout {
            request =
                request.set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(uri.to_owned()).unwrap());
        }
        if let Some(state) = state {
            request = request.set_state(CsrfToken::new(state.to_owned()));
        }
        request.http_get_url().into()
    }

    /// Whether the browser still has a session here: `prompt=none` answers with a code, or
    /// with `login_required`.
    pub(super) async fn has_session(&self, agent: &BrowserAgent) -> bool {
        let pending = self.authorization(|request| request.add_prompt(CoreAuthPrompt::None));
        let redirect = agent.get(pending.url.as_str()).await;
        assert_eq!(redirect.status, 302, "prompt=none must redirect: {}", redirect.describe());
        match redirect.location_param("error").as_deref() {
            None => {
                self.code_from(&redirect, &pending);
                true
            }
            Some("login_required") => false,
            Some(other) => panic!("prompt=none answered {other}: {}", redirect.describe()),
        }
    }
}

/// The error code of a failed token request.
pub(super) fn token_error(result: Result<CoreTokenResponse, TokenError>) -> String {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().as_ref().to_owned(),
        Err(other) => panic!("expected an OAuth error response, got {other:?}"),
        Ok(_) => panic!("expected an error, the token request succeeded"),
    }
}

/// An authorization error sent back to the client (RFC 6749 §4.1.2.1, RFC 9207): to its
/// callback, with `error`, `error_description`, the request's `state` and `iss`.
pub(super) fn assert_error_redirect(redirect: &Page, pending: &Pending, issuer: &str, error: &str) {
    assert_eq!(redirect.status, 302, "{}", redirect.describe());
    let location = redirect.location().unwrap();
    assert_to_callback(&location, REDIRECT_URI);
    assert_eq!(redirect.location_param("error").as_deref(), Some(error), "{location}");
    assert!(redirect.location_param("error_description").is_some(), "no error_description: {location}");
    assert_eq!(redirect.location_param("state").as_deref(), Some(pending.state()), "{location}");
    assert_eq!(redirect.location_param("iss").as_deref(), Some(issuer), "{location}");
    assert_eq!(redirect.location_param("code"), None, "{location}");
}

/// `location` is the registered `callback` plus parameters: same scheme, host, port and path,
/// and the callback's own query kept (OpenID Core §3.1.2.5, RFC 6749 §3.1.2).
fn assert_to_callback(location: &str, callback: &str) {
    let target = Url::parse(location).unwrap_or_else(|error| panic!("Location {location:?}: {error}"));
    let callback = Url::parse(callback).unwrap();
    assert_eq!(
        (target.scheme(), target.host_str(), target.port(), target.path()),
        (callback.scheme(), callback.host_str(), callback.port(), callback.path()),
        "not to the client's callback: {location}"
    );
    let sent: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    for pair in callback.query_pairs().into_owned() {
        assert!(sent.contains(&pair), "the callback's own query {pair:?} was dropped: {location}");
    }
}

/// The headers every page of the auth server carries (DESIGN.md "Pages").
pub(super) fn assert_page_headers(page: &Page) {
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("text/html; charset=utf-8"),
        "{}",
        page.describe()
    );
    assert!(
        page.header("cache-control").is_some_and(|value| value.contains("no-store")),
        "{}",
        page.describe()
    );
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(
        page.header("content-security-policy").is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
        "{:?}",
        page.header("content-security-policy")
    );
    assert_eq!(page.header("referrer-policy").as_deref(), Some("no-referrer"));
}

/// The hosted login page itself, not a redirect.
pub(super) fn assert_login_page(page: &Page) {
    assert_eq!(page.status, 200, "expected the login page: {}", page.describe());
    let form = page
        .form_with_action("/oauth2/login")
        .unwrap_or_else(|| panic!("no login form: {}", page.describe()));
    assert_eq!(form.method, "post");
    assert_eq!(form.input("password").map(|input| input.kind.as_str()), Some("password"));
    assert!(form.input("username").is_some());
    assert!(form.field("csrf_token").is_some_and(|token| !token.is_empty()));
    assert_page_headers(page);
}

/// The "logged out" page: no redirect and no further form.
pub(super) fn assert_logged_out_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.describe());
    assert_eq!(page.location(), None);
    assert!(page.body.to_lowercase().contains("logged out"), "{}", page.describe());
    assert!(
        page.form_with_action("/oauth2/logout").is_none(),
        "a confirmation, not a logout: {}",
        page.describe()
    );
    assert_page_headers(page);
}

/// `token` with its header replaced and its signature removed (JWS `alg: none`).
pub(super) fn unsigned(token: &str) -> String {
    let header = decode_part(token, 0);
    let forged = json!({"alg": "none", "typ": header["typ"], "kid": header["kid"]});
    let payload = token.split('.').nth(1).unwrap();
    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(forged.to_string()))
}

/// `token` with one claim changed and the original signature kept.
pub(super) fn with_claim(token: &str, name: &str, value: Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = decode_part(token, 1);
    payload[name] = value;
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

pub(super) fn left_half_b64(digest: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}
