//! `auth-server`: runs the server (default) or an operator subcommand.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = auth_server::config::Cli::parse();
    service_kit::init_telemetry();
    match auth_server::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "auth-server failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
