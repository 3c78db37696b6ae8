//! Listener set-up: the busy-port check done once before any shard starts, and each shard's
//! own SO_REUSEPORT listener on the shared address.

use super::RuntimeError;
use std::io;
use std::net::SocketAddr;

/// Fails with `AddressInUse` if anything already listens on `addr`, and resolves port 0 to
/// a concrete port. A plain listener (no SO_REUSEPORT) is refused even by another
/// SO_REUSEPORT broker, which the shards' own listeners would silently join.
pub(super) fn probe_listen_address(addr: SocketAddr) -> Result<SocketAddr, RuntimeError> {
    let probe = std::net::TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => RuntimeError::AddressInUse(addr),
        _ => RuntimeError::Bind { addr, source: e },
    })?;
    probe
        .local_addr()
        .map_err(|source| RuntimeError::Bind { addr, source })
}

pub(super) fn bind_shard_listener(addr: SocketAddr) -> io::Result<monoio::net::TcpListener> {
    let opts = monoio::net::ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(4096);
    monoio::net::TcpListener::bind_with_config(addr, &opts)
}
