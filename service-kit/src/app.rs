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
}

impl std::fmt::Debug for App {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("App").field("title", &self.title).finish_non_exhaustive()
    }
}

impl App {
    /// `title` names the binary in the OpenAPI document; `readiness` answers `/readyz`.
    pub fn new(title: impl Into<String>, api: OpenApiRouter, readiness: ReadinessCheck) -> Self {
        Self { title: title.into(), api, readiness, gauges: None }
    }

    /// Brings state-derived gauges up to date before each `/metrics` scrape (no I/O there).
    pub fn refresh_gauges(mut self, refresh: GaugeRefresh) -> Self {
        self.gauges = Some(refresh);
        self
    }

    /// The router and its OpenAPI document (also served at `/openapi.json`).
    pub fn build(self) -> (Router, OpenApi) {
        let operations = OpenApiRouter::new()
            .routes(routes!(crate::readiness::healthz))
            .routes(routes!(crate::readiness::readyz))
            .with_state(self.readiness)
            .merge(
                OpenApiRouter::new()
                    .routes(routes!(crate::metrics::metrics_endpoint))
                    .with_state(MetricsState { handle: metrics_handle(), refresh: self.gauges }),
            );
        let (router, mut openapi) = self.api.merge(operations).split_for_parts();
        crate::docs::complete(&mut openapi, &self.title);
        let router = router
            .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi.clone()))
            .fallback(problem::not_found)
            .method_not_allowed_fallback(problem::method_not_allowed);
        (crate::layers::apply(router), openapi)
    }
}
