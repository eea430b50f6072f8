//! service-kit's own tests: what every binary serves besides its API, how it serves
//! connections, and the resource-service recipe's configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod connections;
mod headers;
mod management;
mod operations;
mod recipe;

/// Serves `router` on a free loopback port, as the binaries do; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = service_kit::ConnectionLimits::default();
    tokio::spawn(service_kit::serve_with(listener, router, limits, std::future::pending()));
    format!("http://{address}")
}
