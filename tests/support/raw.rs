//! The raw client: a blocking MQTT connection on a plain TCP socket (or TLS over one, see
//! `tls.rs`) that sends exactly the packets (or bytes) a test asks for and reports exactly
//! what the broker sends back, decoded with our codec or as raw bytes. Nothing is
//! acknowledged unless the test says so.

use super::PROMPT;
use super::packets::{
    ConnectBuilder, PublishBuilder, SubscribeBuilder, disconnect_packet, encode_bytes, pid,
    publish_packet, unsubscribe_packet,
};
use bytes::BytesMut;
use ringmq::protocol::packet::{ConnAck, PubResp, Publish, UnsubAck};
use ringmq::protocol::{DecodeError, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, decode};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What one read from the broker produced.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per read in tests; matching through a Box would obscure the tests"
)]
pub enum Recv {
    Packet(Packet),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// The broker sent bytes our codec refuses.
    Garbage(DecodeError),
}

/// The outcome of one read from the socket.
enum Fill {
    /// Bytes arrived, or the read was interrupted: look again.
    Again,
    Closed,
    Timeout,
}

/// The four acknowledgements of the QoS 1 and 2 flows: PUBACK, PUBREC, PUBREL, PUBCOMP.
#[derive(Debug, Clone, Copy)]
enum Pub {
    Ack,
    Rec,
    Rel,
    Comp,
}

impl std::fmt::Display for Pub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Pub::Ack => "PUBACK",
            Pub::Rec => "PUBREC",
            Pub::Rel => "PUBREL",
            Pub::Comp => "PUBCOMP",
        };
        f.write_str(name)
    }
}

/// The byte stream under a raw client: a TCP socket, or a layer over one (TLS).
pub trait Wire: Read + Write + Send + std::fmt::Debug {
    /// The socket underneath, for read timeouts and shutdown.
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// A blocking MQTT client on a plain TCP socket (or another [`Wire`]).
#[derive(Debug)]
pub struct RawClient {
    stream: Box<dyn Wire>,
    buf: BytesMut,
    pub version: ProtocolVersion,
    /// Names the client in failure messages (the client id, for connected clients).
    pub name: String,
}

impl RawClient {
    /// A TCP connection, no MQTT yet.
    pub fn tcp(addr: SocketAddr, version: ProtocolVersion, name: &str) -> Self {
        let stream = TcpStream::connect_timeout(&addr, PROMPT)
            .unwrap_or_else(|e| panic!("{name}: cannot connect to {addr}: {e}"));
        Self::from_stream(stream, version, name)
    }

    /// A client on a socket the test set up itself (e.g. with a small receive buffer).
    pub fn from_stream(stream: TcpStream, version: ProtocolVersion, name: &str) -> Self {
        Self::from_wire(Box::new(stream), version, name)
    }

    /// A client on any [`Wire`] (e.g. a TLS stream from `tls.rs`), no MQTT yet.
    pub fn from_wire(stream: Box<dyn Wire>, version: ProtocolVersion, name: &str) -> Self {
        let _ = stream.tcp().set_nodelay(true);
        Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            version,
            name: name.to_string(),
        }
    }

    /// Connects with `connect` and returns the CONNACK, asserting it is a success.
    pub fn connect_with(addr: SocketAddr, connect: ConnectBuilder) -> (Self, ConnAck) {
        let version = connect.0.version;
        let name = connect.0.client_id.as_str().to_string();
        Self::tcp(addr, version, &name).handshake(connect)
    }

    /// Sends `connect` on this connection and returns the CONNACK, asserting it is a
    /// success.
    pub fn handshake(self, connect: ConnectBuilder) -> (Self, ConnAck) {
        let name = connect.0.client_id.as_str().to_string();
        let mut client = self;
        client.send(&connect.packet());
        let connack = client.expect_connack();
        assert_eq!(
            connack.reason,
            ReasonCode::Success,
            "{name}: CONNACK refused: {connack:?}"
        );
        (client, connack)
    }

