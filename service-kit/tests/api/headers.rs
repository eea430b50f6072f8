//! The security headers every response carries, and the content security policy of Swagger UI.

use service_kit::App;
use service_kit::headers::{DEFAULT_POLICY, DOCS_POLICY};
use utoipa_axum::router::OpenApiRouter;

use crate::operations::counting_readiness;

async fn serve_app(app: App) -> String {
    crate::serve(app.build().0).await
}

fn app() -> App {
    App::new("test-service", OpenApiRouter::new(), counting_readiness(service_kit::ReadyStatus::Ready).0)
}

#[tokio::test]
async fn every_response_forbids_sniffing_referrers_and_framing() {
    let url = serve_app(app()).await;

    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/nothing-here", "/docs/swagger-ui.css"]
    {
        let response = reqwest::get(format!("{url}{path}")).await.unwrap();

        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["content-security-policy"], DEFAULT_POLICY, "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: HSTS without an https public URL"
        );
    }
}

#[tokio::test]
async fn strict_transport_security_is_sent_only_when_the_public_url_is_https() {
    let https = serve_app(app().public_url("https://users.example")).await;
    let http = serve_app(app().public_url("http://127.0.0.1:8081")).await;

    let over_https = reqwest::get(format!("{https}/healthz")).await.unwrap();
    let over_http = reqwest::get(format!("{http}/healthz")).await.unwrap();

    assert_eq!(over_https.headers()["strict-transport-security"], "max-age=31536000");
    assert!(over_http.headers().get("strict-transport-security").is_none());
}

/// The opening tags of `tag` elements in `html`.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let opening = format!("<{tag}");
    html.match_indices(&opening)
        .map(|(start, _)| &html[start..start + html[start..].find('>').unwrap() + 1])
        .collect()
}

#[tokio::test]
async fn swagger_ui_pages_get_a_policy_their_files_satisfy_with_nothing_inline() {
    let url = serve_app(app()).await;

    for page in ["/docs/", "/docs/oauth2-redirect.html"] {
        let response = reqwest::get(format!("{url}{page}")).await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.headers()["content-security-policy"], DOCS_POLICY, "{page}");
        let html = response.text().await.unwrap().to_ascii_lowercase();

        // `script-src 'self'` holds only without inline code. (Styles may be inline: Swagger
        // UI's components render style attributes, see DOCS_POLICY; the files still have none.)
        assert!(DOCS_POLICY.contains("script-src 'self';"), "scripts stay our own files");
        assert!(html.contains("<script"), "{page}: no script at all?");
        for script in tags(&html, "script") {
            assert!(script.contains(" src="), "{page}: inline script {script}");
        }
        for (index, _) in html.match_indices("</script>") {
            let body_start = html[..index].rfind('>').unwrap() + 1;
            assert!(html[body_start..index].trim().is_empty(), "{page}: inline script body");
        }
        assert!(!html.contains("<style"), "{page}: inline style element");
        assert!(!html.contains(" style="), "{page}: inline style attribute");
        assert!(!html.contains(" on"), "{page}: inline event handler?");
        // Every file it loads is one of ours, and is there.
        let mut files = 0;
        for tag in tags(&html, "script").into_iter().chain(tags(&html, "link")) {
            let Some(target) = tag.split([' ', '>']).find_map(|part| {
                part.strip_prefix("src=")
                    .or_else(|| part.strip_prefix("href="))
                    .map(|value| value.trim_matches('"'))
            }) else {
                continue;
            };
            assert!(!target.contains("//") && !target.starts_with('/'), "{page}: loads {target}");
            let file = reqwest::get(format!("{url}/docs/{}", target.trim_start_matches("./"))).await.unwrap();
            assert_eq!(file.status(), 200, "{page}: {target}");
            files += 1;
        }
        assert!(files > 0, "{page}");
    }
}

#[tokio::test]
async fn swagger_ui_asks_no_outside_validator_about_the_document() {
    let url = serve_app(app()).await;

    let initializer =
        reqwest::get(format!("{url}/docs/swagger-initializer.js")).await.unwrap().text().await.unwrap();

    assert!(initializer.contains(r#""validatorUrl": "none""#), "{initializer}");
    assert!(initializer.contains(r#""url": "/openapi.json""#), "{initializer}");
}
