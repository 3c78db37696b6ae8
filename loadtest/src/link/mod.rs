//! How a load client's bytes reach the broker: plain TCP, TLS (rustls' `ClientConnection`
//! driven over our own buffers), WebSocket framing (masked binary frames, RFC 6455 client
//! side), or WebSocket inside TLS. The same seam as the broker's `conn::Transport`, client
//! side: a sans-IO `Transport` between the socket and the MQTT bytes.
//!
//! `Conn` is a connection before its split (connect, CONNECT/CONNACK, SUBSCRIBE: one task);
//! `into_split` gives a `ConnReader` and a `ConnWriter` for two tasks, sharing the one
//! `Transport` as `Rc<RefCell<_>>`, borrowed only between awaits. A plain connection has no
//! transport: reads and writes go straight to the socket, as before. What the transport must
//! say on its own after the split (a pong) goes out with the writer's next write.

mod ws;

use crate::error::LoadError;
use bytes::{Buf, BufMut, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use ws::WsClient;

/// What every connection of a run goes through.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub tls: Option<TlsClient>,
    /// WebSocket, upgrading at this path (e.g. `/mqtt`).
    pub ws_path: Option<String>,
}

/// The TLS side of a run's connections.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl Wire {
    /// TLS trusting the CA certificates in `cafile` (PEM), checking the broker's certificate
    /// against `server_name` (a DNS name or an IP address). Session resumption only with
    /// `resume`: by default every connection does a full handshake.
    pub fn tls(cafile: &Path, server_name: &str, resume: bool) -> Result<TlsClient, LoadError> {
        let file = |source| LoadError::File {
            path: cafile.display().to_string(),
            source,
        };
        let pem = std::fs::read(cafile).map_err(file)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| file(io::Error::other(e.to_string())))?;
            roots
                .add(cert)
                .map_err(|e| file(io::Error::other(e.to_string())))?;
        }
        if roots.is_empty() {
            return Err(file(io::Error::other("no PEM certificate in it")));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::Usage(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| LoadError::Usage(format!("--server-name {server_name:?}: {e}")))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && self.ws_path.is_none()
    }

    /// `mqtt`, `mqtts`, `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        match (self.tls.is_some(), self.ws_path.is_some()) {
            (false, false) => "mqtt",
            (true, false) => "mqtts",
            (false, true) => "ws",
            (true, true) => "wss",
        }
    }
}

/// The byte transformers of one connection.
#[derive(Debug)]
pub struct Transport {
    tls: Option<Box<ClientConnection>>,
    ws: Option<WsClient>,
    /// Socket bytes not taken yet.
    input: BytesMut,
    /// Bytes for the socket.
    output: BytesMut,
    /// Under TLS: decrypted bytes (WebSocket frames) not taken yet, and WebSocket bytes on
    /// their way into TLS.
    frames: BytesMut,
    scratch: BytesMut,
}

