//! MQTT over WebSocket (RFC 6455, MQTT 5.0 section 6), server side, sans-IO: a byte
//! transformer that sits under the connection and knows nothing of MQTT.
//!
//! ```text
//! socket bytes --> handshake::accept --101--> WsConn::on_bytes --> MQTT bytes --> codec
//!                  (HTTP/1.1 upgrade)         (frames: unmask,      (packets may span
//!                                              ping/pong, close)     frames, and a frame
//! socket <-- reply bytes (101/400, pong, close)                      may hold several)
//! socket <-- encode_binary(MQTT bytes)
//! ```
//!
//! - [`handshake`]: the upgrade request, bounded to [`handshake::MAX_REQUEST`] bytes, and
//!   the 101 or error response.
//! - [`frame`]: [`WsConn`], the frame decoder for client frames, and the encoders for
//!   server frames.
//!
//! No socket and no clock here: the connection feeds bytes in and writes out what comes
//! back, then closes when told to.

pub mod frame;
pub mod handshake;

pub use frame::{CloseCode, WsConn, WsError, WsEvent, WsLimits, encode_binary, encode_close};
pub use handshake::{Accepted, HandshakeError, Subprotocol, accept};
