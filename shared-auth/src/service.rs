//! What every binary of the platform serves besides its API, written once: health, readiness,
//! Prometheus metrics, OpenAPI + Swagger UI, request ids, tracing, body limits, timeouts,
//! problem-document fallbacks and graceful shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::{self, Problem};

/// Largest request body any endpoint accepts (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request taking longer than this is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Initialises `tracing`: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for JSON lines.
/// Safe to call twice (the second call does nothing), which tests rely on.
pub fn init_telemetry() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The process-wide Prometheus recorder. `metrics` keeps one global recorder per process, so it
/// is installed once here and every router in the process renders the same registry.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const LATENCY_BUCKETS: &[f64] =
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map(|builder| builder.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours still renders then.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Overall readiness as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    /// Everything is fine.
    Ready,
    /// Serving, but on stale data (e.g. keys not refreshed because the auth server is down).
    Degraded,
    /// Cannot serve: a dependency is missing.
    Unavailable,
}

/// The `/readyz` body: the overall status and one line per check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// The worst status of all checks.
    pub status: ReadyStatus,
    /// Each check's own status, by name.
    pub checks: BTreeMap<String, ReadyStatus>,
}

impl Readiness {
    /// Builds a report from named checks; the overall status is the worst one.
    pub fn from_checks(checks: impl IntoIterator<Item = (&'static str, ReadyStatus)>) -> Self {
        let checks: BTreeMap<String, ReadyStatus> =
            checks.into_iter().map(|(name, status)| (name.to_owned(), status)).collect();
        let status = if checks.values().any(|status| *status == ReadyStatus::Unavailable) {
            ReadyStatus::Unavailable
        } else if checks.values().any(|status| *status == ReadyStatus::Degraded) {
            ReadyStatus::Degraded
        } else {
            ReadyStatus::Ready
        };
        Self { status, checks }
    }
}

/// A readiness probe supplied by the service.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Readiness> + Send + Sync>;

/// Checks a database pool with a trivial query.
pub async fn database_status(pool: &sqlx::AnyPool) -> ReadyStatus {
    match sqlx::query("SELECT 1").execute(pool).await {
        Ok(_) => ReadyStatus::Ready,
        Err(error) => {
            tracing::warn!(%error, "database not reachable");
            ReadyStatus::Unavailable
        }
    }
}

/// The readiness of a resource service: its database and its token-verification keys
/// (`degraded` while serving on stale keys, `unavailable` with none).
pub fn resource_readiness(pool: sqlx::AnyPool, verifier: crate::Verifier) -> ReadinessCheck {
    Arc::new(move || {
        let pool = pool.clone();
        let verifier = verifier.clone();
        Box::pin(async move {
            let keys = match verifier.status() {
                crate::KeyStatus::Ready => ReadyStatus::Ready,
                crate::KeyStatus::Degraded => ReadyStatus::Degraded,
                crate::KeyStatus::Unavailable => ReadyStatus::Unavailable,
            };
            Readiness::from_checks([("database", database_status(&pool).await), ("keys", keys)])
        })
    })
}

#[derive(Clone)]
struct InfraState {
    readiness: ReadinessCheck,
    metrics: PrometheusHandle,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: dependencies reachable; `degraded` still serves.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 503, description = "Unavailable", body = Readiness)))]
async fn readyz(State(state): State<InfraState>) -> Response {
    let readiness = (state.readiness)().await;
    let status = if readiness.status == ReadyStatus::Unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(readiness)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics_endpoint(State(state): State<InfraState>) -> Response {
    // Refresh gauges that are derived from state (e.g. key age) before rendering.
    let _ = (state.readiness)().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route and status.
/// The route is the matched pattern (never the raw path), so cardinality stays bounded.
async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

fn panic_to_problem(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// Turns a service's documented API into the full application: adds the operational routes and
/// documentation, the bearer security scheme, problem fallbacks and the standard layers.
pub fn finish_router(title: &str, api: OpenApiRouter, readiness: ReadinessCheck) -> (Router, OpenApi) {
    let infra = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_endpoint))
        .with_state(InfraState { readiness, metrics: metrics_handle() });
    let (router, mut openapi) = api.merge(infra).split_for_parts();
    document_problem_media_type(&mut openapi);
    openapi.info = utoipa::openapi::InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "{title} of the JWT authorization platform. Errors are application/problem+json \
             (RFC 9457); authentication failures follow RFC 6750."
        )))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi.clone()))
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn(track_metrics))
        .layer(
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
        );
    (router, openapi)
}

/// Problem bodies are sent as `application/problem+json` (RFC 9457), but `#[utoipa::path]`
/// documents every body as `application/json`. Corrected here, once for every service, so the
/// document says what the wire carries (clients and contract testers such as Schemathesis check
/// the media type).
fn document_problem_media_type(openapi: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    let is_problem = |content: &RefOr<utoipa::openapi::Content>| {
        matches!(content, RefOr::T(content)
            if matches!(&content.schema, Some(RefOr::Ref(schema)) if schema.ref_location.ends_with("/Problem")))
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                if response.content.get("application/json").is_some_and(is_problem)
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    response.content.insert(problem::PROBLEM_JSON.to_owned(), content);
                }
            }
        }
    }
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

/// Serves `app` until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    // Connect info gives handlers the peer address (login throttling uses it).
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining");
}

/// The `healthcheck` subcommand for container HEALTHCHECKs in images without curl: GET
/// `/healthz` on `address` (a wildcard address is probed on loopback). Returns success or not.
pub fn healthcheck(address: std::net::SocketAddr) -> bool {
    use std::io::{Read as _, Write as _};
    let mut target = address;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let probe = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(3);
        let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut reply = String::new();
        stream.take(256).read_to_string(&mut reply)?;
        Ok(reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"))
    };
    probe().unwrap_or(false)
}

/// The subcommands of a resource service binary.
#[derive(Debug, Clone, Copy, Default, clap::Subcommand)]
pub enum ServiceCommand {
    /// Serve HTTP (the default).
    #[default]
    Serve,
    /// Exit 0 if the service at LISTEN_ADDR answers /healthz (for container health checks).
    Healthcheck,
}

/// The whole life of a resource service binary: answer `healthcheck`, or build the service
/// (`build` yields its router and verifier), start the verifier's background refresh and serve
/// on `listen_addr` until SIGTERM/Ctrl-C. Returns whether the command succeeded (a failed
/// health check is `Ok(false)`).
pub async fn run_resource_service<Build>(
    command: Option<ServiceCommand>,
    listen_addr: std::net::SocketAddr,
    build: Build,
) -> anyhow::Result<bool>
where
    Build: std::future::Future<Output = anyhow::Result<(Router, crate::Verifier)>>,
{
    use anyhow::Context as _;
    if let Some(ServiceCommand::Healthcheck) = command {
        return Ok(healthcheck(listen_addr));
    }
    let (app, verifier) = build.await?;
    verifier.start_background_refresh();
    let listener = tokio::net::TcpListener::bind(listen_addr)
        .await
        .with_context(|| format!("failed to listen on {listen_addr}"))?;
    serve(listener, app).await?;
    Ok(true)
}
