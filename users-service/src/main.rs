//! `users-service` binary.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let config = users_service::config::Config::parse();
    shared_auth::service::init_telemetry();
    match users_service::run(config).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "users-service failed");
            ExitCode::FAILURE
        }
    }
}
