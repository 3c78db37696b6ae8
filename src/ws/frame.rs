//! WebSocket frames after the handshake (RFC 6455 section 5): [`WsConn`] turns client
//! frames into the MQTT byte stream and answers control frames; [`encode_binary`] and
//! [`encode_close`] write server frames.
//!
//! The payload of a data frame is streamed: its bytes are unmasked into the MQTT buffer as
//! they arrive, so neither a frame nor a message is ever buffered whole, and the MQTT codec
//! sees one continuous stream whatever the framing (a packet may span frames, a frame may
//! hold several packets). Control frames (at most 125 bytes) are handled once complete.

use bytes::{Buf, BufMut, BytesMut};
use std::fmt;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// RFC 6455 section 5.5: control frames carry at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A close status code (RFC 6455 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: Self = Self(1000);
    pub const GOING_AWAY: Self = Self(1001);
    pub const PROTOCOL_ERROR: Self = Self(1002);
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    pub const INVALID_PAYLOAD: Self = Self(1007);
    pub const POLICY_VIOLATION: Self = Self(1008);
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    pub const INTERNAL_ERROR: Self = Self(1011);

    /// Whether a peer may send this code in a Close frame (section 7.4.1 and 7.4.2; 1012 to
    /// 1014 were registered with IANA since).
    pub fn allowed_on_the_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// Size bounds on what a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// Largest payload of one frame.
    pub max_frame: u64,
    /// Largest message: the payloads of a frame and its continuations together.
    pub max_message: u64,
}

impl Default for WsLimits {
    /// Room for the largest MQTT packet (a 268,435,455-byte remaining length and a 5-byte
    /// fixed header) in one frame or one message.
    fn default() -> Self {
        Self {
            max_frame: 268_435_460,
            max_message: 268_435_460,
        }
    }
}

/// What `on_bytes` left the connection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsEvent {
    /// Open: feed more bytes when they arrive.
    Open,
    /// The closing handshake is done (the client's Close, echoed in `reply` unless the server
    /// closed first): send `reply`, then close the TCP connection (section 7.1.1: the server
    /// closes first). Later calls consume nothing.
    Closed,
}

/// A client frame broke RFC 6455; a Close frame with [`WsError::code`] is in `reply`. Send it,
/// then close the TCP connection (section 7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// Section 5.1: client frames must be masked.
    Unmasked,
    /// Section 5.2: RSV1-3 set, but no extension was negotiated.
    ReservedBits,
    /// Section 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    ReservedOpcode(u8),
    /// Section 5.2: the length in more bytes than needed, or a 64-bit length with its most
    /// significant bit set.
    BadLength,
    /// Section 5.5: control frames must not be fragmented.
    FragmentedControl,
    /// Section 5.5: control frames carry at most 125 bytes.
    ControlTooLong,
    /// Section 5.4: a continuation frame with no fragmented message to continue.
    UnexpectedContinuation,
    /// Section 5.4: a new data frame while a fragmented message is unfinished.
    ExpectedContinuation,
    /// [MQTT-6.0.0-1]: MQTT travels in binary frames; a text frame is unsupported data.
    TextFrame,
    /// Section 7.4.1 (1009): a frame or message over [`WsLimits`].
    TooBig,
    /// Section 5.5.1: a Close body is empty or at least the 2-byte code.
    CloseBodyTooShort,
    /// Section 7.4: a code reserved or not defined for the wire.
    BadCloseCode(u16),
    /// Section 5.5.1 (1007): the Close reason is not UTF-8.
    CloseReasonNotUtf8,
}

impl WsError {
    /// The code sent in the Close frame.
    pub fn code(self) -> CloseCode {
        match self {
            Self::TextFrame => CloseCode::UNSUPPORTED_DATA,
            Self::TooBig => CloseCode::MESSAGE_TOO_BIG,
            Self::CloseReasonNotUtf8 => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unmasked => f.write_str("[RFC 6455 5.1] client frame not masked"),
            Self::ReservedBits => f.write_str("[RFC 6455 5.2] reserved bits set"),
            Self::ReservedOpcode(op) => write!(f, "[RFC 6455 5.2] reserved opcode {op:#x}"),
            Self::BadLength => f.write_str("[RFC 6455 5.2] payload length not minimally encoded"),
            Self::FragmentedControl => f.write_str("[RFC 6455 5.5] fragmented control frame"),
            Self::ControlTooLong => f.write_str("[RFC 6455 5.5] control frame over 125 bytes"),
            Self::UnexpectedContinuation => {
                f.write_str("[RFC 6455 5.4] continuation frame with nothing to continue")
            }
            Self::ExpectedContinuation => {
                f.write_str("[RFC 6455 5.4] data frame inside a fragmented message")
            }
            Self::TextFrame => f.write_str("[MQTT-6.0.0-1] text frame; MQTT needs binary frames"),
            Self::TooBig => f.write_str("[RFC 6455 7.4.1] frame or message too big"),
            Self::CloseBodyTooShort => f.write_str("[RFC 6455 5.5.1] one-byte close body"),
            Self::BadCloseCode(code) => write!(f, "[RFC 6455 7.4] close code {code} not allowed"),
            Self::CloseReasonNotUtf8 => f.write_str("[RFC 6455 5.5.1] close reason not UTF-8"),
        }
    }
}

