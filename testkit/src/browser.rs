//! A scripted browser for the hosted login: its own cookie jar, redirects not followed, HTML
//! forms read the way a browser reads them, and the authorize → login → consent walk that
//! every authorization code test starts with.
//!
//! ```ignore
//! let agent = testkit::browser::BrowserAgent::new();
//! let pkce = testkit::browser::Pkce::new();
//! let redirect = testkit::browser::authorize_and_login(&agent, &authorize_url, "anna", "pw").await;
//! let code = redirect.location_param("code").unwrap();
//! ```

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use reqwest::Url;
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::HeaderMap;
use scraper::{ElementRef, Html, Selector};
use sha2::{Digest as _, Sha256};

/// How much of a body a panic message quotes.
const EXCERPT_CHARS: usize = 1500;

/// A browser: a `reqwest` client with its own cookie jar that does not follow redirects, so a
/// test sees every `302` and its `Location`.
#[derive(Debug, Clone)]
pub struct BrowserAgent {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Default for BrowserAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl BrowserAgent {
    /// A browser with an empty cookie jar.
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("cannot build the browser's HTTP client");
        Self { client, jar }
    }

    /// The underlying client (it sends this browser's cookies), for requests the helpers below
    /// do not cover.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The `Cookie` header this browser would send to `url`, if any.
    pub fn cookies_for(&self, url: &str) -> Option<String> {
        let url = Url::parse(url).unwrap_or_else(|error| panic!("{url:?} is not a URL: {error}"));
        self.jar.cookies(&url).map(|value| value.to_str().expect("cookie header is not text").to_owned())
    }

    /// Whether this browser holds a cookie named `name` for `url`.
    pub fn has_cookie(&self, url: &str, name: &str) -> bool {
        self.cookies_for(url).is_some_and(|header| {
            header.split(';').any(|pair| pair.trim().split_once('=').is_some_and(|(key, _)| key == name))
        })
    }

    /// One GET, redirects not followed.
    pub async fn get(&self, url: &str) -> Page {
        let response =
            self.client.get(url).send().await.unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
        Page::read(response).await
    }

    /// One form POST (`application/x-www-form-urlencoded`), redirects not followed.
    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Page {
        let response = self
            .client
            .post(url)
            .form(fields)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        Page::read(response).await
    }

    /// Submits `form` of `page` as a browser would: to its action resolved against the page's
    /// URL, with its fields (hidden ones unchanged) and `extra` on top. An `extra` name that
    /// the form already has replaces that field's value; a new one is appended (a clicked
    /// button's `name=value`, say).
    pub async fn submit(&self, page: &Page, form: &Form, extra: &[(&str, &str)]) -> Page {
        let target = form.target(&page.url);
        let fields = form.fields_with(extra);
        if form.method.eq_ignore_ascii_case("post") {
            self.post_form(&target, &fields).await
        } else {
            let mut url = Url::parse(&target).unwrap_or_else(|error| panic!("{target:?}: {error}"));
            url.query_pairs_mut().clear().extend_pairs(&fields);
            self.get(url.as_str()).await
        }
    }
}