    /// A clean session, keep alive off.
    pub fn connect(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> Self {
        Self::connect_with(addr, ConnectBuilder::new(version, client_id)).0
    }

    // ----- sending ----------------------------------------------------------------------

    pub fn send(&mut self, packet: &Packet) {
        let bytes = encode_bytes(packet, self.version);
        self.send_bytes(&bytes);
    }

    /// Writes raw bytes; a write error is ignored (the broker may already have closed, which
    /// the test then sees on its next read).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Writes raw bytes and reports a write error (a reset, a broken pipe): for tests of
    /// what a client that keeps writing after the broker closed sees.
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    // ----- receiving --------------------------------------------------------------------

    /// Reads once into the buffer, waiting until `deadline` at the most.
    fn fill(&mut self, deadline: Instant) -> Fill {
        let now = Instant::now();
        if now >= deadline {
            return Fill::Timeout;
        }
        let _ = self.stream.tcp().set_read_timeout(Some(deadline - now));
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Again
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Fill::Again
            }
            Err(_) => Fill::Closed,
        }
    }

    /// Waits up to `within` for the next packet.
    pub fn recv(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            match decode(&mut self.buf, self.version, usize::MAX) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => return Recv::Garbage(e),
            }
            match self.fill(deadline) {
                Fill::Again => {}
                Fill::Closed => return Recv::Closed,
                Fill::Timeout => return Recv::Timeout,
            }
        }
    }

    /// Bytes received that do not make a whole packet yet.
    pub fn unread_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Reads raw bytes until the broker closes the connection or `within` passes; returns the
    /// bytes and whether the connection was closed.
    pub fn read_raw_until_closed(&mut self, within: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + within;
        loop {
            match self.fill(deadline) {
                Fill::Again => {}
                Fill::Closed => return (self.buf.split().to_vec(), true),
                Fill::Timeout => return (self.buf.split().to_vec(), false),
            }
        }
    }

    /// The exact bytes the broker sends until it closes the connection, which it must do
    /// within [`PROMPT`].
    pub fn expect_raw_until_closed(&mut self) -> Vec<u8> {
        let (bytes, closed) = self.read_raw_until_closed(PROMPT);
        assert!(closed, "{}: not closed; got {bytes:02X?}", self.name);
        bytes
    }

    /// The exact bytes of the next packet: its fixed header and as many bytes as that
    /// announces.
    pub fn expect_raw_packet(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + PROMPT;
        loop {
            if let Some(len) = whole_frame_len(&self.buf) {
                return self.buf.split_to(len).to_vec();
            }
            match self.fill(deadline) {
                Fill::Again => {}
                Fill::Closed => panic!("{}: closed after {:02X?}", self.name, &self.buf[..]),
                Fill::Timeout => panic!("{}: got only {:02X?}", self.name, &self.buf[..]),
            }
        }
    }

    pub fn expect_packet(&mut self, within: Duration) -> Packet {
        match self.recv(within) {
            Recv::Packet(p) => p,
            other => panic!("{}: expected a packet, got {other:?}", self.name),
        }
    }

    pub fn expect_connack(&mut self) -> ConnAck {
        match self.expect_packet(PROMPT) {
            Packet::ConnAck(c) => c,
            other => panic!("{}: expected CONNACK, got {other:?}", self.name),
        }
    }

    pub fn expect_publish(&mut self) -> Publish {
        match self.expect_packet(PROMPT) {
            Packet::Publish(p) => p,
            other => panic!("{}: expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// The next PUBLISH, acknowledged as its QoS requires (QoS 2 flow completed to PUBCOMP,
    /// the broker's PUBREL checked).
    pub fn expect_publish_acked(&mut self) -> Publish {
        let publish = self.expect_publish();
        self.ack(&publish);
        publish
    }

    fn expect_pub_resp(&mut self, kind: Pub, id: u16) -> PubResp {
        let resp = match (kind, self.expect_packet(PROMPT)) {
            (Pub::Ack, Packet::PubAck(r))
            | (Pub::Rec, Packet::PubRec(r))
            | (Pub::Rel, Packet::PubRel(r))
            | (Pub::Comp, Packet::PubComp(r)) => r,
            (_, other) => panic!("{}: expected {kind} {id}, got {other:?}", self.name),
        };
        assert_eq!(resp.packet_id.get(), id, "{}: {kind} packet id", self.name);
        resp
    }

    /// The next packet must be PUBACK `id`; returns it (for its reason code).
    pub fn expect_puback(&mut self, id: u16) -> PubResp {
        self.expect_pub_resp(Pub::Ack, id)
    }

    /// 5.0 PUBACK reason codes of QoS 1 PUBLISHes of `size` bytes on `topic`, one at a
    /// time, until the first that is not Success or `limit` were sent.
    pub fn publish_until_refused(&mut self, topic: &str, size: usize, limit: u16) -> Vec<u8> {
        let payload = vec![b'x'; size];
        let mut codes = Vec::new();
        for id in 1..=limit {
            self.send(&PublishBuilder::new(topic, &payload).qos(1, id).packet());
            let code = self.expect_puback(id).reason as u8;
            codes.push(code);
            if code != 0 {
                break;
            }
        }
        codes
    }

    /// The next packet must be PUBREC `id`.
    pub fn expect_pubrec(&mut self, id: u16) -> PubResp {
        self.expect_pub_resp(Pub::Rec, id)
    }

    /// The next packet must be PUBREL `id`.
    pub fn expect_pubrel(&mut self, id: u16) -> PubResp {
        self.expect_pub_resp(Pub::Rel, id)
    }

    /// The next packet must be PUBCOMP `id`.
    pub fn expect_pubcomp(&mut self, id: u16) -> PubResp {
        self.expect_pub_resp(Pub::Comp, id)
    }

    /// Asserts nothing arrives for `quiet` (the connection may stay open).
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.recv(quiet) {
            Recv::Timeout => {}
            other => panic!("{}: expected nothing, got {other:?}", self.name),
        }
    }

    /// Asserts the broker closes the connection within `within` without sending any packet
    /// (3.1.1 has no server DISCONNECT).
    pub fn expect_closed(&mut self, within: Duration) {
        match self.recv(within) {
            Recv::Closed => {}
            other => panic!(
                "{}: expected the connection closed, got {other:?}",
                self.name
            ),
        }
    }

    /// Asserts the broker closes the connection; in 5.0 a DISCONNECT may come first and, if
    /// it does, its reason code must be one of `reasons` (any code when `reasons` is empty).
    /// Returns the DISCONNECT's reason, if one was sent. For the closes where the spec lets
    /// the server choose; where it names the code, use [`RawClient::expect_disconnect_then_close`].
    pub fn expect_closed_maybe_disconnect(
        &mut self,
        within: Duration,
        reasons: &[ReasonCode],
    ) -> Option<ReasonCode> {
        match self.recv(within) {
            Recv::Closed => None,
            Recv::Packet(Packet::Disconnect(d)) if self.version == ProtocolVersion::V5 => {
                assert!(
                    reasons.is_empty() || reasons.contains(&d.reason),
                    "{}: DISCONNECT reason {:?}, expected one of {reasons:?}",
                    self.name,
                    d.reason
                );
                self.expect_closed(within);
                Some(d.reason)
            }
            other => panic!(
                "{}: expected the connection closed, got {other:?}",
                self.name
            ),
        }
    }

    /// Asserts a 5.0 DISCONNECT with one of `reasons` arrives, then the close (a bare close
    /// fails).
    pub fn expect_disconnect_then_close(&mut self, within: Duration, reasons: &[ReasonCode]) {
        match self.recv(within) {
            Recv::Packet(Packet::Disconnect(d)) => {
                assert!(
                    reasons.contains(&d.reason),
                    "{}: DISCONNECT reason {:?}, expected one of {reasons:?}",
                    self.name,
                    d.reason
                );
                self.expect_closed(within);
            }
            other => panic!(
                "{}: expected DISCONNECT {reasons:?} then close, got {other:?}",
                self.name
            ),
        }
    }

    // ----- flows ------------------------------------------------------------------------

    /// Completes the receiver side of a PUBLISH's QoS flow.
    pub fn ack(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else { return };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubResp::new(id))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubResp::new(id)));
                // [MQTT-4.3.3-1] the sender answers PUBREC with PUBREL.
                self.expect_pubrel(id.get());
                self.send(&Packet::PubComp(PubResp::new(id)));
            }
        }
    }

    /// Sends `subscribe` and returns the SUBACK's reason codes, checking its packet id
    /// [MQTT-3.8.4-2].
    pub fn subscribe_with(&mut self, subscribe: SubscribeBuilder) -> Vec<ReasonCode> {
        let packet_id = subscribe.0.packet_id;
        self.send(&subscribe.packet());
        let suback = match self.expect_packet(PROMPT) {
            Packet::SubAck(s) => s,
            other => panic!("{}: expected SUBACK, got {other:?}", self.name),
        };
        assert_eq!(
            suback.packet_id, packet_id,
            "{}: SUBACK packet id [MQTT-3.8.4-2]",
            self.name
        );
        suback.reasons
    }

    /// Like [`RawClient::subscribe_with`], checking that no filter was refused.
    pub fn subscribe_with_ok(&mut self, subscribe: SubscribeBuilder) {
        let filters = subscribe.0.subscriptions.len();
        let reasons = self.subscribe_with(subscribe);
        assert_eq!(reasons.len(), filters, "{}: SUBACK codes", self.name);
        assert!(
            reasons.iter().all(|r| !r.is_error()),
            "{}: subscription refused: {reasons:?}",
            self.name
        );
    }

    /// Subscribes to `(filter, QoS)` pairs and returns the SUBACK's reason codes.
    pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, u8)]) -> Vec<ReasonCode> {
        self.subscribe_with(SubscribeBuilder::with(packet_id, filters))
    }

    /// Subscribes to each filter and checks none was refused. The exact granted QoS is left
    /// to the SUBACK tests, so that one SUBACK bug does not hide the behaviour a test checks.
    pub fn subscribe_ok(&mut self, packet_id: u16, filters: &[(&str, u8)]) {
        self.subscribe_with_ok(SubscribeBuilder::with(packet_id, filters));
    }

    /// Unsubscribes and returns the UNSUBACK, checking its packet id [MQTT-3.10.4-4].
    pub fn unsubscribe(&mut self, packet_id: u16, filters: &[&str]) -> UnsubAck {
        self.send(&unsubscribe_packet(packet_id, filters));
        match self.expect_packet(PROMPT) {
            Packet::UnsubAck(u) => {
                assert_eq!(
                    u.packet_id.get(),
                    packet_id,
                    "{}: UNSUBACK packet id [MQTT-3.10.4-4]",
                    self.name
                );
                u
            }
            other => panic!("{}: expected UNSUBACK, got {other:?}", self.name),
        }
    }

    /// Publishes and completes the sender side of the QoS flow (PUBACK, or PUBREC/PUBREL/
    /// PUBCOMP), checking each acknowledgement's packet id.
    pub fn publish(&mut self, topic_name: &str, payload: &[u8], level: u8, retain: bool) {
        let packet_id = (level > 0).then(next_packet_id);
        self.send(&publish_packet(
            topic_name, payload, level, packet_id, retain,
        ));
        match (level, packet_id) {
            (1, Some(id)) => {
                self.expect_puback(id);
            }
            (2, Some(id)) => {
                self.expect_pubrec(id);
                self.send(&Packet::PubRel(PubResp::new(pid(id))));
                self.expect_pubcomp(id);
            }
            _ => {}
        }
    }

    /// PINGREQ, then PINGRESP. Doubles as a barrier: every packet sent before it was processed.
    pub fn ping(&mut self) {
        self.send(&Packet::PingReq);
        match self.expect_packet(PROMPT) {
            Packet::PingResp => {}
            other => panic!("{}: expected PINGRESP, got {other:?}", self.name),
        }
    }

    /// Sends DISCONNECT (normal) and closes the socket.
    pub fn disconnect(mut self) {
        self.send(&disconnect_packet(ReasonCode::NORMAL_DISCONNECTION));
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
        let _ = self.recv(Duration::from_millis(200));
    }

    /// Drops the TCP connection without DISCONNECT.
    pub fn drop_connection(self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
    }
}

