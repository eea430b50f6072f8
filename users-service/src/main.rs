//! `users-service` binary.

fn main() -> std::process::ExitCode {
    users_service::SERVICE.main(users_service::api)
}
