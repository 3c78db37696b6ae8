//! The WebSocket client side of a load connection (RFC 6455): the upgrade response, server
//! frames streamed into the MQTT bytes (a packet may span frames), pongs, and masked binary
//! frames out. The broker's own codec (`ringmq::ws`) is its server side.

use bytes::{Buf, BufMut, BytesMut};
use std::io;

/// The longest WebSocket upgrade response accepted.
const MAX_RESPONSE: usize = 8 * 1024;

/// The WebSocket client side: the upgrade response, then server frames (never masked).
#[derive(Debug)]
pub(super) struct WsClient {
    upgraded: bool,
    /// Payload bytes left of the data frame streaming through.
    payload_left: u64,
    /// xorshift32 state for the masking keys.
    seed: u32,
}

impl WsClient {
    /// `seed` varies the masking keys from connection to connection.
    pub(super) fn new(seed: u32) -> Self {
        Self {
            upgraded: false,
            payload_left: 0,
            seed: seed | 1,
        }
    }

    /// Takes what it can of `input`: MQTT bytes to `mqtt`, pongs to `reply`.
    pub(super) fn decode(
        &mut self,
        input: &mut BytesMut,
        mqtt: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> io::Result<()> {
        if !self.upgraded {
            let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
                if input.len() > MAX_RESPONSE {
                    return Err(io::Error::other("WebSocket upgrade response too long"));
                }
                return Ok(());
            };
            if !input.starts_with(b"HTTP/1.1 101 ") {
                let line = input[..].split(|&b| b == b'\r').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line).into_owned();
                return Err(io::Error::other(format!(
                    "WebSocket upgrade refused: {line}"
                )));
            }
            input.advance(end + 4);
            self.upgraded = true;
        }
        loop {
            if self.payload_left > 0 {
                let n = input
                    .len()
                    .min(usize::try_from(self.payload_left).unwrap_or(usize::MAX));
                if n == 0 {
                    return Ok(());
                }
                mqtt.extend_from_slice(&input[..n]);
                input.advance(n);
                self.payload_left -= n as u64;
                continue;
            }
            let Some((opcode, len, header)) = frame_header(input)? else {
                return Ok(());
            };
            match opcode {
                // Continuation or binary: stream the payload through.
                0x0 | 0x2 => {
                    input.advance(header);
                    self.payload_left = len;
                }
                // Ping: answer with a pong of the same payload (control frames are small).
                0x9 | 0xA => {
                    let total = header + len as usize;
                    if input.len() < total {
                        return Ok(());
                    }
                    if opcode == 0x9 {
                        let payload = input[header..total].to_vec();
                        self.frame(0xA, &payload, reply);
                    }
                    input.advance(total);
                }
                0x8 => return Err(io::ErrorKind::ConnectionReset.into()),
                op => return Err(io::Error::other(format!("WebSocket frame opcode {op:#x}"))),
            }
        }
    }

    /// One masked, final client frame (RFC 6455 5.2, 5.3).
    pub(super) fn frame(&mut self, opcode: u8, payload: &[u8], out: &mut BytesMut) {
        out.reserve(payload.len() + 14);
        out.put_u8(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => out.put_u8(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.put_u8(0x80 | 126);
                out.put_u16(n as u16);
            }
            n => {
                out.put_u8(0x80 | 127);
                out.put_u64(n as u64);
            }
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        let key = self.seed.to_be_bytes();
        out.put_slice(&key);
        let start = out.len();
        out.put_slice(payload);
        let word = u64::from_ne_bytes([
            key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
        ]);
        let body = &mut out[start..];
        let mut chunks = body.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
        for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
            *b ^= k;
        }
    }
}

/// A server frame header at the front of `input`: (opcode, payload length, header bytes).
fn frame_header(input: &[u8]) -> io::Result<Option<(u8, u64, usize)>> {
    let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(io::Error::other("a masked server frame (RFC 6455 5.1)"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match input.get(2..4) {
            Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
            _ => return Ok(None),
        },
        127 => match input.get(2..10).map(<[u8; 8]>::try_from) {
            Some(Ok(bytes)) => (u64::from_be_bytes(bytes), 10),
            _ => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    Ok(Some((b0 & 0x0F, len, at)))
}
