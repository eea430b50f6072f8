//! What every browser test needs: the platform on free ports, a headless Chromium under its
//! WebDriver, the browser's network and console logs, and screenshots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared_auth::dpop::ProofKey;
use shared_auth::jws::Algorithm;
use shared_auth::time::unix_now_i64;
use testkit::Services;
use testkit::launch::{self, Launcher};

/// How long the page may take to show what a step expects.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// The demo user `auth-server demo-seed` creates.
pub(crate) const DEMO_USER: (&str, &str) = ("demo", "demo-password");

/// Settings of a browser test's platform.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlatformOptions {
    /// `ACCESS_TOKEN_TTL_SECS` of the auth server.
    pub(crate) access_token_ttl_secs: u64,
    /// `REVOCATION_POLL_SECS` of the services.
    pub(crate) revocation_poll_secs: u64,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self { access_token_ttl_secs: 900, revocation_poll_secs: 1 }
    }
}

/// Every binary of `services.toml` (the demo app too) on free loopback ports, the issuer being
/// the auth server itself: the browser talks to it directly, so an outage is a refused
/// connection, as in production.
pub(crate) struct Platform {
    stack: launch::Stack,
    /// For the checks the test makes beside the browser.
    pub(crate) http: reqwest::Client,
    pub(crate) options: PlatformOptions,
    /// Acme ID, once [`Platform::start_acme`] started it.
    acme: Option<launch::Process>,
    _data: tempfile::TempDir,
}

impl Platform {
    pub(crate) async fn start(options: PlatformOptions) -> Self {
        let services = Services::committed();
        let data = tempfile::tempdir().unwrap();
        let launcher = Launcher::new(
            services.clone(),
            launch::workspace_binaries(services).unwrap(),
            data.path(),
            SecretString::from("browser-tests-orders-secret"),
        )
        .on_free_ports()
        .unwrap()
        .auth_env("ACCESS_TOKEN_TTL_SECS", options.access_token_ttl_secs)
        .auth_env("JWKS_MAX_AGE_SECS", 1)
        // The services notice an outage within a second or two (their key refresh fails, so
        // /readyz says degraded), and expiry is exact: the refresh test waits for it.
        .resource_env("JWKS_REFRESH_MIN_SECS", 1)
        .resource_env("REVOCATION_POLL_SECS", options.revocation_poll_secs)
        .resource_env("AUTH_FETCH_TIMEOUT_MS", 500)
        .resource_env("TOKEN_LEEWAY_SECS", 0)
        .resource_env("USERS_SERVICE_TIMEOUT_MS", 1000)
        .rust_log(std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()));
        launcher.register_browser_clients().await.unwrap();
        let stack = launch::Stack::start(launcher).await.unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Self { stack, http, options, acme: None, _data: data }
    }

    pub(crate) fn url(&self, service: &str) -> String {
        self.stack.url(service).unwrap_or_else(|| panic!("{service} is not in services.toml"))
    }

    pub(crate) fn auth_url(&self) -> String {
        self.url(self.stack.auth_server())
    }

    /// Every origin of the platform: the only ones the browser may talk to.
    pub(crate) fn origins(&self) -> Vec<String> {
        Services::committed().all().iter().map(|service| self.url(&service.name)).collect()
    }

    pub(crate) async fn kill_auth(&mut self) {
        let auth = self.stack.auth_server().to_owned();
        self.stack.kill(&auth).await;
    }

    pub(crate) async fn start_auth(&mut self) {
        let auth = self.stack.auth_server().to_owned();
        self.stack.start_service(&auth).await.unwrap();
    }

    /// Starts "Acme ID", a second auth server on a free port, and registers it at ours as the
    /// provider `acme` (as `platform` does). Returns its URL.
    pub(crate) async fn start_acme(&mut self) -> String {
        let services = Services::committed();
        let launcher = Launcher::new(
            services.clone(),
            launch::workspace_binaries(services).unwrap(),
            self._data.path().join("acme"),
            SecretString::from("browser-tests-orders-secret"),
        )
        .on_free_ports()
        .unwrap()
        .rust_log(std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()));
        let auth = services.auth_server().name.clone();
        let process = launcher.start(&auth).await.unwrap();
        testkit::federation::register(self.stack.launcher(), &launcher).await.unwrap();
        let url = launcher.url(&auth).unwrap();
        self.acme = Some(process);
        url
    }

    /// What a service answers to `GET url` with a token copied out of the page, presented the
    /// way an attacker without the page's key can: the DPoP scheme and a proof signed by a key
    /// of its own. The status and the `error` of the challenge: `invalid_dpop_proof` while the
    /// token itself is still good (the services check the token before the proof), and
    /// `invalid_token` once it is revoked.
    pub(crate) async fn copied_token_answer(&self, url: &str, token: &str) -> (u16, String) {
        let key = ProofKey::generate(Algorithm::ES256).unwrap();
        let proof = key.proof("GET", url, Some(token), unix_now_i64()).unwrap();
        let response = self
            .http
            .get(url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), challenge_error(&response))
    }
}

