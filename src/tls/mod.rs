//! TLS on the listeners (rustls), as a byte transformer under the connection: sans-IO over
//! the connection's own buffers, like the codec. The connection code (`shard::conn`) feeds it
//! socket bytes and writes out what it returns.
//!
//! - `load`: a listener's PEM files into a rustls `ServerConfig`, errors naming key and file.
//! - `acceptor`: `Certificates` loads them at start and on SIGHUP and gives each shard its
//!   own copy; a shard's `Acceptor` starts new connections with the newest.
//! - `session`: `TlsSession`, one connection's TLS over `BytesMut`s.
//! - `client`: the client side, for bridges: a bridge's `tls` table into a `ClientConfig`,
//!   and `TlsClient`, one outgoing connection's TLS over `BytesMut`s.
//! - `records`: driving either side's rustls connection over `BytesMut`s (read, write,
//!   close), which both `TlsSession` and `TlsClient` use.
//! - `identity`: the subject CN of a client certificate (`identity_as_username`).

mod acceptor;
mod client;
mod identity;
mod load;
mod records;
mod session;

pub use acceptor::{Acceptor, Certificates, ShardAcceptors};
pub use client::{TlsClient, client_config, server_name};
pub use identity::common_name;
pub use load::{TlsError, server_config};
pub use session::TlsSession;

#[cfg(test)]
mod tests;
