//! [`App`]: a binary's documented API turned into the whole application, with the operational
//! routes, the documentation, problem fallbacks and the standard layers.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::metrics::{GaugeRefresh, MetricsState, metrics_handle};
use crate::problem;
use crate::readiness::ReadinessCheck;

/// Builds the full application around a binary's API.
#[must_use = "call .build() to get the router"]
pub struct App {
    title: String,
    api: OpenApiRouter,
    readiness: ReadinessCheck,
    gauges: Option<GaugeRefresh>,
    strict_transport_security: bool,
    management: bool,
    cors_origins: Vec<String>,
    cors_paths: Option<&'static [&'static str]>,
    swagger_issuer: Option<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("App").field("title", &self.title).finish_non_exhaustive()
    }
}

/// What [`App::build_all`] makes: the API router, the management router when asked for, and
/// the OpenAPI document of the API router.
pub struct BuiltApp {
    /// The API, `/healthz`, `/readyz`, `/openapi.json`, `/docs`, and `/metrics` unless it moved.
    pub router: Router,
    /// `/metrics`, `/healthz` and `/readyz`, for `MANAGEMENT_ADDR`; only with
    /// [`App::management_listener`].
    pub management: Option<Router>,
    /// The document served at `/openapi.json`.
    pub openapi: OpenApi,
}

impl std::fmt::Debug for BuiltApp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BuiltApp")
            .field("management", &self.management.is_some())
            .finish_non_exhaustive()
    }
}

impl App {
    /// `title` names the binary in the OpenAPI document; `readiness` answers `/readyz`.
    pub fn new(title: impl Into<String>, api: OpenApiRouter, readiness: ReadinessCheck) -> Self {
        Self {
            title: title.into(),
            api,
            readiness,
            gauges: None,
            strict_transport_security: false,
            management: false,
            cors_origins: Vec::new(),
            cors_paths: None,
            swagger_issuer: None,
        }
    }

    /// Answers CORS for these origins on every route (`CORS_ALLOWED_ORIGINS`; see
    /// [`crate::cors`]).
    pub fn cors(mut self, origins: &[String]) -> Self {
        self.cors_origins = origins.to_vec();
        self
    }

    /// Answers CORS for these origins only on paths that equal or start with one of `paths`
    /// (a path ending in `/` is a prefix): the auth server's browser-facing endpoints, not its
    /// pages.
    pub fn cors_on(mut self, origins: &[String], paths: &'static [&'static str]) -> Self {
        self.cors_origins = origins.to_vec();
        self.cors_paths = Some(paths);
        self
    }

    /// Swagger UI's "Authorize" logs in at `issuer` with the authorization code flow and PKCE
    /// as the public client `swagger-ui`.
    pub fn swagger_login(mut self, issuer: &str) -> Self {
        self.swagger_issuer = Some(issuer.trim_end_matches('/').to_owned());
        self
    }

    /// Brings state-derived gauges up to date before each `/metrics` scrape (no I/O there).
    pub fn refresh_gauges(mut self, refresh: GaugeRefresh) -> Self {
        self.gauges = Some(refresh);
        self
    }

    /// The URL users reach the binary under (auth-server: `ISSUER`; services: `PUBLIC_URL`).
    /// When it is https, every response carries `Strict-Transport-Security`.
    pub fn public_url(mut self, url: &str) -> Self {
        self.strict_transport_security = crate::headers::is_https(url);
        self
    }

    /// With `separate`, `/metrics` leaves the API router (and its document) for a management
    /// router of its own, which also answers `/healthz` and `/readyz`; see [`App::build_all`].
    pub fn management_listener(mut self, separate: bool) -> Self {
        self.management = separate;
        self
    }

    /// The router and its OpenAPI document (also served at `/openapi.json`). With
    /// [`management_listener`](Self::management_listener), use [`build_all`](Self::build_all):
    /// this drops the management router.
    pub fn build(self) -> (Router, OpenApi) {
        let built = self.build_all();
        (built.router, built.openapi)
    }

    /// The API router, the management router (with
    /// [`management_listener`](Self::management_listener)) and the OpenAPI document.
    pub fn build_all(self) -> BuiltApp {
        let metrics = MetricsState { handle: metrics_handle(), refresh: self.gauges };
        let probes = OpenApiRouter::new()
            .routes(routes!(crate::readiness::healthz))
            .routes(routes!(crate::readiness::readyz))
            .with_state(self.readiness.clone());
        let operations = if self.management {
            probes
        } else {
            probes.merge(
                OpenApiRouter::new()
                    .routes(routes!(crate::metrics::metrics_endpoint))
                    .with_state(metrics.clone()),
            )
        };
        let (router, mut openapi) = self.api.merge(operations).split_for_parts();
        crate::docs::complete(&mut openapi, &self.title, self.swagger_issuer.as_deref());
        let mut docs = SwaggerUi::new("/docs")
            .url("/openapi.json", openapi.clone())
            // Its default sends the document's URL to an outside validator for a badge.
            .config(utoipa_swagger_ui::Config::from("/openapi.json").validator_url("none"));
        if self.swagger_issuer.is_some() {
            docs = docs.oauth(crate::docs::swagger_oauth());
        }
        let router =
            router.merge(crate::headers::docs_policy(Router::from(docs), self.swagger_issuer.as_deref()));
        let management = self.management.then(|| {
            use axum::routing::get;
            Router::new()
                .route("/healthz", get(crate::readiness::healthz))
                .route("/readyz", get(crate::readiness::readyz))
                .with_state(self.readiness)
                .merge(
                    Router::new()
                        .route("/metrics", get(crate::metrics::metrics_endpoint))
                        .with_state(metrics),
                )
        });
        let finish = |router: Router| {
            let router =
                router.fallback(problem::not_found).method_not_allowed_fallback(problem::method_not_allowed);
            crate::headers::apply(crate::layers::apply(router), self.strict_transport_security)
        };
        let mut router = finish(router);
        // Outermost, so that it also answers preflights that no route's method matches.
        if let Some(cors) = crate::cors::layer(&self.cors_origins) {
            router = match self.cors_paths {
                None => router.layer(cors),
                Some(paths) => only_on(paths, router.clone().layer(cors), router),
            };
        }
        BuiltApp { router, management: management.map(finish), openapi }
    }
}

/// A router that sends requests for `paths` to `matching` and every other to `other`.
fn only_on(paths: &'static [&'static str], matching: Router, other: Router) -> Router {
    use tower::ServiceExt as _;
    let covers = move |path: &str| {
        paths
            .iter()
            .any(|prefix| if prefix.ends_with('/') { path.starts_with(prefix) } else { path == *prefix })
    };
    Router::new().fallback_service(tower::service_fn(move |request: axum::extract::Request| {
        let target = if covers(request.uri().path()) { matching.clone() } else { other.clone() };
        target.oneshot(request)
    }))
}
