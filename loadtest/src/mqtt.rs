//! MQTT client plumbing on monoio with ringmq's own codec: open a connection (TCP_NODELAY,
//! TLS and WebSocket when asked (`link`), CONNECT, CONNACK), subscribe, fill a large read
//! buffer, write a batch in one call.

use crate::error::LoadError;
use crate::link::{Conn, ReadBytes, Wire, WriteBytes};
use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use ringmq_protocol::{
    ConnAck, Connect, Disconnect, MqttString, Packet, PacketId, Properties, ProtocolVersion,
    Publish, QoS, ReasonCode, Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName,
    decode, encode,
};
use std::net::SocketAddr;
use std::time::Duration;

/// The largest packet the load generator accepts from the broker.
pub const MAX_PACKET: usize = 16 * 1024 * 1024;
/// How long a TCP connect, CONNACK or SUBACK may take before the run gives up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// In MQTT 5.0 a persistent session has to ask for an expiry; an hour outlives any run.
const PERSISTENT_SESSION_EXPIRY_SECS: u32 = 3600;

/// How every client of a run connects.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    /// Plain TCP, TLS, WebSocket, or WebSocket over TLS.
    pub wire: Wire,
    /// The broker's host as given (the WebSocket request's Host).
    pub host: String,
    pub version: ProtocolVersion,
    pub clean: bool,
    pub keepalive: u16,
}

/// An open, accepted MQTT connection and the bytes read past CONNACK.
#[derive(Debug)]
pub struct Session {
    pub stream: Conn,
    pub rbuf: BytesMut,
    pub connack: ConnAck,
}

/// Opens a TCP connection (with TLS and WebSocket if the settings say so), sends CONNECT and
/// waits for a successful CONNACK; the TLS and WebSocket handshakes happen on the way.
pub async fn open(
    settings: &Settings,
    client_id: &str,
    rbuf_capacity: usize,
) -> Result<Session, LoadError> {
    let addr = settings.addr;
    let stream = match monoio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect_addr(addr)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(LoadError::Connect { addr, source }),
        Err(_) => {
            return Err(LoadError::Timeout {
                addr,
                what: "TCP connect",
            });
        }
    };
    stream
        .set_nodelay(true)
        .map_err(|source| io_error(client_id, source))?;
    let seed = client_id.bytes().fold(0x811C_9DC5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let mut stream = Conn::new(stream, &settings.wire, &settings.host, seed)?;
    let mut wbuf = BytesMut::with_capacity(256);
    encode(
        &connect_packet(settings, client_id)?,
        settings.version,
        &mut wbuf,
    )?;
    write_batch(&mut stream, &mut wbuf, client_id).await?;
    let mut rbuf = BytesMut::with_capacity(rbuf_capacity);
    let packet =
        read_packet_timeout(&mut stream, &mut rbuf, settings, client_id, "CONNECT").await?;
    match packet {
        Packet::ConnAck(connack) if connack.reason.is_error() => Err(LoadError::Refused {
            client: client_id.into(),
            what: "CONNECT",
            reason: connack.reason,
        }),
        Packet::ConnAck(connack) => Ok(Session {
            stream,
            rbuf,
            connack,
        }),
        other => Err(unexpected(client_id, &other, "instead of CONNACK")),
    }
}

fn connect_packet(settings: &Settings, client_id: &str) -> Result<Packet, LoadError> {
    let mut properties = Properties::default();
    if settings.version == ProtocolVersion::V5 && !settings.clean {
        properties.session_expiry_interval = Some(PERSISTENT_SESSION_EXPIRY_SECS);
    }
    Ok(Packet::Connect(Box::new(Connect {
        version: settings.version,
        bridge: false,
        clean_start: settings.clean,
        keep_alive: settings.keepalive,
        client_id: mqtt_string(client_id)?,
        will: None,
        username: None,
        password: None,
        properties,
    })))
}

fn mqtt_string(s: &str) -> Result<MqttString, LoadError> {
    MqttString::try_from(s).map_err(|e| LoadError::Usage(format!("invalid string {s:?}: {e:?}")))
}

pub fn topic_name(topic: &str) -> Result<TopicName, LoadError> {
    TopicName::try_from(topic).map_err(|source| LoadError::Topic {
        topic: topic.into(),
        source,
    })
}

pub fn topic_filter(filter: &str) -> Result<TopicFilter, LoadError> {
    TopicFilter::try_from(filter).map_err(|source| LoadError::Topic {
        topic: filter.into(),
        source,
    })
}