/// One response, read whole.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that was requested.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Self {
        let url = response.url().to_string();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_else(|error| panic!("reading {url} failed: {error}"));
        Self { url, status, headers, body }
    }

    /// A page from its parts (for tests of the HTML reading itself).
    pub fn from_html(url: &str, status: u16, body: &str) -> Self {
        Self { url: url.to_owned(), status, headers: HeaderMap::new(), body: body.to_owned() }
    }

    /// Every `<form>` of the body, in document order.
    pub fn forms(&self) -> Vec<Form> {
        let document = Html::parse_document(&self.body);
        document.select(&selector("form")).map(Form::read).collect()
    }

    /// The first form whose `action` ends with `action_suffix` (`/oauth2/login`, say), as
    /// written or as the path it resolves to (`action="login"` on `/oauth2/authorize`).
    pub fn form_with_action(&self, action_suffix: &str) -> Option<Form> {
        self.forms().into_iter().find(|form| {
            form.action.ends_with(action_suffix)
                || Url::parse(&form.target(&self.url))
                    .is_ok_and(|target| target.path().ends_with(action_suffix))
        })
    }

    /// The `Location` header, as sent.
    pub fn location(&self) -> Option<String> {
        self.header("location")
    }

    /// The query parameters of `Location` (resolved against this page's URL), decoded.
    pub fn location_params(&self) -> Vec<(String, String)> {
        let Some(location) = self.location() else {
            return Vec::new();
        };
        let base = Url::parse(&self.url).unwrap_or_else(|error| panic!("{:?}: {error}", self.url));
        let target = base.join(&location).unwrap_or_else(|error| panic!("Location {location:?}: {error}"));
        target.query_pairs().map(|(name, value)| (name.into_owned(), value.into_owned())).collect()
    }

    /// One query parameter of `Location` (the first, if repeated).
    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location_params().into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// Where this answer sends the browser next: its `Location`, or else the target of a
    /// `<meta http-equiv="refresh">` (how the auth server leaves an upstream provider's
    /// redirect chain).
    pub fn next_url(&self) -> Option<String> {
        if let Some(location) = self.location() {
            return Some(location);
        }
        let html = Html::parse_document(&self.body);
        let selector = Selector::parse(r#"meta[http-equiv="refresh"]"#).expect("a valid selector");
        let content = html.select(&selector).next()?.value().attr("content")?.to_owned();
        let (_, target) = content.split_once("url=")?;
        Some(target.to_owned())
    }

    /// One query parameter of [`Page::next_url`] (the first, if repeated).
    pub fn next_param(&self, name: &str) -> Option<String> {
        let target = Url::parse(&self.url).ok()?.join(&self.next_url()?).ok()?;
        target.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    }

    /// A header's value as text (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().expect("header is not text").to_owned())
    }

    /// Whether this is a redirect (3xx).
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }

    /// The status, URL, `Location` and the start of the body: what a failure message needs.
    pub fn describe(&self) -> String {
        let excerpt: String = self.body.chars().take(EXCERPT_CHARS).collect();
        let cut = if self.body.chars().count() > EXCERPT_CHARS { " …" } else { "" };
        format!(
            "{} from {} (Location: {})\n{excerpt}{cut}",
            self.status,
            self.url,
            self.location().as_deref().unwrap_or("none")
        )
    }
}

/// An HTML form, read as a browser would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute as written (entities decoded); empty means the page's own URL.
    pub action: String,
    /// `get` or `post`, lower case (`get` when absent, as in HTML).
    pub method: String,
    /// What submitting it sends before any button is clicked: named inputs (hidden ones
    /// included) except buttons, checked checkboxes and radios, textareas and selects.
    pub fields: Vec<(String, String)>,
    /// Every control: inputs, buttons, textareas and selects.
    pub inputs: Vec<Input>,
}

/// One form control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The element: `input`, `button`, `textarea` or `select`.
    pub tag: String,
    /// Its `type`, lower case (`text` for an input without one, `submit` for such a button).
    pub kind: String,
    /// Its `name` (empty when it has none).
    pub name: String,
    /// Its value (entities decoded).
    pub value: String,
}

impl Form {
    fn read(form: ElementRef<'_>) -> Self {
        let action = form.attr("action").unwrap_or("").to_owned();
        let method = form.attr("method").unwrap_or("get").to_ascii_lowercase();
        let mut fields = Vec::new();
        let mut inputs = Vec::new();
        for control in form.select(&selector("input, button, textarea, select")) {
            let tag = control.value().name().to_owned();
            let name = control.attr("name").unwrap_or("").to_owned();
            let (kind, value) = match tag.as_str() {
                "input" => (
                    control.attr("type").unwrap_or("text").to_ascii_lowercase(),
                    control.attr("value").unwrap_or("").to_owned(),
                ),
                "button" => (
                    control.attr("type").unwrap_or("submit").to_ascii_lowercase(),
                    control.attr("value").unwrap_or("").to_owned(),
                ),
                "textarea" => ("textarea".to_owned(), control.text().collect()),
                _ => ("select".to_owned(), selected_option(control)),
            };
            let input = Input { tag, kind, name, value };
            if input.is_submitted_by_default(control) {
                fields.push((input.name.clone(), input.value.clone()));
            }
            inputs.push(input);
        }
        Self { action, method, fields, inputs }
    }

    /// The absolute URL it submits to: its action resolved against `page_url`.
    pub fn target(&self, page_url: &str) -> String {
        let base = Url::parse(page_url).unwrap_or_else(|error| panic!("{page_url:?}: {error}"));
        if self.action.is_empty() {
            return base.into();
        }
        base.join(&self.action)
            .unwrap_or_else(|error| panic!("form action {:?}: {error}", self.action))
            .into()
    }