/// A packet id for [`RawClient::publish`], unique across the test binary (never 0).
fn next_packet_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// The length of the whole packet at the front of `buf`, once all of it has arrived.
fn whole_frame_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for (i, &byte) in buf.iter().enumerate().skip(1).take(4) {
        remaining |= usize::from(byte & 0x7F) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let total = i + 1 + remaining;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}

/// Collects PUBLISHes until nothing arrives for `quiet`, acknowledging each as its QoS
/// requires. QoS 2 flows may interleave (PUBLISH, PUBLISH, PUBREL, ...); every PUBREL must
/// name a PUBLISH this client answered with PUBREC [MQTT-4.3.3-1], and none may be missing.
pub fn collect_publishes(client: &mut RawClient, quiet: Duration) -> Vec<Publish> {
    let mut got = Vec::new();
    let mut awaiting_pubrel: Vec<PacketId> = Vec::new();
    loop {
        match client.recv(quiet) {
            Recv::Packet(Packet::Publish(p)) => {
                match (p.qos, p.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::PubAck(PubResp::new(id))),
                    (QoS::ExactlyOnce, Some(id)) => {
                        client.send(&Packet::PubRec(PubResp::new(id)));
                        awaiting_pubrel.push(id);
                    }
                    _ => {}
                }
                got.push(p);
            }
            Recv::Packet(Packet::PubRel(r)) => {
                let Some(i) = awaiting_pubrel.iter().position(|&id| id == r.packet_id) else {
                    panic!("{}: PUBREL for unknown id {:?}", client.name, r.packet_id);
                };
                awaiting_pubrel.remove(i);
                client.send(&Packet::PubComp(PubResp::new(r.packet_id)));
            }
            Recv::Timeout => {
                assert!(
                    awaiting_pubrel.is_empty(),
                    "{}: no PUBREL after PUBREC for {awaiting_pubrel:?} [MQTT-4.3.3-1]",
                    client.name
                );
                return got;
            }
            other => panic!(
                "{}: expected PUBLISH or silence, got {other:?}",
                client.name
            ),
        }
    }
}

/// The payloads (as text) of [`collect_publishes`], in arrival order.
pub fn collect_payloads(client: &mut RawClient, quiet: Duration) -> Vec<String> {
    collect_publishes(client, quiet)
        .iter()
        .map(payload_str)
        .collect()
}

pub fn payload_str(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}
