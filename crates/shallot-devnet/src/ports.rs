//! Addresses for the processes of a local network: a free port on a loopback address.

use std::net::{IpAddr, SocketAddr, TcpListener};

/// An address on `ip` with a port free right now (the OS picks it; the listener is closed
/// again, so the process started next can bind it).
pub fn free_addr(ip: impl Into<IpAddr>) -> std::io::Result<SocketAddr> {
    TcpListener::bind((ip.into(), 0))?.local_addr()
}

/// A free port on `ip` (see [`free_addr`]).
pub fn free_port(ip: impl Into<IpAddr>) -> std::io::Result<u16> {
    Ok(free_addr(ip)?.port())
}