    /// The value of its field `name`, if it sends one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Its control named `name`, if any.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|input| input.name == name)
    }

    /// Its fields with `extra` applied: a known name gets the new value (once; repeats of it
    /// are dropped), an unknown one is appended.
    pub fn fields_with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = Vec::with_capacity(self.fields.len() + extra.len());
        for (name, value) in &self.fields {
            match extra.iter().find(|(key, _)| key == name) {
                Some(_) if fields.iter().any(|(key, _)| key == name) => {}
                Some((_, replacement)) => fields.push((name.clone(), (*replacement).to_owned())),
                None => fields.push((name.clone(), value.clone())),
            }
        }
        for (name, value) in extra {
            if !fields.iter().any(|(key, _)| key == name) {
                fields.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        fields
    }
}

impl Input {
    fn is_submitted_by_default(&self, element: ElementRef<'_>) -> bool {
        if self.name.is_empty() || element.attr("disabled").is_some() {
            return false;
        }
        match (self.tag.as_str(), self.kind.as_str()) {
            ("button", _) => false,
            ("input", "submit" | "button" | "image" | "reset" | "file") => false,
            ("input", "checkbox" | "radio") => element.attr("checked").is_some(),
            _ => true,
        }
    }
}

/// The value a `<select>` sends: its selected option, else its first.
fn selected_option(select: ElementRef<'_>) -> String {
    let options: Vec<ElementRef<'_>> = select.select(&selector("option")).collect();
    let chosen = options.iter().find(|option| option.attr("selected").is_some()).or(options.first());
    chosen.map_or_else(String::new, |option| {
        option
            .attr("value")
            .map_or_else(|| option.text().collect::<String>().trim().to_owned(), str::to_owned)
    })
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|error| panic!("selector {css:?}: {error}"))
}

/// A PKCE pair (RFC 7636) with the `S256` method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// `code_verifier`: 32 random bytes, base64url without padding (43 characters).
    pub verifier: String,
    /// `code_challenge`: base64url-no-pad(SHA-256(verifier)).
    pub challenge: String,
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let mut bytes = [0_u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: &str) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier: verifier.to_owned(), challenge }
    }
}

/// How many authorize → login → consent hops the walk takes before it gives up.
const MAX_STEPS: usize = 8;

