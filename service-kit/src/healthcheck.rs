//! The `healthcheck` subcommand, for container HEALTHCHECKs in images without curl.

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// The subcommands of a service binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Subcommand)]
pub enum ServiceCommand {
    /// Serve HTTP (the default).
    #[default]
    Serve,
    /// Exit 0 if the service at LISTEN_ADDR answers /healthz (for container health checks).
    Healthcheck,
}

/// GET `/healthz` on `address` (a wildcard address is probed on loopback). Returns whether it
/// answered 200 within 3 s.
pub fn healthcheck(address: std::net::SocketAddr) -> bool {
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
