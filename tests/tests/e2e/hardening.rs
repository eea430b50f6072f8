//! The connection hardening of the real binaries, configured as an operator would, through the
//! environment: a cap on connections, a header-read timeout, and `/metrics` on a management
//! listener (`MANAGEMENT_ADDR`).

use std::time::Duration;

use secrecy::SecretString;
use testkit::Services;
use testkit::launch::{self, Launcher};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Long enough for anything this test waits for; a wait that runs out fails it.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn stalled_connections_beyond_the_cap_do_not_starve_the_binaries_and_metrics_move_to_management() {
    let services = Services::committed();
    let data = tempfile::tempdir().unwrap();
    let auth_management = launch::free_port().unwrap();
    let users_management = launch::free_port().unwrap();
    let launcher = Launcher::new(
        services.clone(),
        launch::workspace_binaries(services).unwrap(),
        data.path(),
        SecretString::from("e2e-hardening-client-secret"),
    )
    .on_free_ports()
    .unwrap()
    .auth_env("MAX_CONNECTIONS", 50)
    .auth_env("HEADER_READ_TIMEOUT_SECS", 1)
    .auth_env("MANAGEMENT_ADDR", auth_management)
    // Only users-service is started, so the one management address is its own.
    .resource_env("MAX_CONNECTIONS", 50)
    .resource_env("HEADER_READ_TIMEOUT_SECS", 1)
    .resource_env("MANAGEMENT_ADDR", users_management)
    .rust_log("error");
    let _auth = launcher.start("auth-server").await.unwrap();
    let _users = launcher.start("users-service").await.unwrap();
    let http = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();

    for (service, management) in [("auth-server", auth_management), ("users-service", users_management)] {
        let address = launcher.address(service).unwrap();
        let mut stalled = Vec::new();
        for _ in 0..300 {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(b"GET /heal").await.unwrap();
            stalled.push(stream);
        }
        let scrape = http.get(format!("http://{management}/metrics")).send().await.unwrap();
        let healthz = http.get(format!("http://{address}/healthz")).send().await.unwrap();
        let api_metrics = http.get(format!("http://{address}/metrics")).send().await.unwrap();

        assert_eq!(scrape.status(), 200, "{service}: /metrics on MANAGEMENT_ADDR");
        assert_eq!(healthz.status(), 200, "{service}: /healthz with 300 stalled connections");
        assert_eq!(api_metrics.status(), 404, "{service}: /metrics is still on LISTEN_ADDR");
        for stream in &mut stalled {
            let mut buffer = [0_u8; 64];
            let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await;
            let read = read.unwrap_or_else(|_| panic!("{service}: a stalled connection is still open"));
            assert!(matches!(read, Ok(0) | Err(_)), "{service}: a stalled connection got an answer");
        }
    }
}