/// Subscribes to `filter` and waits for a SUBACK that grants it.
pub async fn subscribe(
    session: &mut Session,
    settings: &Settings,
    filter: &str,
    qos: QoS,
    client_id: &str,
) -> Result<(), LoadError> {
    let packet_id = PacketId::new(1).ok_or_else(|| LoadError::Usage("packet id 0".into()))?;
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id,
        properties: Properties::default(),
        subscriptions: vec![Subscription {
            filter: topic_filter(filter)?,
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
    });
    let mut wbuf = BytesMut::with_capacity(256);
    encode(&subscribe, settings.version, &mut wbuf)?;
    write_batch(&mut session.stream, &mut wbuf, client_id).await?;
    let packet = read_packet_timeout(
        &mut session.stream,
        &mut session.rbuf,
        settings,
        client_id,
        "SUBSCRIBE",
    )
    .await?;
    match packet {
        Packet::SubAck(ack) => match ack.reasons.first() {
            Some(reason) if !reason.is_error() => Ok(()),
            other => Err(LoadError::Refused {
                client: client_id.into(),
                what: "SUBSCRIBE",
                reason: other.copied().unwrap_or(ReasonCode::UnspecifiedError),
            }),
        },
        other => Err(unexpected(client_id, &other, "instead of SUBACK")),
    }
}

async fn read_packet_timeout(
    stream: &mut Conn,
    rbuf: &mut BytesMut,
    settings: &Settings,
    client_id: &str,
    what: &'static str,
) -> Result<Packet, LoadError> {
    match monoio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_packet(stream, rbuf, settings.version, client_id, what),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(LoadError::Timeout {
            addr: settings.addr,
            what,
        }),
    }
}

/// Reads until one whole packet is buffered and decodes it.
pub async fn read_packet<R: ReadBytes>(
    stream: &mut R,
    rbuf: &mut BytesMut,
    version: ProtocolVersion,
    client_id: &str,
    while_: &'static str,
) -> Result<Packet, LoadError> {
    loop {
        if let Some(packet) = decode_one(rbuf, version, client_id)? {
            return Ok(packet);
        }
        fill(stream, rbuf, 4096, client_id, while_).await?;
    }
}

/// Decodes the next complete packet in `rbuf`, if any.
pub fn decode_one(
    rbuf: &mut BytesMut,
    version: ProtocolVersion,
    client_id: &str,
) -> Result<Option<Packet>, LoadError> {
    decode(rbuf, version, MAX_PACKET).map_err(|source| LoadError::Decode {
        client: client_id.into(),
        source,
    })
}

/// Reads once, appending to `rbuf` (growing it to at least `min_spare` free bytes first).
/// The broker closing the connection is an error: a load run never expects it.
pub async fn fill<R: ReadBytes>(
    stream: &mut R,
    rbuf: &mut BytesMut,
    min_spare: usize,
    client_id: &str,
    while_: &'static str,
) -> Result<usize, LoadError> {
    if rbuf.capacity() - rbuf.len() < min_spare / 4 {
        // Packets decoded earlier have been dropped, so this usually reclaims the same
        // allocation rather than allocating.
        rbuf.reserve(min_spare);
    }
    match stream.read_into(rbuf, min_spare).await {
        Ok(0) => Err(LoadError::Closed {
            client: client_id.into(),
            while_,
        }),
        Ok(n) => Ok(n),
        Err(source) => Err(stream_error(client_id, source, while_)),
    }
}

/// A reset or broken pipe means the broker dropped the connection: say so.
fn stream_error(client_id: &str, source: std::io::Error, while_: &'static str) -> LoadError {
    match source.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => LoadError::Closed {
            client: client_id.into(),
            while_,
        },
        _ => io_error(client_id, source),
    }
}

/// Writes all of `wbuf` in one call and clears it for reuse.
pub async fn write_batch<W: WriteBytes>(
    stream: &mut W,
    wbuf: &mut BytesMut,
    client_id: &str,
) -> Result<(), LoadError> {
    let (result, mut buf) = stream.write_bytes(std::mem::take(wbuf)).await;
    buf.clear();
    *wbuf = buf;
    result
        .map(|_| ())
        .map_err(|source| io_error(client_id, source))
}

/// Appends a PUBLISH whose payload is `template` (zeroes of the payload size) and returns the
/// payload's byte range in `out`, so the caller can write the message header in place without
/// allocating a payload per message.
pub fn encode_publish(
    out: &mut BytesMut,
    version: ProtocolVersion,
    topic: &TopicName,
    qos: QoS,
    packet_id: Option<PacketId>,
    template: &Bytes,
) -> Result<std::ops::Range<usize>, LoadError> {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.clone(),
        packet_id,
        properties: Properties::default(),
        payload: template.clone(),
    });
    encode(&publish, version, out)?;
    Ok(out.len() - template.len()..out.len())
}

/// Appends any control packet.
pub fn encode_packet(
    out: &mut BytesMut,
    version: ProtocolVersion,
    packet: &Packet,
) -> Result<(), LoadError> {
    encode(packet, version, out)?;
    Ok(())
}

/// A normal DISCONNECT.
pub fn disconnect_packet() -> Packet {
    Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
}

pub fn io_error(client_id: &str, source: std::io::Error) -> LoadError {
    LoadError::Io {
        client: client_id.into(),
        source,
    }
}

pub fn unexpected(client_id: &str, packet: &Packet, context: &str) -> LoadError {
    LoadError::Unexpected {
        client: client_id.into(),
        what: format!("{} {context}", packet_name(packet)),
    }
}

fn packet_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect(_) => "DISCONNECT",
        Packet::Auth(_) => "AUTH",
    }
}
