//! The WebSocket opening handshake, server side (RFC 6455 section 4.2): parses the client's
//! HTTP/1.1 upgrade request and writes the 101 Switching Protocols response, or the error
//! response to send before closing.
//!
//! Accepted: `GET <any path> HTTP/1.1` with `Host`, `Upgrade: websocket`, `Connection`
//! listing `Upgrade`, `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key` of 16 base64 bytes,
//! and `Sec-WebSocket-Protocol` offering `mqtt` ([MQTT-6.0.0-3]) or `mqttv3.1` (which
//! Mosquitto accepts for old clients). Header names are case-insensitive, and so are the
//! `Upgrade` and `Connection` tokens; subprotocol names are compared exactly. `Origin` is not
//! checked here. Extensions (`Sec-WebSocket-Extensions`) are never accepted, so the frames
//! that follow carry no RSV bits.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Buf, BytesMut};
use sha1::{Digest, Sha1};
use std::fmt;

/// The request, headers included, must fit in this many bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// RFC 6455 section 1.3: appended to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol the server selected, echoed in `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subprotocol {
    /// `mqtt`: MQTT 3.1.1 and 5.0 [MQTT-6.0.0-4].
    Mqtt,
    /// `mqttv3.1`: what MQTT 3.1 clients offered before `mqtt` was registered.
    MqttV31,
}

impl Subprotocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::MqttV31 => "mqttv3.1",
        }
    }
}

/// A request that was upgraded; the 101 response is in the reply buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub subprotocol: Subprotocol,
}

/// Why the upgrade was refused; the error response is in the reply buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// No end of headers within [`MAX_REQUEST`] bytes.
    TooLarge,
    /// Not `METHOD SP target SP version`.
    BadRequestLine,
    /// RFC 6455 4.1 item 2: the method must be GET.
    NotGet,
    /// RFC 6455 4.1 item 2: HTTP/1.1.
    NotHttp11,
    /// A header line that is not `name: value` (RFC 7230 3.2), or obsolete line folding.
    BadHeader,
    /// RFC 6455 4.2.1 item 2: exactly one Host.
    Host,
    /// RFC 6455 4.2.1 item 3: Upgrade must include `websocket`.
    NotWebSocket,
    /// RFC 6455 4.2.1 item 4: Connection must include `Upgrade`.
    NoConnectionUpgrade,
    /// RFC 6455 4.2.1 item 5: exactly one Sec-WebSocket-Key, base64 of 16 bytes.
    Key,
    /// RFC 6455 4.2.1 item 6: Sec-WebSocket-Version must be 13 (answered with 426).
    Version,
    /// [MQTT-6.0.0-3]: the client must offer the `mqtt` subprotocol.
    NoMqttSubprotocol,
}

