//! WebSockets for the suites: a raw client side of RFC 6455 over any [`Wire`] (plain TCP or
//! TLS): the upgrade request, masked frames of any shape (fragmented, several packets in
//! one, malformed on purpose), and the server's frames read back; [`WsStream`] is itself a
//! [`Wire`], so a [`RawClient`] can speak MQTT over it. rumqttc over ws:// and wss:// too.

use super::{Issued, PROMPT, RawClient, Wire};
use bytes::BytesMut;
use ringmq::protocol::{Packet, ProtocolVersion, decode};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The upgrade request a well-behaved client sends (RFC 6455 section 4.1), for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
}

/// A client frame: FIN as given, masked with a fixed key (RFC 6455 section 5.2).
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xFA, 0x21, 0x3D];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A WebSocket connection's client side over `W`.
#[derive(Debug)]
pub struct WsStream<W: Wire> {
    pub inner: W,
    /// Server bytes not decoded yet.
    raw: Vec<u8>,
    /// Binary payload bytes not read yet.
    data: Vec<u8>,
    /// The code of the server's Close frame, once one came.
    pub closed_with: Option<u16>,
    /// The payloads of the pongs that came.
    pub pongs: Vec<Vec<u8>>,
}

impl<W: Wire> WsStream<W> {
    /// Sends the upgrade request and reads the response head: `Ok` with the stream after a
    /// 101, `Err` with the whole response (e.g. a 400 and its body) otherwise.
    pub fn upgrade(mut inner: W, request: &str) -> Result<Self, String> {
        inner
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let _ = inner.tcp().set_read_timeout(Some(PROMPT));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match inner.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        if !text.starts_with("HTTP/1.1 101 ") {
            let mut rest = Vec::new();
            let _ = inner.read_to_end(&mut rest);
            return Err(format!("{text}{}", String::from_utf8_lossy(&rest)));
        }
        assert!(
            text.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
            "subprotocol mqtt: {text}"
        );
        Ok(Self {
            inner,
            raw: Vec::new(),
            data: Vec::new(),
            closed_with: None,
            pongs: Vec::new(),
        })
    }

    /// Sends bytes as they are (frames made with [`client_frame`], or garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.inner.write_all(bytes);
    }

    /// The next whole server frame: (opcode, payload). `None` at the end of the stream, on
    /// a read error or after the read timeout ([`PROMPT`]).
    pub fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        self.next_frame().ok().flatten()
    }

    /// `Ok(None)` at the end of the stream; a read error (a timeout) as it is.
    fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((frame, used)) = server_frame(&self.raw) {
                self.raw.drain(..used);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.inner.read(&mut chunk)? {
                0 => return Ok(None),
                n => self.raw.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until one MQTT packet is whole (binary frames only; a pong is noted, a
    /// Close ends it).
    pub fn read_packet(&mut self, version: ProtocolVersion) -> Option<Packet> {
        let deadline = Instant::now() + PROMPT;
        let mut buf = BytesMut::from(&self.data[..]);
        self.data.clear();
        loop {
            if let Ok(Some(packet)) = decode(&mut buf, version, usize::MAX) {
                self.data = buf.to_vec();
                return Some(packet);
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.read_frame()? {
                (OP_BINARY | OP_CONTINUATION, payload) => buf.extend_from_slice(&payload),
                (OP_PONG, payload) => self.pongs.push(payload),
                (OP_CLOSE, payload) => {
                    self.closed_with = code_of(&payload);
                    return None;
                }
                (op, _) => panic!("unexpected server frame opcode {op:#x}"),
            }
        }
    }

    /// Reads until the server's Close frame and the end of the stream; returns the Close
    /// frame's code (`None`: the stream ended without one).
    pub fn expect_close(&mut self) -> Option<u16> {
        while let Some((op, payload)) = self.read_frame() {
            match op {
                OP_CLOSE => {
                    self.closed_with = code_of(&payload);
                    // After its Close the server closes the TCP connection (RFC 6455 7.1.1).
                    while self.read_frame().is_some() {}
                    return self.closed_with;
                }
                OP_PONG => self.pongs.push(payload),
                _ => {}
            }
        }
        self.closed_with
    }
}

fn code_of(payload: &[u8]) -> Option<u16> {
    match payload {
        [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

/// A whole unmasked server frame at the front of `buf`: ((opcode, payload), bytes used).
fn server_frame(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(
        b1 & 0x80,
        0,
        "server frames are never masked (RFC 6455 5.1)"
    );
    let (len, at) = match b1 & 0x7F {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some(((b0 & 0x0F, payload), at + len))
}

impl<W: Wire> Read for WsStream<W> {
    /// Binary payload bytes; 0 once the server sent Close or the stream ended.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.data.is_empty() {
            match self.next_frame()? {
                Some((OP_BINARY | OP_CONTINUATION, payload)) => self.data = payload,
                Some((OP_PONG, payload)) => self.pongs.push(payload),
                Some((OP_CLOSE, payload)) => {
                    self.closed_with = code_of(&payload);
                    return Ok(0);
                }
                Some(_) => {}
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data.drain(..n);
        Ok(n)
    }
}

impl<W: Wire> Write for WsStream<W> {
    /// Each write is one masked binary frame.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.inner
            .write_all(&client_frame(OP_BINARY, true, bytes, true))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Wire> Wire for WsStream<W> {
    fn tcp(&self) -> &TcpStream {
        self.inner.tcp()
    }
}

impl RawClient {
    /// An MQTT client over WebSocket (upgrade done) on `inner`, no MQTT yet.
    pub fn websocket<W: Wire + 'static>(inner: W, version: ProtocolVersion, name: &str) -> Self {
        let ws = WsStream::upgrade(inner, &upgrade_request("/mqtt"))
            .unwrap_or_else(|e| panic!("{name}: upgrade refused: {e}"));
        Self::from_wire(Box::new(ws), version, name)
    }
}

/// rumqttc 3.1.1 options for `client_id` over ws:// (no `ca_pem`) or wss:// to `addr`.
pub fn rumqtt_ws(
    addr: SocketAddr,
    client_id: &str,
    ca_pem: Option<&str>,
    client: Option<&Issued>,
) -> rumqttc::MqttOptions {
    let scheme = if ca_pem.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{addr}/mqtt");
    let mut options = rumqttc::MqttOptions::new(client_id, url, addr.port());
    options.set_keep_alive(std::time::Duration::from_secs(5));
    options.set_transport(match ca_pem {
        None => rumqttc::Transport::Ws,
        Some(ca) => rumqttc::Transport::wss_with_config(rumqttc::TlsConfiguration::Simple {
            ca: ca.as_bytes().to_vec(),
            alpn: None,
            client_auth: client.map(|c| {
                (
                    c.cert_pem.clone().into_bytes(),
                    c.key_pem.clone().into_bytes(),
                )
            }),
        }),
    });
    options
}
