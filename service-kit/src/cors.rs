//! CORS for browser apps on other origins (the demo web app, Swagger UI of another binary):
//! tower-http's [`CorsLayer`] for the origins of `CORS_ALLOWED_ORIGINS` (DESIGN.md "CORS").
//!
//! - Only listed origins get CORS headers; any other origin gets none, so its browser refuses
//!   to hand it the answer. `*` is never sent.
//! - No credentialed CORS: tokens travel in `Authorization`, never in cookies, so
//!   `Access-Control-Allow-Credentials` is never sent.
//! - Request headers `Authorization`, `Content-Type` and `DPoP` are allowed; `WWW-Authenticate`
//!   and `DPoP-Nonce` are exposed, so an app can read why a token was refused.
//! - Preflights are cached for [`PREFLIGHT_MAX_AGE`].

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `origins` (`scheme://host[:port]`, as browsers send `Origin`), or `None`
/// when there are none: then no CORS at all.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|origin| origin.trim().trim_end_matches('/'))
        .filter(|origin| !origin.is_empty() && *origin != "*")
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            // Swagger UI sends `X-Requested-With` with its token request.
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("dpop"),
                HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([header::WWW_AUTHENTICATE, HeaderName::from_static("dpop-nonce")])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    fn app() -> Router {
        let origins = vec!["http://127.0.0.1:8083".to_owned(), "*".to_owned()];
        Router::new().route("/v1/x", get(|| async { "x" })).layer(layer(&origins).unwrap())
    }

    async fn preflight(origin: &str) -> axum::response::Response {
        let request = Request::options("/v1/x")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,dpop")
            .body(Body::empty())
            .unwrap();
        app().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_listed_origin_gets_a_cached_preflight_without_credentials() {
        let response = preflight("http://127.0.0.1:8083").await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://127.0.0.1:8083");
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_ascii_lowercase();
        assert!(
            ["authorization", "content-type", "dpop", "x-requested-with"]
                .iter()
                .all(|name| allowed.contains(name)),
            "{allowed}"
        );
        assert!(headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[tokio::test]
    async fn another_origin_gets_no_cors_headers_and_star_is_never_sent() {
        let response = preflight("http://evil.example").await;
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let request =
            Request::get("/v1/x").header(header::ORIGIN, "http://evil.example").body(Body::empty()).unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn an_actual_request_exposes_the_challenge_header() {
        let request = Request::get("/v1/x")
            .header(header::ORIGIN, "http://127.0.0.1:8083")
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let exposed =
            response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().to_ascii_lowercase();
        assert!(exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"), "{exposed}");
    }

    #[test]
    fn no_origins_means_no_cors() {
        assert!(layer(&[]).is_none());
        assert!(layer(&["*".to_owned()]).is_none());
    }
}