impl Transport {
    /// The transport of `wire` for a connection to `host`; the WebSocket upgrade request is
    /// queued first (MQTT may follow it at once: the broker reads the frames after it).
    fn new(wire: &Wire, host: &str, seed: u32) -> Result<Self, LoadError> {
        let tls = match &wire.tls {
            None => None,
            Some(t) => Some(Box::new(
                ClientConnection::new(Arc::clone(&t.config), t.server_name.clone())
                    .map_err(|e| LoadError::Usage(format!("TLS: {e}")))?,
            )),
        };
        let mut this = Self {
            tls,
            ws: None,
            input: BytesMut::new(),
            output: BytesMut::new(),
            frames: BytesMut::new(),
            scratch: BytesMut::new(),
        };
        if let Some(tls) = &mut this.tls {
            // The ClientHello.
            flush_tls(tls, &mut this.output);
        }
        if let Some(path) = &wire.ws_path {
            this.ws = Some(WsClient::new(seed));
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: cmluZ21xLWxvYWQtd3MtMQ==\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
            );
            this.lower(request.as_bytes())
                .map_err(|e| LoadError::Usage(e.to_string()))?;
        }
        Ok(this)
    }

    /// `bytes` below the WebSocket layer: into TLS, or straight out.
    fn lower(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => {
                self.output.extend_from_slice(bytes);
                Ok(())
            }
            Some(tls) => {
                tls.writer().write_all(bytes)?;
                flush_tls(tls, &mut self.output);
                Ok(())
            }
        }
    }

    /// Takes the socket bytes in `self.input` and appends the MQTT bytes to `mqtt`.
    fn decode(&mut self, mqtt: &mut BytesMut) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            if let Some(ws) = &mut self.ws {
                return ws.decode(&mut self.input, mqtt, &mut self.output);
            }
            mqtt.extend_from_slice(&self.input);
            self.input.clear();
            return Ok(());
        };
        let plain = if self.ws.is_some() {
            &mut self.frames
        } else {
            &mut *mqtt
        };
        while !self.input.is_empty() {
            let mut unread: &[u8] = &self.input;
            let n = tls.read_tls(&mut unread)?;
            self.input.advance(n);
            let state = tls.process_new_packets().map_err(io::Error::other);
            flush_tls(tls, &mut self.output);
            let state = state?;
            let mut reader = tls.reader();
            loop {
                let taken = match reader.fill_buf() {
                    Ok([]) => break,
                    Ok(chunk) => {
                        plain.extend_from_slice(chunk);
                        chunk.len()
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                };
                reader.consume(taken);
            }
            if state.peer_has_closed() {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            if n == 0 {
                break;
            }
        }
        if let Some(ws) = &mut self.ws {
            ws.decode(&mut self.frames, mqtt, &mut self.scratch)?;
            if !self.scratch.is_empty() {
                tls.writer().write_all(&self.scratch)?;
                self.scratch.clear();
                flush_tls(tls, &mut self.output);
            }
        }
        Ok(())
    }

    /// Appends `mqtt` to the output, framed and encrypted as the wire needs.
    fn encode(&mut self, mqtt: &[u8]) -> io::Result<()> {
        match (&mut self.tls, &mut self.ws) {
            (None, None) => self.output.extend_from_slice(mqtt),
            (None, Some(ws)) => ws.frame(0x2, mqtt, &mut self.output),
            (Some(tls), None) => write_tls(tls, mqtt, &mut self.output)?,
            (Some(tls), Some(ws)) => {
                ws.frame(0x2, mqtt, &mut self.scratch);
                let written = write_tls(tls, &self.scratch, &mut self.output);
                self.scratch.clear();
                written?;
            }
        }
        Ok(())
    }
}

/// Encrypts `plain` into `out`, within rustls' buffer limit at a time.
fn write_tls(tls: &mut ClientConnection, mut plain: &[u8], out: &mut BytesMut) -> io::Result<()> {
    while !plain.is_empty() {
        let n = tls.writer().write(plain)?;
        flush_tls(tls, out);
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        plain = &plain[n..];
    }
    Ok(())
}

