//! The seam between a connection's socket and its MQTT bytes: `Transport`, the byte
//! transformers a listener puts under the codec: TLS (`crate::tls`), WebSockets (`websocket`,
//! on `crate::ws`), or both, WebSocket frames inside TLS.
//!
//! ```text
//!  socket ──read──▶ TLS ─▶ WebSocket ─MQTT bytes─▶ codec ──▶ ShardState
//!  socket ◀─write── TLS ◀─ WebSocket ◀─encode──── Conn.outbound (writer task)
//!        (+ what a layer answers itself: TLS handshake and alerts; the HTTP 101 or 400,
//!         pongs and Close frames, themselves encrypted under TLS)
//! ```
//!
//! A transport is sans-IO: bytes in, bytes out, no socket, no clock. Before the connection
//! has its tasks a `Link` (`link.rs`) drives it. Once the connection is split into a reader
//! and a writer task, both use its one `Transport`, shared as `Rc<RefCell<_>>` and borrowed
//! only between awaits: TLS keeps one state for both directions. A plain connection has no
//! `Transport` in its tasks at all: the reader reads into the codec's buffer and the writer
//! writes the outbound buffer as it is.

use super::websocket::{WsFailure, WsInbound, WsLayer};
use crate::tls::TlsSession;
use bytes::BytesMut;
use std::fmt;

/// A scratch buffer larger than this is let go after use.
const MAX_IDLE_SCRATCH: usize = 256 * 1024;

/// What a connection's bytes go through between the socket and the codec.
#[derive(Debug, Default)]
pub struct Transport {
    tls: Option<Box<TlsSession>>,
    ws: Option<Box<WsLayer>>,
    /// Socket bytes not taken yet (a WebSocket frame header cut by the read); the next read
    /// appends to them.
    input: BytesMut,
    /// Bytes for the socket, in order: what the layers answer themselves and the encoded
    /// MQTT bytes.
    output: BytesMut,
    /// WebSocket bytes on their way into TLS.
    scratch: BytesMut,
    /// A layer failed: what it had to say is in `output`, it takes nothing more.
    tls_failed: bool,
    ws_failed: bool,
}

/// What the peer's bytes left the transport in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    Open,
    /// The peer closed cleanly at the transport's level (TLS close_notify, WebSocket Close):
    /// no more input.
    Closed,
}

/// The peer broke the transport's protocol; what to tell it (a TLS alert, an HTTP 400, a
/// WebSocket Close frame) is in the output.
#[derive(Debug)]
pub enum TransportError {
    Tls(rustls::Error),
    WebSocket(WsFailure),
    /// An earlier error already ended the transport.
    Failed,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::WebSocket(e) => write!(f, "{e}"),
            Self::Failed => f.write_str("the transport has failed"),
        }
    }
}

impl Transport {
    /// MQTT straight over TCP.
    pub fn plain() -> Self {
        Self::default()
    }

    /// MQTT over `tls` (if any) and WebSockets (if `websocket`).
    pub fn new(tls: Option<TlsSession>, websocket: bool) -> Self {
        Self {
            tls: tls.map(Box::new),
            ws: websocket.then(|| Box::new(WsLayer::new())),
            ..Self::default()
        }
    }

    /// Nothing between the socket and the codec.
    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && self.ws.is_none()
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
        if self.tls_failed || self.ws_failed {
            self.input = wire;
            return Err(TransportError::Failed);
        }
        let result = match (&mut self.tls, &mut self.ws) {
            (None, None) => {
                mqtt.extend_from_slice(&wire);
                wire.clear();
                Ok(Inbound::Open)
            }
            (Some(tls), None) => match tls.read(&mut wire, mqtt, &mut self.output) {
                Ok(closed) => Ok(inbound(closed)),
                Err(e) => {
                    self.tls_failed = true;
                    Err(TransportError::Tls(e))
                }
            },
            (None, Some(ws)) => match ws.decode(&mut wire, mqtt, &mut self.output) {
                Ok(state) => Ok(inbound(state == WsInbound::Closed)),
                Err(e) => {
                    self.ws_failed = true;
                    Err(TransportError::WebSocket(e))
                }
            },
            (Some(tls), Some(ws)) => {
                let mut frames = std::mem::take(&mut ws.pending);
                let tls_read = tls.read(&mut wire, &mut frames, &mut self.output);
                // What TLS decrypted before failing still counts.
                let ws_read = ws.decode(&mut frames, mqtt, &mut self.scratch);
                ws.pending = frames;
                if !self.scratch.is_empty() {
                    let said = tls.write(&self.scratch, &mut self.output);
                    self.scratch.clear();
                    if let Err(e) = said {
                        self.tls_failed = true;
                        return Err(TransportError::Tls(e));
                    }
                }
                match (tls_read, ws_read) {
                    (Err(e), _) => {
                        self.tls_failed = true;
                        Err(TransportError::Tls(e))
                    }
                    (Ok(_), Err(e)) => {
                        self.ws_failed = true;
                        Err(TransportError::WebSocket(e))
                    }
                    (Ok(tls_closed), Ok(state)) => {
                        Ok(inbound(tls_closed || state == WsInbound::Closed))
                    }
                }
            }
        };
        self.input = wire;
        result
    }

    /// Appends `mqtt` to the output, transformed (framed, encrypted). Once a layer has
    /// failed, nothing more goes out but what it said (the connection is closing).
    pub fn encode(&mut self, mqtt: &[u8]) -> Result<(), TransportError> {
        if self.tls_failed || self.ws_failed {
            return Ok(());
        }
        let result = match (&mut self.tls, &self.ws) {
            (None, None) => {
                self.output.extend_from_slice(mqtt);
                Ok(())
            }
            (Some(tls), None) => tls.write(mqtt, &mut self.output),
            (None, Some(ws)) => {
                ws.encode(mqtt, &mut self.output);
                Ok(())
            }
            (Some(tls), Some(ws)) => {
                ws.encode(mqtt, &mut self.scratch);
                let written = tls.write(&self.scratch, &mut self.output);
                self.scratch.clear();
                if self.scratch.capacity() > MAX_IDLE_SCRATCH {
                    self.scratch = BytesMut::new();
                }
                written
            }
        };
        result.map_err(|e| {
            self.tls_failed = true;
            TransportError::Tls(e)
        })
    }

    /// Appends what ends the transport cleanly to the output: the WebSocket Close frame
    /// (1000), then TLS close_notify; a layer that failed has said its last word already.
    pub fn close(&mut self) {
        let below = if self.tls.is_some() {
            &mut self.scratch
        } else {
            &mut self.output
        };
        if !self.ws_failed
            && let Some(ws) = &mut self.ws
        {
            ws.close(below);
        }
        if !self.tls_failed
            && let Some(tls) = &mut self.tls
        {
            if !self.scratch.is_empty() {
                let _ = tls.write(&self.scratch, &mut self.output);
                self.scratch.clear();
            }
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

fn inbound(closed: bool) -> Inbound {
    if closed {
        Inbound::Closed
    } else {
        Inbound::Open
    }
}
