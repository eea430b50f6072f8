//! service-kit's own tests: what every binary serves besides its API, and the resource-service
//! recipe's configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod operations;
mod recipe;

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}