fn flush_tls(tls: &mut ClientConnection, out: &mut BytesMut) {
    let mut writer = out.writer();
    while tls.wants_write() {
        match tls.write_tls(&mut writer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Reading MQTT bytes from a connection.
pub trait ReadBytes {
    /// Reads once or more until MQTT bytes arrived, appending them to `rbuf` (which has at
    /// least `min_spare` free bytes on a plain connection); `Ok(0)` at the end of the stream.
    fn read_into(
        &mut self,
        rbuf: &mut BytesMut,
        min_spare: usize,
    ) -> impl Future<Output = io::Result<usize>>;
}

/// Writing MQTT bytes to a connection.
pub trait WriteBytes {
    /// Writes all of `buf` (transformed as the wire needs); hands `buf` back for reuse.
    fn write_bytes(&mut self, buf: BytesMut) -> impl Future<Output = (io::Result<()>, BytesMut)>;
}

/// A connection before its split.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    transport: Option<Transport>,
}

impl Conn {
    /// A connected socket with the transport `wire` asks for (`host` names the broker in the
    /// WebSocket request; `seed` varies the masking keys).
    pub fn new(stream: TcpStream, wire: &Wire, host: &str, seed: u32) -> Result<Self, LoadError> {
        let transport = match wire.is_plain() {
            true => None,
            false => Some(Transport::new(wire, host, seed)?),
        };
        Ok(Self { stream, transport })
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream.set_nodelay(on)
    }

    pub fn into_split(self) -> (ConnReader, ConnWriter) {
        let (reader, writer) = self.stream.into_split();
        let transport = self.transport.map(|t| Rc::new(RefCell::new(t)));
        (
            ConnReader {
                half: reader,
                transport: transport.clone(),
            },
            ConnWriter {
                half: writer,
                transport,
                wire: BytesMut::new(),
            },
        )
    }

    async fn flush(&mut self) -> io::Result<()> {
        let Some(t) = &mut self.transport else {
            return Ok(());
        };
        if t.output.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut t.output);
        let (res, mut out) = self.stream.write_all(out).await;
        out.clear();
        if let Some(t) = &mut self.transport {
            t.output = out;
        }
        res.map(|_| ())
    }
}

impl ReadBytes for Conn {
    async fn read_into(&mut self, rbuf: &mut BytesMut, min_spare: usize) -> io::Result<usize> {
        if self.transport.is_none() {
            return read_plain(&mut self.stream, rbuf).await;
        }
        loop {
            // What the transport says first (the TLS handshake) must go before we wait.
            self.flush().await?;
            let Some(t) = &mut self.transport else {
                return Ok(0);
            };
            let mut wire = std::mem::take(&mut t.input);
            if wire.capacity() - wire.len() < min_spare / 4 {
                wire.reserve(min_spare);
            }
            if read_plain(&mut self.stream, &mut wire).await? == 0 {
                return Ok(0);
            }
            let Some(t) = &mut self.transport else {
                return Ok(0);
            };
            t.input = wire;
            let before = rbuf.len();
            t.decode(rbuf)?;
            self.flush().await?;
            if rbuf.len() > before {
                return Ok(rbuf.len() - before);
            }
        }
    }
}

impl WriteBytes for Conn {
    async fn write_bytes(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
        let Some(t) = &mut self.transport else {
            let (res, buf) = self.stream.write_all(buf).await;
            return (res.map(|_| ()), buf);
        };
        if let Err(e) = t.encode(&buf) {
            return (Err(e), buf);
        }
        (self.flush().await, buf)
    }
}

/// Reads once into the spare room of `buf`.
async fn read_plain<R: AsyncReadRent>(stream: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    let owned = std::mem::take(buf);
    let start = owned.len();
    let end = owned.capacity();
    let (result, slice) = stream.read(owned.slice_mut(start..end)).await;
    *buf = slice.into_inner();
    result
}

/// The reading half of a split connection.
#[derive(Debug)]
pub struct ConnReader {
    half: OwnedReadHalf<TcpStream>,
    transport: Option<Rc<RefCell<Transport>>>,
}

impl ReadBytes for ConnReader {
    async fn read_into(&mut self, rbuf: &mut BytesMut, min_spare: usize) -> io::Result<usize> {
        let Some(t) = &self.transport else {
            return read_plain(&mut self.half, rbuf).await;
        };
        loop {
            let mut wire = std::mem::take(&mut t.borrow_mut().input);
            if wire.capacity() - wire.len() < min_spare / 4 {
                wire.reserve(min_spare);
            }
            let n = read_plain(&mut self.half, &mut wire).await;
            let mut transport = t.borrow_mut();
            transport.input = wire;
            if n? == 0 {
                return Ok(0);
            }
            let before = rbuf.len();
            transport.decode(rbuf)?;
            if rbuf.len() > before {
                return Ok(rbuf.len() - before);
            }
        }
    }
}

/// The writing half of a split connection.
#[derive(Debug)]
pub struct ConnWriter {
    half: OwnedWriteHalf<TcpStream>,
    transport: Option<Rc<RefCell<Transport>>>,
    /// The transformed bytes being written.
    wire: BytesMut,
}

impl WriteBytes for ConnWriter {
    async fn write_bytes(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
        let Some(t) = &self.transport else {
            let (res, buf) = self.half.write_all(buf).await;
            return (res.map(|_| ()), buf);
        };
        let out = {
            let mut t = t.borrow_mut();
            if let Err(e) = t.encode(&buf) {
                return (Err(e), buf);
            }
            std::mem::swap(&mut t.output, &mut self.wire);
            std::mem::take(&mut self.wire)
        };
        let (res, mut out) = self.half.write_all(out).await;
        out.clear();
        self.wire = out;
        (res.map(|_| ()), buf)
    }
}
