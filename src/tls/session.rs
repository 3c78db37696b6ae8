//! `TlsSession`: one connection's TLS, server side, as a byte transformer over the
//! connection's own buffers. Ciphertext read off the socket goes in, plaintext comes out;
//! plaintext to send goes in, ciphertext for the socket comes out. No socket, no clock.

use super::{identity, records};
use bytes::BytesMut;
use rustls::{Error, ServerConfig, ServerConnection};
use std::sync::Arc;

/// A server-side TLS connection (rustls `ServerConnection`) driven over `BytesMut`s.
#[derive(Debug)]
pub struct TlsSession {
    conn: ServerConnection,
}

impl TlsSession {
    pub fn new(config: Arc<ServerConfig>) -> Result<Self, Error> {
        Ok(Self {
            conn: ServerConnection::new(config)?,
        })
    }

    /// Takes every byte of `wire` (ciphertext off the socket; a partial record is kept
    /// inside), appends the plaintext to `plain` and what the peer must be sent (handshake
    /// messages, session tickets, alerts) to `out`. `Ok(true)`: the peer has closed
    /// (close_notify). On an error the fatal alert that says why is in `out`: send it, then
    /// close.
    pub fn read(
        &mut self,
        wire: &mut BytesMut,
        plain: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, Error> {
        records::read(&mut self.conn, wire, plain, out)
    }

    /// Encrypts `plain` into records appended to `out`.
    pub fn write(&mut self, plain: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        records::write(&mut self.conn, plain, out)
    }

    /// Queues close_notify into `out`.
    pub fn close(&mut self, out: &mut BytesMut) {
        records::close(&mut self.conn, out);
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The subject CN of the client's certificate; rustls only keeps a certificate its
    /// verifier accepted (a listener with `client_ca`).
    pub fn peer_common_name(&self) -> Option<String> {
        let chain = self.conn.peer_certificates()?;
        identity::common_name(chain.first()?)
    }

    /// The ALPN protocol agreed on, if the client offered one we speak.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }
}
