//! The layers every binary's router gets once: request ids, tracing spans, sensitive headers,
//! panics as problem documents, a request timeout and a body limit.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::problem::Problem;

/// Largest request body any endpoint accepts (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request taking longer than this is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the standard layers.
pub(crate) fn apply(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(crate::metrics::track_metrics)).layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(CatchPanicLayer::custom(panic_to_problem))
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

fn panic_to_problem(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// The request span: method, matched route and request id; never headers or the query string,
/// which may carry credentials.
fn request_span(request: &axum::http::Request<Body>) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let request_id =
        request.headers().get(&REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route.unwrap_or("unmatched"),
        request_id,
    )
}
