//! The demo web app (DESIGN.md "Demo web app"): a browser client of the platform on its own
//! origin. This binary only serves files embedded in it (`assets/`) and `/config.json`; the
//! browser does everything else: it logs in at the auth server with the authorization code
//! flow and PKCE as the public client `demo-web`, then calls users-service and orders-service
//! with the access token, which it keeps in memory.
//!
//! Every response carries a strict `Content-Security-Policy` ([`settings::content_security_policy`]):
//! no inline script or style exists here, and the page may connect only to the platform.

use std::process::ExitCode;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser as _;
use service_kit::problem::Problem;
use service_kit::{Readiness, ServiceCommand};
use tower_http::trace::TraceLayer;

pub mod settings;

pub use settings::{BrowserConfig, Cli, Settings, Site};

/// The app's page; `/` and `/callback` both serve it (the script handles the callback).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The user interface: profile, orders, status strip (an ES module).
pub const APP_JS: &str = include_str!("../assets/app.js");
/// Login, refresh and logout with the tokens in memory (an ES module imported by `app.js`).
pub const OIDC_JS: &str = include_str!("../assets/oidc.js");
/// The page's DPoP key (non-extractable, Web Crypto) and its proofs (imported by `oidc.js`).
pub const DPOP_JS: &str = include_str!("../assets/dpop.js");
/// The style sheet.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The binary's entry point: parse the command line, then serve or run `healthcheck`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("demo-web: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    service_kit::init_telemetry();
    runtime.block_on(run(cli)).unwrap_or_else(|error| {
        eprintln!("demo-web: {error:#}");
        ExitCode::FAILURE
    })
}

/// Runs a parsed command line: `healthcheck` probes a running app, anything else serves until
/// SIGTERM or Ctrl-C. `platform` calls this for its demo-web child.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings;
    if cli.command == Some(ServiceCommand::Healthcheck) {
        let healthy = service_kit::healthcheck(settings.listen_addr);
        return Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let site = settings.site()?;
    tracing::info!(
        listen_addr = %settings.listen_addr,
        issuer = %site.browser.issuer,
        redirect_uri = %site.browser.redirect_uri,
        "demo-web serving"
    );
    let management = settings.server.management_addr.is_some().then(|| with_headers(probes(), &site));
    settings.server.serve(settings.listen_addr, router(&site), management).await?;
    Ok(ExitCode::SUCCESS)
}

/// Every route of the app, with its security headers.
pub fn router(site: &Site) -> Router {
    let config = axum::Json(site.browser.clone());
    let routes = Router::new()
        .route("/", get(index))
        .route("/callback", get(index))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/oidc.js", get(|| async { asset("text/javascript; charset=utf-8", OIDC_JS) }))
        .route("/dpop.js", get(|| async { asset("text/javascript; charset=utf-8", DPOP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move { ([(header::CACHE_CONTROL, "no-store")], config) }
            }),
        )
        .merge(probes())
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND) })
        .layer(TraceLayer::new_for_http());
    with_headers(routes, site)
}

/// `/healthz` and `/readyz` as every binary answers them. The app has no dependency of its own:
/// the status strip in the page reports the platform's.
fn probes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { axum::Json(Readiness::from_checks([])) }))
}

async fn index() -> Response {
    // `no-cache`: a new binary's page is seen at once, its files are then revalidated too.
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX_HTML)
        .into_response()
}

