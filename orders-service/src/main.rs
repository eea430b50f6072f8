//! `orders-service` binary.

fn main() -> std::process::ExitCode {
    orders_service::SERVICE.main(orders_service::api)
}
