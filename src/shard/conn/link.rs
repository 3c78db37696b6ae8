//! `Link`: a connection's socket with its `Transport` before the connection has its reader
//! and writer tasks (the TLS and WebSocket handshakes, the CONNECT, a refusal, the 5.0 AUTH
//! exchange); one task uses it, so a read and a write never overlap.

use super::Shared;
use super::read::reserve;
use super::transport::{Inbound, Transport};
use crate::shard::reading::linger;
use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

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

    /// Ends the connection: the transport's goodbye (close_notify), then a TCP shutdown,
    /// then lingers (reading and discarding what the client still sends) so that the client
    /// reads what it was told.
    pub async fn close(mut self, state: &Shared, leftover: BytesMut) {
        self.transport.close();
        if self.flush().await {
            let _ = self.stream.shutdown().await;
        }
        linger(state, &mut self.stream, leftover).await;
    }
}