fn asset(media_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, media_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// The security headers of every response, error pages included: the policy, `nosniff`, no
/// referrer (the callback URL carries the code and `state`; they must not leak to another
/// origin, even though the code is useless without the PKCE verifier), and no framing.
fn with_headers(router: Router, site: &Site) -> Router {
    let policy = HeaderValue::from_str(&site.content_security_policy)
        .unwrap_or(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    router.layer(axum::middleware::map_response(move |mut response: Response| {
        let policy = policy.clone();
        async move {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            response
        }
    }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    fn site() -> Site {
        let cli = Cli::parse_from([
            "demo-web",
            "--auth-issuer",
            "http://auth.test:9000/",
            "--users-service-url",
            "http://users.test:9001",
            "--orders-service-url",
            "http://orders.test:9002/",
            "--client-id",
            "my-spa",
            "--public-url",
            "http://app.test:9003",
        ]);
        cli.settings.site().unwrap()
    }

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response =
            router(&site()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    const PATHS: [&str; 10] = [
        "/",
        "/callback",
        "/app.js",
        "/oidc.js",
        "/dpop.js",
        "/style.css",
        "/config.json",
        "/healthz",
        "/readyz",
        "/nope",
    ];

    #[tokio::test]
    async fn every_response_carries_the_policy_with_exactly_the_configured_origins() {
        let expected = "default-src 'none'; script-src 'self'; style-src 'self'; \
            connect-src 'self' http://auth.test:9000 http://users.test:9001 http://orders.test:9002; \
            img-src 'self'; form-action http://auth.test:9000; frame-ancestors 'none'; base-uri 'none'";

        for path in PATHS {
            let (_, headers, _) = get(path).await;

            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], expected, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        }
    }

    #[tokio::test]
    async fn config_json_reflects_the_settings() {
        let (status, headers, body) = get("/config.json").await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let config: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            config,
            serde_json::json!({
                "issuer": "http://auth.test:9000",
                "users_service_url": "http://users.test:9001",
                "orders_service_url": "http://orders.test:9002",
                "client_id": "my-spa",
                "redirect_uri": "http://app.test:9003/callback",
                "post_logout_redirect_uri": "http://app.test:9003/",
                "scope": "openid profile profile:read profile:write orders:read orders:write",
            })
        );
    }

    #[tokio::test]
    async fn the_page_the_callback_and_the_files_are_served_with_their_types() {
        for (path, media_type, body) in [
            ("/", "text/html; charset=utf-8", INDEX_HTML),
            ("/callback", "text/html; charset=utf-8", INDEX_HTML),
            ("/app.js", "text/javascript; charset=utf-8", APP_JS),
            ("/oidc.js", "text/javascript; charset=utf-8", OIDC_JS),
            ("/dpop.js", "text/javascript; charset=utf-8", DPOP_JS),
            ("/style.css", "text/css; charset=utf-8", STYLE_CSS),
        ] {
            let (status, headers, served) = get(path).await;

            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], media_type, "{path}");
            assert_eq!(served, body, "{path}");
        }
        let (status, _, body) = get("/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#""status":"ready""#), "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_are_a_404_problem() {
        for path in ["/nope", "/index.html/x", "/callback/x", "/assets/app.js"] {
            let (status, headers, _) = get(path).await;

            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{path}");
        }
    }

    /// The policy forbids inline script and style; the served page must not need any, or the
    /// browser would silently drop it.
    #[tokio::test]
    async fn the_served_page_has_no_inline_script_style_or_handler() {
        let (_, _, page) = get("/").await;
        let lower = page.to_ascii_lowercase();

        let scripts: Vec<&str> = lower.match_indices("<script").map(|(at, _)| &lower[at..]).collect();
        assert!(!scripts.is_empty(), "the page loads its module");
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(" src=\"/"), "a script without src: {tag}");
            assert!(script[tag.len() + 1..].starts_with("</script>"), "script content inline: {tag}");
        }
        assert!(!lower.contains("<style"), "inline <style>");
        assert!(!lower.contains(" style="), "inline style attribute");
        assert!(!has_handler_attribute(&lower), "inline event handler");
        assert!(!lower.contains("javascript:"), "javascript: URL");
    }

    /// ` onclick=`, ` onload=` and the like.
    fn has_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        })
    }

    /// The scripts build the page with DOM calls and `textContent`, never from HTML strings, so
    /// a display name or an order item can never become markup.
    #[tokio::test]
    async fn the_scripts_never_parse_html_or_evaluate_strings() {
        for path in ["/app.js", "/oidc.js", "/dpop.js"] {
            let (_, _, script) = get(path).await;

            for forbidden in
                ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]
            {
                assert!(!script.contains(forbidden), "{path} uses {forbidden}");
            }
        }
    }
}