/// Walks authorize → login page → POST credentials (→ consent allow when shown) → the 302;
/// returns the final redirect's Page (caller reads code/state/iss or error).
///
/// A redirect to another page of the auth server (same origin as `authorize_url`, and not the
/// request's `redirect_uri`) is followed; the first other redirect is the answer. With a
/// browser session the answer may come without a login page. Panics, quoting the page, when a
/// step does not look like the hosted login: a page with no login or consent form, or the
/// login form shown again after the credentials were posted.
pub async fn authorize_and_login(
    agent: &BrowserAgent,
    authorize_url: &str,
    username: &str,
    password: &str,
) -> Page {
    let start = Url::parse(authorize_url).unwrap_or_else(|error| panic!("{authorize_url:?}: {error}"));
    let redirect_uri =
        start.query_pairs().find(|(name, _)| name == "redirect_uri").map(|(_, value)| value.into_owned());
    let mut page = agent.get(authorize_url).await;
    let mut logged_in = false;
    let mut consented = false;
    for _ in 0..MAX_STEPS {
        if page.is_redirect() {
            let location =
                page.location().unwrap_or_else(|| panic!("a redirect without Location: {}", page.describe()));
            let target = Url::parse(&page.url)
                .and_then(|base| base.join(&location))
                .unwrap_or_else(|error| panic!("Location {location:?}: {error}"));
            let to_client = redirect_uri.as_deref().is_some_and(|uri| target.as_str().starts_with(uri));
            if to_client || target.origin() != start.origin() {
                return page;
            }
            page = agent.get(target.as_str()).await;
        } else if let Some(login) = page.form_with_action("/oauth2/login") {
            assert!(
                !logged_in,
                "the login page came back after posting the credentials of {username:?}: {}",
                page.describe()
            );
            logged_in = true;
            page = agent.submit(&page, &login, &[("username", username), ("password", password)]).await;
        } else if let Some(consent) = page.form_with_action("/oauth2/consent") {
            assert!(!consented, "the consent page came back after allowing: {}", page.describe());
            consented = true;
            page = agent.submit(&page, &consent, &[("decision", "allow")]).await;
        } else {
            panic!("expected a login page, a consent page or a redirect, got {}", page.describe());
        }
    }
    panic!("no redirect after {MAX_STEPS} steps; last page: {}", page.describe());
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN_PAGE: &str = r#"<!DOCTYPE html>
<html><body>
  <form method="post" action="/federation/upstream"><button>Continue with Upstream</button></form>
  <form method="POST" action="/oauth2/login">
    <input type="hidden" name="csrf_token" value="abc&amp;def">
    <input type="hidden" name="redirect_uri" value="http://127.0.0.1:9/cb?a=1&amp;b=&quot;2&quot;">
    <input type="hidden" name="state" value="&lt;s&gt;">
    <input name="username" value="anna">
    <input type="password" name="password">
    <input type="checkbox" name="remember">
    <input type="checkbox" name="terms" value="yes" checked>
    <input type="submit" value="Log in">
    <input type="hidden" name="ignored" value="x" disabled>
  </form>
  <form action="relative/next"><textarea name="note">hello</textarea>
    <select name="color"><option value="r">red</option><option selected>green</option></select>
    <button name="decision" value="allow">Allow</button>
  </form>
</body></html>"#;

    fn page() -> Page {
        Page::from_html("http://127.0.0.1:8080/oauth2/authorize?client_id=c", 200, LOGIN_PAGE)
    }

    #[test]
    fn hidden_values_are_unescaped_and_only_submitted_controls_are_fields() {
        let login = page().form_with_action("/oauth2/login").unwrap();

        assert_eq!(login.method, "post");
        assert_eq!(
            login.fields,
            [
                ("csrf_token", "abc&def"),
                ("redirect_uri", "http://127.0.0.1:9/cb?a=1&b=\"2\""),
                ("state", "<s>"),
                ("username", "anna"),
                ("password", ""),
                ("terms", "yes"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
        );
        assert_eq!(login.input("password").unwrap().kind, "password");
        assert_eq!(login.inputs.len(), 9, "every control is listed, submitted or not");
    }

    #[test]
    fn actions_resolve_against_the_page_url() {
        let forms = page().forms();

        assert_eq!(forms.len(), 3);
        assert_eq!(
            forms[1].target("http://127.0.0.1:8080/oauth2/authorize?x=1"),
            "http://127.0.0.1:8080/oauth2/login"
        );
        assert_eq!(
            forms[2].target("http://127.0.0.1:8080/oauth2/authorize"),
            "http://127.0.0.1:8080/oauth2/relative/next"
        );
        assert_eq!(forms[2].method, "get", "no method attribute means GET");
        let empty = Form { action: String::new(), method: "post".into(), fields: vec![], inputs: vec![] };
        assert_eq!(
            empty.target("http://h:1/p?q=2"),
            "http://h:1/p?q=2",
            "an empty action is the page itself"
        );
    }

    #[test]
    fn buttons_textareas_and_selects_are_read_and_buttons_are_sent_only_when_clicked() {
        let form = page().forms().remove(2);

        assert_eq!(
            form.fields,
            [("note".to_owned(), "hello".to_owned()), ("color".to_owned(), "green".to_owned())]
        );
        let button = form.input("decision").unwrap();
        assert_eq!(
            (button.tag.as_str(), button.kind.as_str(), button.value.as_str()),
            ("button", "submit", "allow")
        );
    }

    #[test]
    fn extra_fields_override_known_ones_and_append_new_ones() {
        let login = page().form_with_action("/oauth2/login").unwrap();

        let sent = login.fields_with(&[("password", "secret"), ("username", "bob"), ("decision", "allow")]);

        assert_eq!(sent.iter().find(|(name, _)| name == "username").unwrap().1, "bob");
        assert_eq!(sent.iter().find(|(name, _)| name == "password").unwrap().1, "secret");
        assert_eq!(sent.last().unwrap(), &("decision".to_owned(), "allow".to_owned()));
        assert_eq!(
            sent.iter().find(|(name, _)| name == "csrf_token").unwrap().1,
            "abc&def",
            "hidden unchanged"
        );
        assert_eq!(sent.len(), login.fields.len() + 1);
    }

    #[test]
    fn location_params_are_decoded_and_relative_locations_resolve() {
        let mut redirect = Page::from_html("http://127.0.0.1:8080/oauth2/login", 302, "");
        redirect.headers.insert(
            "location",
            "http://127.0.0.1:9/cb?code=a%2Bb&state=x%20y&iss=http%3A%2F%2Fh".parse().unwrap(),
        );

        assert_eq!(redirect.location_param("code").as_deref(), Some("a+b"));
        assert_eq!(redirect.location_param("state").as_deref(), Some("x y"));
        assert_eq!(redirect.location_param("iss").as_deref(), Some("http://h"));
        assert_eq!(redirect.location_param("error"), None);
        assert!(redirect.is_redirect());

        redirect.headers.insert("location", "/oauth2/authorize?step=2".parse().unwrap());
        assert_eq!(redirect.location_params(), [("step".to_owned(), "2".to_owned())]);
    }

    /// A hosted login in miniature: a login page that sets a CSRF cookie, a login that checks
    /// it and answers with a consent page, and a consent that redirects with a code.
    async fn fake_hosted_login() -> String {
        use axum::Form as Posted;
        use axum::http::{HeaderMap as Headers, StatusCode, header};
        use axum::response::{Html as Body, IntoResponse, Response};
        use axum::routing::{get, post};
        use std::collections::HashMap;

        fn has_csrf(headers: &Headers, form: &HashMap<String, String>) -> bool {
            let cookie = headers.get(header::COOKIE).and_then(|value| value.to_str().ok()).unwrap_or("");
            form.get("csrf_token").is_some_and(|token| cookie.contains(&format!("csrf={token}")))
        }
        async fn authorize() -> Response {
            let page = r#"<form method="post" action="/oauth2/login">
                <input type="hidden" name="csrf_token" value="t&amp;1">
                <input type="hidden" name="redirect_uri" value="http://127.0.0.1:9/cb">
                <input name="username"><input type="password" name="password"></form>"#;
            ([(header::SET_COOKIE, "csrf=t&1; Path=/")], Body(page)).into_response()
        }
        async fn login(headers: Headers, Posted(form): Posted<HashMap<String, String>>) -> Response {
            if !has_csrf(&headers, &form) {
                return StatusCode::FORBIDDEN.into_response();
            }
            if form.get("password").map(String::as_str) != Some("right") {
                return (StatusCode::UNAUTHORIZED, Body("<p>wrong</p>")).into_response();
            }
            Body(r#"<form method="post" action="consent"><input type="hidden" name="csrf_token" value="t&amp;1">
                <button name="decision" value="allow">Allow</button></form>"#)
            .into_response()
        }
        async fn consent(headers: Headers, Posted(form): Posted<HashMap<String, String>>) -> Response {
            if !has_csrf(&headers, &form) || form.get("decision").map(String::as_str) != Some("allow") {
                return StatusCode::FORBIDDEN.into_response();
            }
            (StatusCode::FOUND, [(header::LOCATION, "http://127.0.0.1:9/cb?code=c1&state=s")]).into_response()
        }
        let router = axum::Router::new()
            .route("/oauth2/authorize", get(authorize))
            .route("/oauth2/login", post(login))
            .route("/oauth2/consent", post(consent));
        crate::serve(router).await
    }

    #[tokio::test]
    async fn the_walk_posts_credentials_with_the_cookie_and_allows_consent() {
        let server = fake_hosted_login().await;
        let agent = BrowserAgent::new();
        let authorize = format!("{server}/oauth2/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb");

        let redirect = authorize_and_login(&agent, &authorize, "anna", "right").await;

        assert_eq!(redirect.status, 302, "{}", redirect.describe());
        assert_eq!(redirect.location_param("code").as_deref(), Some("c1"));
        assert!(agent.has_cookie(&server, "csrf"));
        assert!(!BrowserAgent::new().has_cookie(&server, "csrf"), "every agent has its own jar");
    }

    #[tokio::test]
    #[should_panic(expected = "expected a login page, a consent page or a redirect, got 401")]
    async fn the_walk_panics_with_the_page_when_the_login_fails() {
        let server = fake_hosted_login().await;

        authorize_and_login(&BrowserAgent::new(), &format!("{server}/oauth2/authorize"), "anna", "wrong")
            .await;
    }

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let known = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(known.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");

        let fresh = Pkce::new();
        assert_eq!(fresh.verifier.len(), 43);
        assert_ne!(fresh.verifier, Pkce::new().verifier);
        assert_eq!(Pkce::from_verifier(&fresh.verifier), fresh);
    }
}
