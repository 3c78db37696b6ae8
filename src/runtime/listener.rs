//! Listener set-up: the busy-port check done once before any shard starts, and each shard's
//! own SO_REUSEPORT listener on the shared address.

use super::RuntimeError;
use super::port_holder::{Holder, holder};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long start-up waits for the listeners of a predecessor that is still dying (killed a
/// moment ago: its sockets outlive it while the kernel tears down its io_uring instances).
const PREDECESSOR_GRACE: Duration = Duration::from_secs(2);
const PREDECESSOR_RETRY: Duration = Duration::from_millis(20);

/// Fails with `AddressInUse` if anything already listens on `addr`, and resolves port 0 to
/// a concrete port. A plain listener (no SO_REUSEPORT) is refused even by another
/// SO_REUSEPORT broker, which the shards' own listeners would silently join. A port whose
/// listeners no live process holds (a predecessor still dying) is retried for
/// `PREDECESSOR_GRACE`; one a live process holds is refused at once.
pub(super) fn probe_listen_address(addr: SocketAddr) -> Result<SocketAddr, RuntimeError> {
    let started = Instant::now();
    let mut waited = false;
    let probe = loop {
        match std::net::TcpListener::bind(addr) {
            Ok(probe) => break probe,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let dying = holder(addr.port()) == Holder::Nobody;
                if !dying || started.elapsed() >= PREDECESSOR_GRACE {
                    return Err(RuntimeError::AddressInUse(addr));
                }
                waited = true;
                std::thread::sleep(PREDECESSOR_RETRY);
            }
            Err(e) => return Err(RuntimeError::Bind { addr, source: e }),
        }
    };
    if waited {
        eprintln!(
            "ringmq: {addr} was held by a process that had ended; free after {} ms",
            started.elapsed().as_millis()
        );
    }
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
