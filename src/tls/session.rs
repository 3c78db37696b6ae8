//! `TlsSession`: one connection's TLS, server side, as a byte transformer over the
//! connection's own buffers. Ciphertext read off the socket goes in, plaintext comes out;
//! plaintext to send goes in, ciphertext for the socket comes out. No socket, no clock.

use super::identity;
use bytes::{Buf, BufMut, BytesMut};
use rustls::{Error, ServerConfig, ServerConnection};
use std::io::{self, BufRead, Write};
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
        let result = self.read_records(wire, plain);
        self.flush(out);
        result
    }

    fn read_records(&mut self, wire: &mut BytesMut, plain: &mut BytesMut) -> Result<bool, Error> {
        while !wire.is_empty() {
            let mut unread: &[u8] = wire;
            let n = self.conn.read_tls(&mut unread).map_err(io_error)?;
            wire.advance(n);
            let state = self.conn.process_new_packets()?;
            self.take_plaintext(plain)?;
            if state.peer_has_closed() {
                // Nothing after close_notify counts (RFC 8446 section 6.1).
                wire.clear();
                return Ok(true);
            }
            if n == 0 {
                break;
            }
        }
        Ok(false)
    }

    /// Moves the decrypted bytes rustls holds into `plain`.
    fn take_plaintext(&mut self, plain: &mut BytesMut) -> Result<(), Error> {
        let mut reader = self.conn.reader();
        loop {
            let n = match reader.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(chunk) => {
                    plain.extend_from_slice(chunk);
                    chunk.len()
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(io_error(e)),
            };
            reader.consume(n);
        }
    }

    /// Encrypts `plain` into records appended to `out`.
    pub fn write(&mut self, mut plain: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        while !plain.is_empty() {
            // rustls takes up to its buffer limit (64 KiB) at a time; `flush` empties it.
            let n = self.conn.writer().write(plain).map_err(io_error)?;
            self.flush(out);
            if n == 0 {
                return Err(Error::General(
                    "the TLS connection takes no more data".into(),
                ));
            }
            plain = plain.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Queues close_notify into `out`.
    pub fn close(&mut self, out: &mut BytesMut) {
        self.conn.send_close_notify();
        self.flush(out);
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

    /// Moves every record rustls has ready into `out`.
    fn flush(&mut self, out: &mut BytesMut) {
        let mut writer = out.writer();
        while self.conn.wants_write() {
            // Writing into a `BytesMut` cannot fail; it only grows.
            match self.conn.write_tls(&mut writer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

fn io_error(e: io::Error) -> Error {
    Error::General(e.to_string())
}
