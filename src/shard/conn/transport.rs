//! The seam between a connection's socket and its MQTT bytes: `Transport`, the byte
//! transformers a listener puts under the codec (TLS; WebSockets plug in here the same way),
//! and `Link`, a socket with its transport before the connection has its two tasks.
//!
//! ```text
//!  socket ──read──▶ Transport::decode ──MQTT bytes──▶ codec ──▶ ShardState
//!  socket ◀─write── Transport::output ◀──encode──── Conn.outbound (writer task)
//!                   (+ what a layer answers itself: handshake, alerts)
//! ```
//!
//! A transport is sans-IO: bytes in, bytes out, no socket, no clock. Once the connection is
//! split into a reader and a writer task, both use its one `Transport`, shared as
//! `Rc<RefCell<_>>` and borrowed only between awaits: TLS keeps one state for both
//! directions. A plain connection has no `Transport` in its tasks at all: the reader reads
//! into the codec's buffer and the writer writes the outbound buffer as it is.

use super::read::reserve;
use crate::tls::TlsSession;
use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::fmt;

/// What a connection's bytes go through between the socket and the codec.
#[derive(Debug, Default)]
pub struct Transport {
    tls: Option<Box<TlsSession>>,
    /// Socket bytes not taken yet (a layer waiting for the rest of a frame header); the next
    /// read appends to them.
    input: BytesMut,
    /// Bytes for the socket, in order: what the layers answer themselves (handshake
    /// messages, alerts) and the encoded MQTT bytes.
    output: BytesMut,
    /// A layer failed: what it had to say is in `output`, nothing more goes in or out.
    failed: bool,
}

/// What the peer's bytes left the transport in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    Open,
    /// The peer closed cleanly at the transport's level (TLS close_notify): no more input.
    Closed,
}

/// The peer broke the transport's protocol; what to tell it (a TLS alert) is in the output.
#[derive(Debug)]
pub enum TransportError {
    Tls(rustls::Error),
    /// An earlier error already ended the transport.
    Failed,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Failed => f.write_str("the transport has failed"),
        }
    }
}

impl Transport {
    /// MQTT straight over TCP.
    pub fn plain() -> Self {
        Self::default()
    }

    /// MQTT over TLS.
    pub fn tls(session: TlsSession) -> Self {
        Self {
            tls: Some(Box::new(session)),
            ..Self::default()
        }
    }

    /// Nothing between the socket and the codec.
    pub fn is_plain(&self) -> bool {
        self.tls.is_none()
    }

    /// The buffer the next socket read appends to (holding what is left of the last one).
    /// Hand it back through `decode`.
    pub fn take_input(&mut self) -> BytesMut {
        std::mem::take(&mut self.input)
    }

    /// Gives back the buffer of a read that brought nothing (the connection is ending).
    pub fn restore_input(&mut self, wire: BytesMut) {
        self.input = wire;
    }

    /// Takes the socket bytes in `wire` (from `take_input`, with a read appended) and appends
    /// the MQTT bytes they carry to `mqtt`. What the layers must answer goes to the output.
    pub fn decode(
        &mut self,
        mut wire: BytesMut,
        mqtt: &mut BytesMut,
    ) -> Result<Inbound, TransportError> {
        if self.failed {
            return Err(TransportError::Failed);
        }
        let result = match &mut self.tls {
            None => {
                mqtt.extend_from_slice(&wire);
                wire.clear();
                Ok(Inbound::Open)
            }
            Some(tls) => match tls.read(&mut wire, mqtt, &mut self.output) {
                Ok(true) => Ok(Inbound::Closed),
                Ok(false) => Ok(Inbound::Open),
                Err(e) => Err(TransportError::Tls(e)),
            },
        };
        self.failed = result.is_err();
        self.input = wire;
        result
    }

    /// Appends `mqtt` to the output, transformed (encrypted). Once a layer has failed,
    /// nothing more goes out but what it said (the connection is closing).
    pub fn encode(&mut self, mqtt: &[u8]) -> Result<(), TransportError> {
        if self.failed {
            return Ok(());
        }
        let result = match &mut self.tls {
            None => {
                self.output.extend_from_slice(mqtt);
                Ok(())
            }
            Some(tls) => tls
                .write(mqtt, &mut self.output)
                .map_err(TransportError::Tls),
        };
        self.failed = result.is_err();
        result
    }

    /// Appends what ends the transport cleanly (TLS close_notify) to the output.
    pub fn close(&mut self) {
        if !self.failed
            && let Some(tls) = &mut self.tls
        {
            tls.close(&mut self.output);
        }
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Swaps the output into `spare` (which should be empty) for writing to the socket.
    pub fn swap_output(&mut self, spare: &mut BytesMut) {
        std::mem::swap(&mut self.output, spare);
    }

    /// The subject CN of the client's verified certificate, on a TLS listener that asks for
    /// one.
    pub fn peer_common_name(&self) -> Option<String> {
        self.tls.as_ref()?.peer_common_name()
    }
}

/// A connection before it has a reader and a writer task: its socket and transport, used by
/// one task at a time, so a read and a write never overlap.
#[derive(Debug)]
pub struct Link {
    pub stream: TcpStream,
    pub transport: Transport,
}

impl Link {
    pub fn new(stream: TcpStream, transport: Transport) -> Self {
        Self { stream, transport }
    }

    /// Reads once and appends the MQTT bytes that came to `mqtt` (none, during a TLS
    /// handshake), then sends what the transport answers. `busy`: the connection is past
    /// its first packet, reads may grow in 64 KiB steps. False when the connection is over:
    /// end of stream, a socket error, or a transport error (after sending what it says).
    pub async fn read(&mut self, mqtt: &mut BytesMut, busy: bool) -> bool {
        if self.transport.is_plain() {
            reserve(mqtt, busy);
            let owned = std::mem::take(mqtt);
            let len = owned.len();
            let (res, slice) = self.stream.read(owned.slice_mut(len..)).await;
            *mqtt = slice.into_inner();
            return matches!(res, Ok(n) if n > 0);
        }
        let mut wire = self.transport.take_input();
        // Handshake records are small: 4 KiB steps until the connection has its tasks.
        reserve(&mut wire, false);
        let len = wire.len();
        let (res, slice) = self.stream.read(wire.slice_mut(len..)).await;
        let wire = slice.into_inner();
        if !matches!(res, Ok(n) if n > 0) {
            return false;
        }
        let decoded = self.transport.decode(wire, mqtt);
        let flushed = self.flush().await;
        matches!(decoded, Ok(Inbound::Open)) && flushed
    }

    /// Sends encoded MQTT bytes.
    pub async fn write(&mut self, mqtt: BytesMut) -> bool {
        if self.transport.is_plain() {
            let (res, _) = self.stream.write_all(mqtt).await;
            return res.is_ok();
        }
        self.transport.encode(&mqtt).is_ok() && self.flush().await
    }

    /// Sends what the transport has for the peer.
    async fn flush(&mut self) -> bool {
        if !self.transport.has_output() {
            return true;
        }
        let mut out = BytesMut::new();
        self.transport.swap_output(&mut out);
        let (res, _) = self.stream.write_all(out).await;
        res.is_ok()
    }

    /// Ends the connection: the transport's goodbye (close_notify), then a TCP shutdown.
    pub async fn shutdown(mut self) {
        self.transport.close();
        if self.flush().await {
            let _ = self.stream.shutdown().await;
        }
    }
}