/// The `error` parameter of a response's first `WWW-Authenticate` challenge, or "".
pub(crate) fn challenge_error(response: &reqwest::Response) -> String {
    let challenge = response.headers().get("www-authenticate").and_then(|value| value.to_str().ok());
    challenge
        .and_then(|challenge| challenge.split("error=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// One request the page made, from Chromium's network log (DevTools `Network.*` events).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Order of first sight: requests before a [`Browser::mark`] have smaller numbers.
    pub(crate) seq: usize,
    pub(crate) method: String,
    pub(crate) url: String,
    /// The `Authorization` header the page sent, if any.
    pub(crate) authorization: Option<String>,
    /// The `DPoP` proof header the page sent, if any.
    pub(crate) dpop: Option<String>,
    /// The response status, once one arrived.
    pub(crate) status: Option<u16>,
    /// Why it failed without a response (`net::ERR_CONNECTION_REFUSED`, a CORS refusal, ...).
    pub(crate) failure: Option<String>,
}

impl Request {
    pub(crate) fn origin(&self) -> String {
        let url = url::Url::parse(&self.url).unwrap();
        url.origin().ascii_serialization()
    }

    /// Under `base` (an origin or a URL prefix).
    pub(crate) fn is_under(&self, base: &str) -> bool {
        self.url.starts_with(base)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} {} -> {}",
            self.method,
            self.url,
            self.status
                .map_or_else(|| self.failure.clone().unwrap_or_else(|| "pending".into()), |s| s.to_string())
        )
    }
}

/// Headless Chromium under its WebDriver, with the network and console logs it gathers.
pub(crate) struct Browser {
    pub(crate) client: Client,
    requests: Vec<Request>,
    /// DevTools request id → index in `requests` of its latest attempt.
    by_id: HashMap<String, usize>,
    console: Vec<Value>,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

/// Chromium's `GET log` command (ChromeDriver's `/se/log`): the entries of one log since the
/// last call.
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": self.0 }).to_string()))
    }
}

