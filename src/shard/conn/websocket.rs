//! The WebSocket layer of a connection's transport: the `crate::ws` upgrade handshake, then
//! its frame codec (`WsConn`), between the bytes below (the socket, or TLS plaintext) and the
//! MQTT bytes above. MQTT packets may span frames and a frame may hold several; the codec
//! streams payloads, so this layer buffers no frame.

use crate::ws::{self, CloseCode, HandshakeError, WsConn, WsError, WsEvent, WsLimits};
use bytes::BytesMut;

/// Where a WebSocket connection stands.
#[derive(Debug)]
pub struct WsLayer {
    state: State,
    /// Under TLS: decrypted bytes not taken yet (a partial frame header). Over plain TCP
    /// the transport's own input buffer holds them.
    pub pending: BytesMut,
}

#[derive(Debug)]
enum State {
    /// Waiting for the whole HTTP/1.1 upgrade request.
    Handshake,
    Open(WsConn),
}

/// What the WebSocket layer left the connection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsInbound {
    Open,
    /// The closing handshake is done (the client's Close frame, echoed in the reply).
    Closed,
}

/// Why the WebSocket layer gave up; what it says (an HTTP 400, a Close frame) is in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsFailure {
    Handshake(HandshakeError),
    Frame(WsError),
}

impl std::fmt::Display for WsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "WebSocket handshake: {e}"),
            Self::Frame(e) => write!(f, "WebSocket: {e}"),
        }
    }
}

impl WsLayer {
    pub fn new() -> Self {
        Self {
            state: State::Handshake,
            pending: BytesMut::new(),
        }
    }

    /// Takes what it can of `input` (the upgrade request, then client frames): MQTT bytes to
    /// `mqtt`, what the peer must be sent (the 101 or 400 response, pongs, Close frames) to
    /// `reply`. What it cannot take yet stays in `input`.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        mqtt: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<WsInbound, WsFailure> {
        loop {
            match &mut self.state {
                State::Handshake => match ws::accept(input, reply) {
                    Ok(None) => return Ok(WsInbound::Open),
                    // Frames may follow the request in the same read.
                    Ok(Some(_)) => self.state = State::Open(WsConn::new(WsLimits::default())),
                    Err(e) => return Err(WsFailure::Handshake(e)),
                },
                State::Open(conn) => {
                    return match conn.on_bytes(input, mqtt, reply) {
                        Ok(WsEvent::Open) => Ok(WsInbound::Open),
                        Ok(WsEvent::Closed) => Ok(WsInbound::Closed),
                        Err(e) => Err(WsFailure::Frame(e)),
                    };
                }
            }
        }
    }

    /// MQTT bytes as one binary frame (nothing before the upgrade: no MQTT bytes can come
    /// before it).
    pub fn encode(&self, mqtt: &[u8], out: &mut BytesMut) {
        if matches!(self.state, State::Open(_)) && !mqtt.is_empty() {
            ws::encode_binary(mqtt, out);
        }
    }

    /// The server's Close frame (1000), once.
    pub fn close(&mut self, out: &mut BytesMut) {
        if let State::Open(conn) = &mut self.state {
            conn.close(CloseCode::NORMAL, out);
        }
    }
}