impl HandshakeError {
    /// The HTTP status of the response sent for this error.
    pub fn status(self) -> u16 {
        match self {
            Self::Version => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "[RFC 6455 4.2.1] request headers over 8 KiB",
            Self::BadRequestLine => "[RFC 7230 3.1.1] malformed request line",
            Self::NotGet => "[RFC 6455 4.2.1] method is not GET",
            Self::NotHttp11 => "[RFC 6455 4.2.1] version is not HTTP/1.1",
            Self::BadHeader => "[RFC 7230 3.2] malformed header line",
            Self::Host => "[RFC 6455 4.2.1] no single Host header",
            Self::NotWebSocket => "[RFC 6455 4.2.1] Upgrade does not include websocket",
            Self::NoConnectionUpgrade => "[RFC 6455 4.2.1] Connection does not include Upgrade",
            Self::Key => "[RFC 6455 4.2.1] no single Sec-WebSocket-Key of 16 base64 bytes",
            Self::Version => "[RFC 6455 4.2.2] Sec-WebSocket-Version is not 13",
            Self::NoMqttSubprotocol => "[MQTT-6.0.0-3] Sec-WebSocket-Protocol does not offer mqtt",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Reads the upgrade request at the front of `input`.
///
/// - `Ok(None)`: the request is not complete yet; nothing consumed, nothing written.
/// - `Ok(Some(_))`: the request is consumed (bytes after it, the first frames, stay in
///   `input`) and the 101 response is appended to `reply`.
/// - `Err(_)`: the error response is appended to `reply`; send it, then close.
pub fn accept(
    input: &mut BytesMut,
    reply: &mut BytesMut,
) -> Result<Option<Accepted>, HandshakeError> {
    let buf: &[u8] = input;
    let window = buf.get(..MAX_REQUEST).unwrap_or(buf);
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() >= MAX_REQUEST {
            return Err(refuse(HandshakeError::TooLarge, reply));
        }
        return Ok(None);
    };
    // The head with its last line's CRLF, without the blank line that ends it.
    let head = buf.get(..end + 2).unwrap_or_default();
    match parse(head) {
        Ok((key, subprotocol)) => {
            write_101(&accept_key(key), subprotocol, reply);
            input.advance(end + 4);
            Ok(Some(Accepted { subprotocol }))
        }
        Err(e) => Err(refuse(e, reply)),
    }
}

/// Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) (RFC 6455 section 4.2.2 item 5.4).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// The headers the handshake needs, as seen so far.
#[derive(Default)]
struct Seen<'a> {
    hosts: usize,
    keys: usize,
    key: &'a [u8],
    versions: usize,
    version_13: bool,
    websocket: bool,
    connection_upgrade: bool,
    mqtt: bool,
    mqttv31: bool,
}

/// Checks the request head (every line with its CRLF, without the final blank line);
/// returns the key and the chosen subprotocol.
fn parse(head: &[u8]) -> Result<(&[u8], Subprotocol), HandshakeError> {
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r"));
    let request = lines
        .next()
        .flatten()
        .ok_or(HandshakeError::BadRequestLine)?;
    request_line(request)?;
    let mut seen = Seen::default();
    for line in lines {
        // Every line ends in CRLF; a bare LF, or CR inside a line, is malformed.
        let line = line.ok_or(HandshakeError::BadHeader)?;
        header(line, &mut seen)?;
    }
    if seen.hosts != 1 {
        return Err(HandshakeError::Host);
    }
    if !seen.websocket {
        return Err(HandshakeError::NotWebSocket);
    }
    if !seen.connection_upgrade {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if seen.versions != 1 || !seen.version_13 {
        return Err(HandshakeError::Version);
    }
    let key_ok = matches!(BASE64.decode(seen.key), Ok(nonce) if nonce.len() == 16);
    if seen.keys != 1 || !key_ok {
        return Err(HandshakeError::Key);
    }
    let subprotocol = match (seen.mqtt, seen.mqttv31) {
        (true, _) => Subprotocol::Mqtt,
        (false, true) => Subprotocol::MqttV31,
        (false, false) => return Err(HandshakeError::NoMqttSubprotocol),
    };
    Ok((seen.key, subprotocol))
}

/// `GET <target> HTTP/1.1`; any target is accepted.
fn request_line(line: &[u8]) -> Result<(), HandshakeError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HandshakeError::BadRequestLine);
    };
    if method.is_empty() || target.is_empty() || target.iter().any(|b| b.is_ascii_control()) {
        return Err(HandshakeError::BadRequestLine);
    }
    if method != b"GET" {
        return Err(HandshakeError::NotGet);
    }
    if version != b"HTTP/1.1" {
        return Err(HandshakeError::NotHttp11);
    }
    Ok(())
}

/// `field-name ":" OWS field-value OWS` (RFC 7230 3.2).
fn header<'a>(line: &'a [u8], seen: &mut Seen<'a>) -> Result<(), HandshakeError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HandshakeError::BadHeader)?;
    let (name, value) = (line.get(..colon), line.get(colon + 1..));
    let (Some(name), Some(value)) = (name, value) else {
        return Err(HandshakeError::BadHeader);
    };
    // Also refuses obsolete folding (a line starting with a blank) and a blank before ':'.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HandshakeError::BadHeader);
    }
    if value.iter().any(|&b| b != b'\t' && b.is_ascii_control()) {
        return Err(HandshakeError::BadHeader);
    }
    let value = value.trim_ascii();
    let is = |want: &str| name.eq_ignore_ascii_case(want.as_bytes());
    if is("host") {
        seen.hosts += 1;
    } else if is("upgrade") {
        seen.websocket |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"websocket"));
    } else if is("connection") {
        seen.connection_upgrade |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    } else if is("sec-websocket-key") {
        seen.keys += 1;
        seen.key = value;
    } else if is("sec-websocket-version") {
        seen.versions += 1;
        seen.version_13 = value == b"13";
    } else if is("sec-websocket-protocol") {
        for token in tokens(value) {
            seen.mqtt |= token == b"mqtt";
            seen.mqttv31 |= token == b"mqttv3.1";
        }
    }
    Ok(())
}

/// The elements of a comma-separated header list, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// RFC 7230 3.2.6 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn write_101(accept: &str, subprotocol: Subprotocol, reply: &mut BytesMut) {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\
         Sec-WebSocket-Protocol: {}\r\n\r\n",
        subprotocol.name()
    );
    reply.extend_from_slice(response.as_bytes());
}

/// Appends the error response (with the reason as a plain-text body) and hands `e` back.
fn refuse(e: HandshakeError, reply: &mut BytesMut) -> HandshakeError {
    let body = format!("{e}\n");
    let (status, extra) = match e.status() {
        426 => ("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n"),
        _ => ("400 Bad Request", ""),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Connection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    reply.extend_from_slice(response.as_bytes());
    e
}

#[cfg(test)]
mod tests;
