//! The demo app's configuration (DESIGN.md "Precise rules → Demo web app"): where it listens
//! and the platform's URLs **as the browser sees them**, since the browser, not this binary,
//! calls the auth server and the services.

use std::net::SocketAddr;

use anyhow::Context as _;
use serde::Serialize;
use service_kit::{ServerArgs, ServiceCommand};

/// The demo web app: serves a browser client of the platform that logs in with the
/// authorization code flow and PKCE, then calls users-service and orders-service.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "demo-web", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
    /// The settings.
    #[command(flatten)]
    pub settings: Settings,
}

/// Where the app listens and the URLs its JavaScript uses.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8083", global = true)]
    pub listen_addr: SocketAddr,
    /// The auth server's issuer URL, as the browser reaches it: discovery, login, token
    /// endpoint. It must equal the auth server's ISSUER.
    #[arg(long, env = "AUTH_ISSUER", default_value = "http://127.0.0.1:8080", global = true)]
    pub auth_issuer: String,
    /// users-service's base URL, as the browser reaches it.
    #[arg(long, env = "USERS_SERVICE_URL", default_value = "http://127.0.0.1:8081", global = true)]
    pub users_service_url: String,
    /// orders-service's base URL, as the browser reaches it.
    #[arg(long, env = "ORDERS_SERVICE_URL", default_value = "http://127.0.0.1:8082", global = true)]
    pub orders_service_url: String,
    /// The public OAuth client the app logs in as (registered by `auth-server demo-seed`).
    #[arg(long, env = "CLIENT_ID", default_value = "demo-web", global = true)]
    pub client_id: String,
    /// The URL the browser opens the app under; the redirect URI is `PUBLIC_URL/callback` and
    /// must be registered for CLIENT_ID. Default: `http://<LISTEN_ADDR>` (a wildcard address
    /// as 127.0.0.1).
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Listener settings shared by every binary. CORS_ALLOWED_ORIGINS is accepted and unused:
    /// this app has no API for other origins.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The checked settings: each URL reduced to what the app needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// What `/config.json` serves.
    pub browser: BrowserConfig,
    /// The `Content-Security-Policy` of every response.
    pub content_security_policy: String,
}

/// `/config.json`: everything the JavaScript needs to know, generated from the settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrowserConfig {
    /// The issuer; discovery is at `issuer/.well-known/openid-configuration`.
    pub issuer: String,
    /// users-service's base URL.
    pub users_service_url: String,
    /// orders-service's base URL.
    pub orders_service_url: String,
    /// The public client.
    pub client_id: String,
    /// `<own origin>/callback`.
    pub redirect_uri: String,
    /// `<own origin>/`.
    pub post_logout_redirect_uri: String,
    /// The scope the app asks for.
    pub scope: &'static str,
}

/// What the app asks for: an id_token (`openid`, `profile` for `preferred_username`) and the
/// scopes of the profile and order calls it makes.
pub const SCOPE: &str = "openid profile profile:read profile:write orders:read orders:write";

impl Settings {
    /// Checks the URLs and builds the site's configuration and policy.
    pub fn site(&self) -> anyhow::Result<Site> {
        let issuer = base_url("AUTH_ISSUER", &self.auth_issuer)?;
        let users = base_url("USERS_SERVICE_URL", &self.users_service_url)?;
        let orders = base_url("ORDERS_SERVICE_URL", &self.orders_service_url)?;
        let own = match &self.public_url {
            Some(url) => base_url("PUBLIC_URL", url)?,
            None => {
                let mut address = self.listen_addr;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Url { base: format!("http://{address}"), origin: format!("http://{address}") }
            }
        };
        anyhow::ensure!(!self.client_id.trim().is_empty(), "CLIENT_ID must not be empty");
        let content_security_policy =
            content_security_policy(&issuer.origin, &[&users.origin, &orders.origin]);
        Ok(Site {
            browser: BrowserConfig {
                issuer: issuer.base,
                users_service_url: users.base,
                orders_service_url: orders.base,
                client_id: self.client_id.clone(),
                redirect_uri: format!("{}/callback", own.origin),
                post_logout_redirect_uri: format!("{}/", own.origin),
                scope: SCOPE,
            },
            content_security_policy,
        })
    }
}

/// The policy: only the app's own files run and style the page (no inline script or style
/// anywhere, so an injected `<script>` does nothing); it may connect to itself and to the
/// platform's three origins, nowhere else; forms may only go to the issuer; it cannot be
/// framed (clickjacking) and has no `<base>` to redirect relative URLs.
pub fn content_security_policy(issuer: &str, services: &[&str]) -> String {
    let mut connect = vec!["'self'", issuer];
    for origin in services {
        if !connect.contains(origin) {
            connect.push(origin);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src {}; img-src 'self'; \
         form-action {issuer}; frame-ancestors 'none'; base-uri 'none'",
        connect.join(" ")
    )
}

/// A checked http(s) URL: itself without a trailing slash, and its origin.
struct Url {
    base: String,
    origin: String,
}

fn base_url(name: &str, value: &str) -> anyhow::Result<Url> {
    let parsed = url::Url::parse(value).with_context(|| format!("{name} {value:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
        "{name} {value:?} must be an http or https URL with a host"
    );
    anyhow::ensure!(
        parsed.query().is_none() && parsed.fragment().is_none(),
        "{name} {value:?} must have no query or fragment"
    );
    Ok(Url { base: value.trim_end_matches('/').to_owned(), origin: parsed.origin().ascii_serialization() })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Cli::parse_from(std::iter::once("demo-web").chain(args.iter().copied())).settings
    }

    #[test]
    fn the_defaults_are_the_local_stacks_contract_ports() {
        let site = settings(&[]).site().unwrap();

        assert_eq!(site.browser.issuer, "http://127.0.0.1:8080");
        assert_eq!(site.browser.users_service_url, "http://127.0.0.1:8081");
        assert_eq!(site.browser.orders_service_url, "http://127.0.0.1:8082");
        assert_eq!(site.browser.client_id, "demo-web");
        assert_eq!(site.browser.redirect_uri, "http://127.0.0.1:8083/callback");
        assert_eq!(site.browser.post_logout_redirect_uri, "http://127.0.0.1:8083/");
    }

    #[test]
    fn a_wildcard_listen_address_is_opened_on_loopback_unless_a_public_url_is_given() {
        let wildcard = settings(&["--listen-addr", "0.0.0.0:8083"]).site().unwrap();
        let public = settings(&["--listen-addr", "0.0.0.0:8083", "--public-url", "https://demo.example/"])
            .site()
            .unwrap();

        assert_eq!(wildcard.browser.redirect_uri, "http://127.0.0.1:8083/callback");
        assert_eq!(public.browser.redirect_uri, "https://demo.example/callback");
    }

    #[test]
    fn urls_that_are_no_http_base_urls_are_refused_with_their_variable() {
        for (flag, value, variable) in [
            ("--auth-issuer", "auth-server:8080", "AUTH_ISSUER"),
            ("--users-service-url", "ftp://users", "USERS_SERVICE_URL"),
            ("--orders-service-url", "http://orders/?x=1", "ORDERS_SERVICE_URL"),
        ] {
            let error = settings(&[flag, value]).site().unwrap_err().to_string();
            assert!(error.contains(variable), "{error}");
        }
    }

    #[test]
    fn the_policy_lists_each_origin_once() {
        let policy = content_security_policy("http://a:1", &["http://b:2", "http://b:2", "http://a:1"]);

        assert!(policy.contains("connect-src 'self' http://a:1 http://b:2;"), "{policy}");
    }
}
