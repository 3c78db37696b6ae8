//! Why the broker could not start or did not stop cleanly.

use crate::tls::TlsError;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why the broker could not start or did not stop cleanly.
#[derive(Debug)]
pub enum RuntimeError {
    /// Something already listens on the address (possibly another broker).
    AddressInUse(SocketAddr),
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    /// A TLS listener's certificate, key or CA file is unusable.
    Tls(TlsError),
    Spawn(io::Error),
    Signals(io::Error),
    /// A shard could not build its runtime or its listener.
    ShardStartup {
        shard: usize,
        reason: String,
    },
    /// A shard thread ended during start-up without saying why.
    StartupAborted,
    ShardPanicked(usize),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressInUse(addr) => write!(
                f,
                "{addr} is already in use (is another broker running on this port?)"
            ),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::Spawn(e) => write!(f, "cannot start a shard thread: {e}"),
            Self::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            Self::ShardStartup { shard, reason } => {
                write!(f, "shard {shard} failed to start: {reason}")
            }
            Self::StartupAborted => f.write_str("a shard thread ended during start-up"),
            Self::ShardPanicked(shard) => write!(f, "shard {shard} panicked"),
        }
    }
}

impl std::error::Error for RuntimeError {}
