//! A bridge's way to its remote: TCP connect, the TLS handshake (rustls client, sans-IO over
//! our buffers), CONNECT (with Mosquitto's private protocol level when asked) and CONNACK.
//! One task does it all, so a read and a write never overlap; the caller bounds it in time.

use super::core::SharedCore;
use crate::config::{BridgeConfig, BridgeProtocol};
use crate::protocol::{
    self, ConnAck, Connect, DecodeError, LastWill, Packet, Properties, ProtocolVersion, Publish,
    QoS,
};
use crate::tls::TlsClient;
use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::ClientConfig;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why an attempt failed before CONNACK.
#[derive(Debug)]
pub(super) enum Failure {
    Io(std::io::Error),
    Tls(String),
    /// The remote closed before answering.
    Closed,
    Malformed(DecodeError),
    /// The first packet was not a CONNACK.
    NotConnAck,
    /// CONNACK with a failure code.
    Refused(ConnAck),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Closed => f.write_str("the remote closed the connection before CONNACK"),
            Self::Malformed(e) => write!(f, "malformed answer to CONNECT: {e}"),
            Self::NotConnAck => f.write_str("the remote answered CONNECT with something else"),
            Self::Refused(ack) => write!(f, "CONNACK {:?}", ack.reason),
        }
    }
}

/// A connected remote: its socket, the CONNACK, and what was read after it (plaintext).
#[derive(Debug)]
pub(super) struct Connected {
    pub stream: TcpStream,
    pub connack: ConnAck,
    pub leftover: BytesMut,
}

pub(super) fn version(config: &BridgeConfig) -> ProtocolVersion {
    match config.protocol {
        BridgeProtocol::Mqtt5 => ProtocolVersion::V5,
        BridgeProtocol::Mqtt311 => ProtocolVersion::V4,
    }
}

/// The bridge's CONNECT to the remote. A kept session (clean_start = false) must outlive the
/// connection: 5.0 asks for a Session Expiry Interval that never ends.
fn remote_connect(config: &BridgeConfig, private: bool, receive_maximum: u16) -> Option<Connect> {
    let version = version(config);
    let mut properties = Properties::default();
    if version == ProtocolVersion::V5 {
        if !config.clean_start {
            properties.session_expiry_interval = Some(u32::MAX);
        }
        properties.receive_maximum = Some(receive_maximum);
    }
    let mqtt = |s: &String| s.as_str().try_into().ok();
    Some(Connect {
        version,
        // Mosquitto's try_private: 3.1.1 level 0x84 (the codec ignores it for 5.0).
        bridge: private,
        clean_start: config.clean_start,
        keep_alive: config.keepalive,
        client_id: config.client_id.as_str().try_into().ok()?,
        // Mosquitto's notifications: the remote keeps the bridge's state too, and says "0"
        // itself when the link dies without a DISCONNECT.
        will: config
            .notifications
            .then(|| state_will(&config.name))
            .flatten(),
        username: config.username.as_ref().and_then(mqtt),
        password: config
            .password
            .as_ref()
            .map(|p| p.clone().into_bytes().into()),
        properties,
    })
}

fn state_will(name: &str) -> Option<LastWill> {
    Some(LastWill {
        topic: crate::bridge::state_topic(name)?,
        payload: Bytes::from_static(b"0"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    })
}

/// The retained state the remote keeps: "1" while the link is up, "0" once it ends (its
/// will says "0" for a link that dies without a DISCONNECT).
pub(super) fn state_publish(name: &str, up: bool) -> Option<Packet> {
    Some(Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: crate::bridge::state_topic(name)?,
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(if up { b"1" } else { b"0" }),
    }))
}

/// Connects to `addr` and logs in; `private`: with the 0x80 bit in the protocol level. The
/// TLS state, if any, is left in `core`.
pub(super) async fn establish(
    config: &BridgeConfig,
    tls: Option<&Arc<ClientConfig>>,
    addr: SocketAddr,
    private: bool,
    core: &SharedCore,
    max_packet: usize,
) -> Result<Connected, Failure> {
    let mut stream = TcpStream::connect(addr).await.map_err(Failure::Io)?;
    let _ = stream.set_nodelay(true);
    let mut plain = BytesMut::new();
    let mut tls_client = match (tls, &config.tls) {
        (Some(client_config), Some(settings)) => {
            let name = crate::tls::server_name(settings, addr).map_err(Failure::Tls)?;
            let mut hello = BytesMut::new();
            let client = TlsClient::new(Arc::clone(client_config), name, &mut hello)
                .map_err(|e| Failure::Tls(e.to_string()))?;
            write(&mut stream, hello).await?;
            Some(client)
        }
        _ => None,
    };
    if let Some(client) = &mut tls_client {
        while client.is_handshaking() {
            read(&mut stream, Some(client), &mut plain).await?;
        }
    }
    let version = version(config);
    let receive_maximum = core.borrow().session.max_inbound();
    let connect = remote_connect(config, private, receive_maximum).ok_or(Failure::Closed)?;
    let mut bytes = BytesMut::new();
    protocol::encode(&Packet::Connect(Box::new(connect)), version, &mut bytes)
        .map_err(|e| Failure::Tls(format!("CONNECT does not encode: {e:?}")))?;
    let bytes = match &mut tls_client {
        None => bytes,
        Some(client) => {
            let mut records = BytesMut::new();
            client
                .write(&bytes, &mut records)
                .map_err(|e| Failure::Tls(e.to_string()))?;
            records
        }
    };
    write(&mut stream, bytes).await?;
    let connack = loop {
        match protocol::decode(&mut plain, version, max_packet) {
            Ok(Some(Packet::ConnAck(ack))) => break ack,
            Ok(Some(_)) => return Err(Failure::NotConnAck),
            Ok(None) => read(&mut stream, tls_client.as_mut(), &mut plain).await?,
            Err(e) => return Err(Failure::Malformed(e)),
        }
    };
    if connack.reason != protocol::ReasonCode::Success {
        return Err(Failure::Refused(connack));
    }
    core.borrow_mut().tls = tls_client;
    Ok(Connected {
        stream,
        connack,
        leftover: plain,
    })
}

async fn write(stream: &mut TcpStream, bytes: BytesMut) -> Result<(), Failure> {
    let (res, _) = stream.write_all(bytes).await;
    res.map(|_| ()).map_err(Failure::Io)
}

/// Reads once; the plaintext goes to `plain`, and what TLS answers is sent at once.
async fn read(
    stream: &mut TcpStream,
    tls: Option<&mut TlsClient>,
    plain: &mut BytesMut,
) -> Result<(), Failure> {
    let mut wire = BytesMut::with_capacity(4096);
    let (res, slice) = stream.read(wire.slice_mut(0..)).await;
    wire = slice.into_inner();
    match res {
        Ok(0) => return Err(Failure::Closed),
        Ok(_) => {}
        Err(e) => return Err(Failure::Io(e)),
    }
    let Some(client) = tls else {
        plain.extend_from_slice(&wire);
        return Ok(());
    };
    let mut answer = BytesMut::new();
    let closed = client
        .read(&mut wire, plain, &mut answer)
        .map_err(|e| Failure::Tls(e.to_string()));
    if !answer.is_empty() {
        write(stream, answer).await?;
    }
    match closed? {
        true => Err(Failure::Closed),
        false => Ok(()),
    }
}