impl std::error::Error for WsError {}

/// The data frame whose payload is streaming through.
#[derive(Debug, Clone, Copy)]
struct Payload {
    remaining: u64,
    mask: [u8; 4],
    /// Where the mask cycle stands: payload bytes already unmasked, modulo 4.
    offset: usize,
    fin: bool,
}

/// A frame header, decoded and checked.
struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    mask: [u8; 4],
    /// Bytes of the header itself.
    size: usize,
}

/// One connection's WebSocket state after the 101 response.
#[derive(Debug, Clone)]
pub struct WsConn {
    limits: WsLimits,
    payload: Option<Payload>,
    /// Bytes of the unfinished fragmented message so far; `None` between messages.
    message: Option<u64>,
    /// The server sent its Close; data from the client is dropped until its Close comes.
    close_sent: bool,
    done: bool,
}

impl WsConn {
    pub fn new(limits: WsLimits) -> Self {
        Self {
            limits,
            payload: None,
            message: None,
            close_sent: false,
            done: false,
        }
    }

    /// Consumes the client's frames at the front of `input`: appends their unmasked payload
    /// to `mqtt_out`, and pongs and Close frames to `reply`. An incomplete frame header stays
    /// in `input` for the next call.
    pub fn on_bytes(
        &mut self,
        input: &mut BytesMut,
        mqtt_out: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<WsEvent, WsError> {
        if self.done {
            return Ok(WsEvent::Closed);
        }
        let result = self.frames(input, mqtt_out, reply);
        if let Err(e) = result {
            self.done = true;
            if !self.close_sent {
                self.close_sent = true;
                encode_close(e.code(), e.to_string().as_bytes(), reply);
            }
        }
        result
    }

    /// Starts the closing handshake from the server side (e.g. 1000 after an MQTT
    /// DISCONNECT, 1001 when the broker stops): queues a Close frame. Later client data is
    /// dropped; the client's Close ends the connection with `WsEvent::Closed`.
    pub fn close(&mut self, code: CloseCode, reply: &mut BytesMut) {
        if !self.close_sent && !self.done {
            self.close_sent = true;
            encode_close(code, b"", reply);
        }
    }

    fn frames(
        &mut self,
        input: &mut BytesMut,
        mqtt_out: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<WsEvent, WsError> {
        loop {
            if let Some(payload) = self.payload.as_mut() {
                let n = input
                    .len()
                    .min(usize::try_from(payload.remaining).unwrap_or(usize::MAX));
                if n == 0 {
                    return Ok(WsEvent::Open);
                }
                let chunk = input.split_to(n);
                if !self.close_sent {
                    let start = mqtt_out.len();
                    mqtt_out.extend_from_slice(&chunk);
                    unmask(
                        mqtt_out.get_mut(start..).unwrap_or_default(),
                        payload.mask,
                        payload.offset,
                    );
                }
                payload.remaining -= n as u64;
                payload.offset = (payload.offset + n % 4) % 4;
                if payload.remaining == 0 {
                    if payload.fin {
                        self.message = None;
                    }
                    self.payload = None;
                }
                continue;
            }
            let Some(header) = decode_header(input)? else {
                return Ok(WsEvent::Open);
            };
            if header.opcode & 0x8 != 0 {
                // Control frames are handled whole; wait for the rest of this one.
                let Some(frame) = input.get(..header.size + header.len as usize) else {
                    return Ok(WsEvent::Open);
                };
                let mut body = [0u8; MAX_CONTROL_PAYLOAD];
                let body = body.get_mut(..header.len as usize).unwrap_or_default();
                body.copy_from_slice(frame.get(header.size..).unwrap_or_default());
                unmask(body, header.mask, 0);
                input.advance(header.size + body.len());
                if self.control(header.opcode, body, reply)? == WsEvent::Closed {
                    self.done = true;
                    return Ok(WsEvent::Closed);
                }
                continue;
            }
            self.start_data(&header)?;
            input.advance(header.size);
            if header.len == 0 {
                if header.fin {
                    self.message = None;
                }
                continue;
            }
            self.payload = Some(Payload {
                remaining: header.len,
                mask: header.mask,
                offset: 0,
                fin: header.fin,
            });
        }
    }

    /// The rules of section 5.4 for a data frame about to stream, and the size limits.
    fn start_data(&mut self, header: &Header) -> Result<(), WsError> {
        let so_far = match (header.opcode, self.message) {
            (OP_TEXT, _) => return Err(WsError::TextFrame),
            (OP_BINARY, None) => 0,
            (OP_BINARY, Some(_)) => return Err(WsError::ExpectedContinuation),
            (OP_CONTINUATION, Some(so_far)) => so_far,
            (OP_CONTINUATION, None) => return Err(WsError::UnexpectedContinuation),
            (op, _) => return Err(WsError::ReservedOpcode(op)),
        };
        let total = so_far.saturating_add(header.len);
        if header.len > self.limits.max_frame || total > self.limits.max_message {
            return Err(WsError::TooBig);
        }
        self.message = (!header.fin).then_some(total);
        Ok(())
    }

    /// A complete control frame: ping -> pong (5.5.2, 5.5.3), pong ignored, close -> echo
    /// (5.5.1).
    fn control(
        &mut self,
        opcode: u8,
        body: &[u8],
        reply: &mut BytesMut,
    ) -> Result<WsEvent, WsError> {
        match opcode {
            OP_PING => {
                if !self.close_sent {
                    encode_frame(OP_PONG, body, reply);
                }
                Ok(WsEvent::Open)
            }
            OP_PONG => Ok(WsEvent::Open),
            OP_CLOSE => {
                let code = match body {
                    [] => None,
                    [_] => return Err(WsError::CloseBodyTooShort),
                    [hi, lo, reason @ ..] => {
                        let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                        if !code.allowed_on_the_wire() {
                            return Err(WsError::BadCloseCode(code.0));
                        }
                        if std::str::from_utf8(reason).is_err() {
                            return Err(WsError::CloseReasonNotUtf8);
                        }
                        Some(code)
                    }
                };
                if !self.close_sent {
                    self.close_sent = true;
                    match code {
                        Some(code) => encode_close(code, b"", reply),
                        None => encode_frame(OP_CLOSE, b"", reply),
                    }
                }
                Ok(WsEvent::Closed)
            }
            op => Err(WsError::ReservedOpcode(op)),
        }
    }
}

/// Decodes and checks the header at the front of `input` without consuming it; `None`
/// until all of it has arrived.
fn decode_header(input: &[u8]) -> Result<Option<Header>, WsError> {
    let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    if matches!(opcode, 0x3..=0x7 | 0xB..=0xF) {
        return Err(WsError::ReservedOpcode(opcode));
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::Unmasked);
    }
    let control = opcode & 0x8 != 0;
    if control && !fin {
        return Err(WsError::FragmentedControl);
    }
    let (len, at) = match b1 & 0x7F {
        126 => match input.get(2..4) {
            None => return Ok(None),
            Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
            Some(_) => return Ok(None),
        },
        127 => match input.get(2..10).map(<[u8; 8]>::try_from) {
            None => return Ok(None),
            Some(Ok(bytes)) => (u64::from_be_bytes(bytes), 10),
            Some(Err(_)) => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    // The minimal encoding is a MUST of section 5.2, and the top bit of a 64-bit length is 0.
    let minimal = match at {
        4 => len >= 126,
        10 => len > 0xFFFF && len >> 63 == 0,
        _ => true,
    };
    if !minimal {
        return Err(WsError::BadLength);
    }
    if control && len > MAX_CONTROL_PAYLOAD as u64 {
        return Err(WsError::ControlTooLong);
    }
    let Some(Ok(mask)) = input.get(at..at + 4).map(<[u8; 4]>::try_from) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        len,
        mask,
        size: at + 4,
    }))
}