fn find_program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|directory| names.iter().map(move |name| directory.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium. `None`, after a loud message, when either
    /// is missing; with `REQUIRE_BROWSER=1` that is a failure instead.
    pub(crate) async fn launch(test: &str) -> Option<Self> {
        let chromium = find_program("CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let message = format!(
                "browser test {test}: Chromium or ChromeDriver is missing (install the Debian packages \
                 `chromium` and `chromium-driver`, or set CHROMIUM and CHROMEDRIVER)"
            );
            if std::env::var("REQUIRE_BROWSER").is_ok_and(|value| value == "1") {
                panic!("{message}; REQUIRE_BROWSER=1 makes this a failure");
            }
            eprintln!("\n*** SKIPPED: {message} ***\n");
            return None;
        };
        let port = launch::free_port().unwrap().port();
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // Root in a container has no user namespace for the sandbox.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--no-first-run",
                    "--no-default-browser-check",
                    // Nothing of Chromium's own traffic: the network check is about the pages.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--disable-features=Translate,OptimizationHints,MediaRouter",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "perfLoggingPrefs": { "enableNetwork": true, "enablePage": false },
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL", "performance": "ALL" }));
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&webdriver).await {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("ChromeDriver on {webdriver} gave no session: {error}"),
            }
        };
        Some(Self {
            client,
            requests: Vec::new(),
            by_id: HashMap::new(),
            console: Vec::new(),
            _driver: driver,
            _profile: profile,
        })
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub(crate) async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits for the element to exist and be displayed.
    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let element = self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css}: {error}"));
        self.wait_until(
            &format!("{css} is displayed"),
            &format!("return isShown(document.querySelector({css:?}))"),
        )
        .await;
        element
    }

    pub(crate) async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Replaces the text of an input.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Runs `script` in the page (with a helper `isShown(element)`) and returns its value.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        let helpers =
            "const isShown = (e) => !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;";
        self.client.execute(&format!("{helpers}\n{script}"), vec![]).await.unwrap()
    }

    /// Polls `script` (it returns a boolean) until it is true; fails after [`STEP_TIMEOUT`].
    pub(crate) async fn wait_until(&self, what: &str, script: &str) {
        self.wait_until_for(what, script, STEP_TIMEOUT).await;
    }

    pub(crate) async fn wait_until_for(&self, what: &str, script: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return started.elapsed();
            }
            if started.elapsed() >= timeout {
                let text = self.eval("return document.body ? document.body.innerText : ''").await;
                let text: String = text.as_str().unwrap_or_default().chars().take(600).collect();
                let console = self.client.issue_cmd(GetLog("browser")).await.unwrap_or_default();
                panic!(
                    "waited {timeout:?} for: {what}\n  at {}\n  the page says: {text}\n  console: {console:#}",
                    self.current_url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses keys, as a keyboard does (WebDriver key actions, no element targeted).
    pub(crate) async fn press(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".into());
        for &key in keys {
            actions = actions.then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(actions).await.unwrap();
    }

    pub(crate) async fn press_tab(&self) {
        self.press(&[Key::Tab.into()]).await;
    }

    pub(crate) async fn type_text(&self, text: &str) {
        self.press(&text.chars().collect::<Vec<_>>()).await;
    }

    /// What the focused element is: `tag#id[name]`.
    pub(crate) async fn focused(&self) -> String {
        let value = self
            .eval(
                "const e = document.activeElement; \
                 return `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.name ? '[' + e.name + ']' : ''}`;",
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// A sequence number: requests sent from now on have at least this one.
    pub(crate) async fn mark(&mut self) -> usize {
        self.collect_logs().await;
        self.requests.len()
    }

    /// Every request the pages made so far.
    pub(crate) async fn requests(&mut self) -> &[Request] {
        self.collect_logs().await;
        &self.requests
    }

    /// Console entries at level SEVERE that are not a network failure (those are checked by
    /// the tests themselves, since an outage makes some on purpose): script errors, CSP
    /// violations, `console.error`.
    pub(crate) async fn console_errors(&mut self) -> Vec<Value> {
        self.collect_logs().await;
        self.console
            .iter()
            .filter(|entry| entry["level"] == "SEVERE" && entry["source"] != "network")
            .cloned()
            .collect()
    }

    async fn collect_logs(&mut self) {
        let Value::Array(console) = self.client.issue_cmd(GetLog("browser")).await.unwrap() else {
            panic!("the browser log is not a list");
        };
        self.console.extend(console);
        let Value::Array(performance) = self.client.issue_cmd(GetLog("performance")).await.unwrap() else {
            panic!("the performance log is not a list");
        };
        for entry in performance {
            let Some(message) = entry["message"].as_str() else { continue };
            let Ok(message) = serde_json::from_str::<Value>(message) else { continue };
            let (method, params) = (&message["message"]["method"], &message["message"]["params"]);
            let id = params["requestId"].as_str().unwrap_or_default().to_owned();
            match method.as_str().unwrap_or_default() {
                "Network.requestWillBeSent" => {
                    let request = &params["request"];
                    let headers = request["headers"].as_object();
                    let header = |wanted: &str| {
                        headers
                            .and_then(|headers| {
                                headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                            })
                            .and_then(|(_, value)| value.as_str())
                            .map(str::to_owned)
                    };
                    self.by_id.insert(id, self.requests.len());
                    self.requests.push(Request {
                        seq: self.requests.len(),
                        method: request["method"].as_str().unwrap_or_default().to_owned(),
                        url: request["url"].as_str().unwrap_or_default().to_owned(),
                        authorization: header("authorization"),
                        dpop: header("dpop"),
                        status: None,
                        failure: None,
                    });
                }
                "Network.responseReceived" => {
                    if let Some(&index) = self.by_id.get(&id) {
                        self.requests[index].status = params["response"]["status"]
                            .as_u64()
                            .and_then(|status| u16::try_from(status).ok());
                    }
                }
                "Network.loadingFailed" => {
                    if let Some(&index) = self.by_id.get(&id) {
                        let reason = params["blockedReason"]
                            .as_str()
                            .or(params["corsErrorStatus"]["corsError"].as_str())
                            .or(params["errorText"].as_str());
                        self.requests[index].failure = reason.map(str::to_owned);
                    }
                }
                _ => {}
            }
        }
    }

    /// Asserts that every request of the pages went to one of `origins` (`data:` and `about:`
    /// excepted), and that no page logged a console error.
    pub(crate) async fn assert_stayed_on(&mut self, origins: &[String]) {
        let requests = self.requests().await.to_vec();
        assert!(!requests.is_empty(), "the network log is empty: is performance logging on?");
        let outside: Vec<String> = requests
            .iter()
            .filter(|request| request.url.starts_with("http"))
            .filter(|request| !origins.contains(&request.origin()))
            .map(Request::describe)
            .collect();
        assert!(outside.is_empty(), "requests left the platform's origins {origins:?}: {outside:#?}");
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        println!("[network] {} requests, all to the platform's origins; no console error", requests.len());
    }

    /// With `WRITE_SCREENSHOTS=1`, writes the viewport to `docs/images/NAME.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        if std::env::var("WRITE_SCREENSHOTS").is_ok_and(|value| value == "1") {
            let png = self.client.screenshot().await.unwrap();
            let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
            std::fs::create_dir_all(&directory).unwrap();
            let path = directory.join(format!("{name}.png"));
            std::fs::write(&path, png).unwrap();
            println!("[screenshot] {}", path.display());
        }
    }

    pub(crate) async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// Waits until the browser shows the auth server's login page.
pub(crate) async fn wait_for_the_hosted_page(browser: &Browser, auth_url: &str) {
    browser
        .wait_until(
            "the hosted login page",
            &format!(
                "return location.href.startsWith({auth_url:?}) && !!document.querySelector('input[type=password]')"
            ),
        )
        .await;
}

/// Waits until the demo app is back from the login, showing `username`'s profile.
pub(crate) async fn wait_for_the_app_session(browser: &Browser, username: &str) {
    browser
        .wait_until("back in the app, logged in", "return isShown(document.getElementById('session'))")
        .await;
    browser
        .wait_until(
            "the profile",
            &format!("return document.getElementById('profile-username').textContent === {username:?}"),
        )
        .await;
}

/// Logs in on the hosted login page the browser shows now.
pub(crate) async fn log_in_on_the_hosted_page(
    browser: &Browser,
    auth_url: &str,
    (username, password): (&str, &str),
) {
    wait_for_the_hosted_page(browser, auth_url).await;
    browser.fill("input[name=username]", username).await;
    browser.fill("input[name=password]", password).await;
    browser.click("form button[type=submit]").await;
}