/// XORs `buf` with the masking key, `offset` (< 4) bytes into the payload (section 5.3). Eight
/// bytes at a time: payloads are MQTT packets, often kilobytes.
fn unmask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(offset + i) % 4];
    }
    let word = u64::from_ne_bytes(key);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
    }
    // The remainder starts a multiple of 8 (so of 4) bytes in: the key lines up again.
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// One unmasked, final server frame (section 5.1: server frames are never masked).
fn encode_frame(opcode: u8, payload: &[u8], out: &mut BytesMut) {
    out.reserve(payload.len() + 10);
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.put_u8(n as u8),
        n @ 126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
}

/// Outbound MQTT bytes as one binary frame.
pub fn encode_binary(payload: &[u8], out: &mut BytesMut) {
    encode_frame(OP_BINARY, payload, out);
}

/// A Close frame with `code` and a reason, cut to fit a control frame at a character boundary.
pub fn encode_close(code: CloseCode, reason: &[u8], out: &mut BytesMut) {
    let mut body = [0u8; MAX_CONTROL_PAYLOAD];
    let [hi, lo] = code.0.to_be_bytes();
    body[0] = hi;
    body[1] = lo;
    let mut take = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while take > 0 && std::str::from_utf8(reason.get(..take).unwrap_or_default()).is_err() {
        take -= 1;
    }
    let reason = reason.get(..take).unwrap_or_default();
    if let Some(dest) = body.get_mut(2..2 + take) {
        dest.copy_from_slice(reason);
    }
    encode_frame(OP_CLOSE, body.get(..2 + take).unwrap_or_default(), out);
}

#[cfg(test)]
mod tests;
