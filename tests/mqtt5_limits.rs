//! What a 5.0 client's CONNECT limits in the packets the server sends it, and the server's
//! Reason Strings, checked byte for byte on a plain socket against the real `ringmq` binary:
//! the client's Maximum Packet Size applies to every packet (3.1.2.11.4), optional properties
//! go first when a packet would exceed it, Request Problem Information 0 keeps Reason Strings
//! off everything but PUBLISH, CONNACK and DISCONNECT (3.1.2.11.8), and refusals and server
//! DISCONNECTs say why.

pub mod support;

use ringmq::protocol::packet::{PubResp, Subscribe, Subscription, Unsubscribe};
use ringmq::protocol::{Packet, Properties, PropertyValues, ProtocolVersion};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

// ---------------------------------------------------------------------------------------------
// A socket that reports the exact bytes the broker sends
// ---------------------------------------------------------------------------------------------

struct Wire {
    stream: TcpStream,
    name: String,
}

impl Wire {
    fn open(addr: SocketAddr, name: &str) -> Self {
        let stream = TcpStream::connect_timeout(&addr, PROMPT)
            .unwrap_or_else(|e| panic!("{name}: cannot connect: {e}"));
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            name: name.to_string(),
        }
    }

    /// Connects and reads the CONNACK, asserting it accepts the connection.
    fn connected(addr: SocketAddr, connect: ConnectBuilder) -> Self {
        let name = connect.0.client_id.as_str().to_string();
        let mut wire = Self::open(addr, &name);
        wire.send(&connect.packet());
        let connack = wire.read_packet();
        assert_eq!(
            connack[0], 0x20,
            "{name}: expected CONNACK, got {connack:02X?}"
        );
        assert_eq!(connack[3], 0x00, "{name}: CONNACK refused: {connack:02X?}");
        wire
    }

    fn send(&mut self, packet: &Packet) {
        let _ = self.stream.write_all(&encode_bytes(packet, V5));
    }

    /// Reads exactly `n` bytes, or panics after `PROMPT`.
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + PROMPT;
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "{}: got only {:02X?}",
                self.name,
                &out[..got]
            );
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            match self.stream.read(&mut out[got..]) {
                Ok(0) => panic!("{}: closed after {:02X?}", self.name, &out[..got]),
                Ok(k) => got += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("{}: read failed after {:02X?}: {e}", self.name, &out[..got]),
            }
        }
        out
    }

    /// Reads one whole packet: the fixed header, then as many bytes as it announces.
    fn read_packet(&mut self) -> Vec<u8> {
        let mut packet = self.read_exact(1);
        let mut remaining = 0usize;
        for shift in 0..4 {
            let byte = self.read_exact(1)[0];
            packet.push(byte);
            remaining |= usize::from(byte & 0x7F) << (7 * shift);
            if byte & 0x80 == 0 {
                break;
            }
        }
        packet.extend(self.read_exact(remaining));
        packet
    }

    /// Reads until the broker closes the connection; panics if it does not within `PROMPT`.
    fn read_until_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + PROMPT;
        let mut out = Vec::new();
        loop {
            let now = Instant::now();
            assert!(now < deadline, "{}: not closed; got {out:02X?}", self.name);
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return out,
                Ok(k) => out.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return out,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packets, and the bytes expected back, written out by hand
// ---------------------------------------------------------------------------------------------

fn connect_v5(
    id: &str,
    max_packet_size: Option<u32>,
    problem_information: Option<u8>,
) -> ConnectBuilder {
    let mut connect = ConnectBuilder::new(V5, id);
    connect.0.properties = Properties::from(PropertyValues {
        maximum_packet_size: max_packet_size,
        request_problem_information: problem_information,
        ..PropertyValues::default()
    });
    connect
}

fn filters(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}/{i}")).collect()
}

fn subscribe(packet_id: u16, filters: &[String]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(packet_id),
        properties: Properties::default(),
        subscriptions: filters
            .iter()
            .map(|f| Subscription {
                filter: filter(f),
                options: Default::default(),
            })
            .collect(),
    })
}

/// A filter of 129 levels: the SUBACK refuses it with 0x8F (the trie takes 128).
fn too_deep_filter() -> String {
    "a/".repeat(128) + "a"
}

fn var_int(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A property list holding only a Reason String (0x1F), or an empty one.
fn reason_string_properties(text: Option<&str>) -> Vec<u8> {
    let Some(text) = text else { return vec![0x00] };
    let mut list = vec![0x1F];
    list.extend((text.len() as u16).to_be_bytes());
    list.extend(text.as_bytes());
    let mut out = var_int(list.len());
    out.extend(list);
    out
}

fn packet(first_byte: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![first_byte];
    out.extend(var_int(body.len()));
    out.extend(body);
    out
}

/// A server DISCONNECT: the short form without properties, else reason code and properties.
fn disconnect_bytes(code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = vec![code];
    if text.is_some() {
        body.extend(reason_string_properties(text));
    }
    packet(0xE0, body)
}

/// A refusing CONNACK: no session present, the code, the properties.
fn connack_refusal_bytes(code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = vec![0x00, code];
    body.extend(reason_string_properties(text));
    packet(0x20, body)
}

/// A PUBREL, PUBCOMP or other acknowledgement with a reason code.
fn ack_bytes(first_byte: u8, packet_id: u16, code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.push(code);
    if text.is_some() {
        body.extend(reason_string_properties(text));
    }
    packet(first_byte, body)
}

fn suback_bytes(packet_id: u16, codes: &[u8], text: Option<&str>) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.extend(reason_string_properties(text));
    body.extend(codes);
    packet(0x90, body)
}

const TOO_DEEP: &str = "a topic filter has more levels than this server supports (128)";

// ---------------------------------------------------------------------------------------------
// The client's Maximum Packet Size
// ---------------------------------------------------------------------------------------------

#[test]
fn a_suback_over_the_clients_maximum_packet_size_is_not_sent_and_the_connection_closes_with_0x95() {
    // [MQTT-3.1.2-24] the server MUST NOT send a packet over the client's Maximum Packet Size,
    // and [MQTT-3.8.4-1] it MUST answer a SUBSCRIBE with a SUBACK. A SUBACK of 200 codes is
    // 206 bytes even without properties, so it cannot go to a client that takes 128: the
    // broker closes with DISCONNECT 0x95 Packet too large (whose Reason String fits), and
    // applies none of the filters.
    let broker = Broker::start();
    let id = id_on_shard("mps-suback", 0);
    let connect = connect_v5(&id, Some(128), None).session_expiry(60);
    let mut sub = Wire::connected(broker.addr, connect.clone());
    sub.send(&subscribe(1, &filters("f", 200)));
    let text = "the SUBACK for 200 topic filters would be 206 bytes, over the client's Maximum \
                Packet Size of 128 [MQTT-3.1.2-24]";
    let got = sub.read_until_closed();
    assert_eq!(got, disconnect_bytes(0x95, Some(text)));
    assert!(got.len() <= 128, "the DISCONNECT itself fits");

    // The session survived (it has an expiry) without any of the 200 subscriptions.
    let mut sub = RawClient::connect_with(broker.addr, connect.clean(false)).0;
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("mps-pub", 1));
    publisher.publish("f/0", b"x", 1, false);
    publisher.publish("f/199", b"x", 1, false);
    sub.expect_nothing(QUIET);
}

#[test]
fn a_suback_of_exactly_the_clients_maximum_packet_size_is_sent_in_full() {
    // [MQTT-3.1.2-24] the limit includes the packet's own size: 123 codes make a SUBACK of
    // exactly 128 bytes (type, length 126, packet id, property length 0, codes).
    let broker = Broker::start();
    let mut sub = Wire::connected(broker.addr, connect_v5("mps-exact", Some(128), None));
    sub.send(&subscribe(7, &filters("e", 123)));
    let got = sub.read_packet();
    assert_eq!(got, suback_bytes(7, &[0x00; 123], None));
    assert_eq!(got.len(), 128);
}

#[test]
fn an_unsuback_over_the_clients_maximum_packet_size_closes_with_0x95() {
    // [MQTT-3.1.2-24] with [MQTT-3.10.4-4] (an UNSUBSCRIBE is answered with an UNSUBACK).
    let broker = Broker::start();
    let mut client = Wire::connected(broker.addr, connect_v5("mps-unsuback", Some(128), None));
    client.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(2),
        properties: Properties::default(),
        filters: filters("u", 200).iter().map(|f| filter(f)).collect(),
    }));
    let text = "the UNSUBACK for 200 topic filters would be 206 bytes, over the client's Maximum \
                Packet Size of 128 [MQTT-3.1.2-24]";
    assert_eq!(
        client.read_until_closed(),
        disconnect_bytes(0x95, Some(text))
    );
}

#[test]
fn reason_strings_that_would_exceed_the_clients_maximum_packet_size_are_left_out() {
    let broker = Broker::start();
    // [MQTT-3.9.2-1] the SUBACK refusing a too-deep filter drops its Reason String for a
    // client that takes 30 bytes...
    let mut small = Wire::connected(broker.addr, connect_v5("rs-small", Some(30), None));
    small.send(&subscribe(1, &[too_deep_filter()]));
    assert_eq!(small.read_packet(), suback_bytes(1, &[0x8F], None));
    // ...and carries it for a client without a limit.
    let mut roomy = Wire::connected(broker.addr, connect_v5("rs-roomy", None, None));
    roomy.send(&subscribe(1, &[too_deep_filter()]));
    assert_eq!(
        roomy.read_packet(),
        suback_bytes(1, &[0x8F], Some(TOO_DEEP))
    );
    // [MQTT-3.14.2-3] the DISCONNECT 0x95 for a SUBACK of 20 codes (25 bytes) to a client that
    // takes 20 has no room for its Reason String: the bare short form goes.
    let mut tiny = Wire::connected(broker.addr, connect_v5("rs-tiny", Some(20), None));
    tiny.send(&subscribe(1, &filters("s", 20)));
    assert_eq!(tiny.read_until_closed(), disconnect_bytes(0x95, None));
}

#[test]
fn a_connack_over_the_clients_maximum_packet_size_is_refused_with_0x95() {
    // [MQTT-3.2.2-19] [MQTT-3.1.2-24] the CONNACK accepting this client would carry Receive
    // Maximum, Maximum Packet Size and Topic Alias Maximum (16 bytes); a client that takes 12
    // gets the 5-byte refusal 0x95 instead, without its Reason String, and is closed.
    let broker = Broker::start();
    let mut client = Wire::open(broker.addr, "mps-connack");
    client.send(&connect_v5("mps-connack", Some(12), None).packet());
    assert_eq!(
        client.read_until_closed(),
        connack_refusal_bytes(0x95, None)
    );
    // A client that takes 4 bytes cannot be sent any CONNACK: the connection just closes.
    let mut client = Wire::open(broker.addr, "mps-connack-4");
    client.send(&connect_v5("mps-connack-4", Some(4), None).packet());
    assert_eq!(client.read_until_closed(), Vec::<u8>::new());
}

// ---------------------------------------------------------------------------------------------
// Reason Strings
// ---------------------------------------------------------------------------------------------

fn alias_publish(alias: u16) -> Packet {
    let mut publish = publish_packet("t", b"x", 0, None, false);
    if let Packet::Publish(p) = &mut publish {
        p.properties = Properties::from(PropertyValues {
            topic_alias: Some(alias),
            ..PropertyValues::default()
        });
    }
    publish
}

const ALIAS_17: &str = "topic alias 17 is outside 1..=16, the Topic Alias Maximum [MQTT-3.3.2-9]";

#[test]
fn a_protocol_error_disconnect_says_what_was_wrong() {
    // 3.14.2.2.3: the server's DISCONNECT 0x94 Topic Alias invalid [MQTT-3.3.2-9] carries a
    // Reason String naming the alias and the maximum.
    let broker = Broker::start();
    let mut client = Wire::connected(broker.addr, connect_v5("rs-alias", None, None));
    client.send(&alias_publish(17));
    assert_eq!(
        client.read_until_closed(),
        disconnect_bytes(0x94, Some(ALIAS_17))
    );
}

#[test]
fn a_refused_connack_says_why() {
    // 3.2.2.3.9: CONNACK 0x8C Bad authentication method [MQTT-4.12.0-1] names the method.
    let broker = Broker::start();
    let mut connect = connect_v5("rs-auth", None, None);
    connect.0.properties.authentication_method = Some(mqtt_string("SCRAM-SHA-999"));
    let mut client = Wire::open(broker.addr, "rs-auth");
    client.send(&connect.packet());
    let text = "authentication method \"SCRAM-SHA-999\" is not supported";
    assert_eq!(
        client.read_until_closed(),
        connack_refusal_bytes(0x8C, Some(text))
    );
}

#[test]
fn a_taken_over_connection_is_told_why() {
    // [MQTT-3.1.4-3] the old connection gets DISCONNECT 0x8E, with a Reason String.
    let broker = Broker::start();
    let id = id_on_shard("rs-takeover", 1);
    let mut old = Wire::connected(broker.addr, connect_v5(&id, None, None));
    let _new = Wire::connected(broker.addr, connect_v5(&id, None, None));
    let text = "another connection with the same client identifier took over the session";
    assert_eq!(old.read_until_closed(), disconnect_bytes(0x8E, Some(text)));
}

#[test]
fn a_pubrel_for_an_unknown_packet_id_gets_pubcomp_0x92_with_a_reason_string() {
    // 3.7.2.1: PUBCOMP 0x92 Packet Identifier not found, explained.
    let broker = Broker::start();
    let mut client = Wire::connected(broker.addr, connect_v5("rs-pubrel", None, None));
    client.send(&Packet::PubRel(PubResp::new(pid(5))));
    let text = "no QoS 2 PUBLISH with this packet identifier awaits PUBREL";
    assert_eq!(client.read_packet(), ack_bytes(0x70, 5, 0x92, Some(text)));
}

#[test]
fn request_problem_information_0_keeps_reason_strings_off_acks_but_not_off_connack_or_disconnect() {
    // [MQTT-3.1.2-29] Request Problem Information 0: no Reason String on any packet but
    // PUBLISH, CONNACK and DISCONNECT.
    let broker = Broker::start();
    let mut client = Wire::connected(broker.addr, connect_v5("rpi-0", None, Some(0)));
    client.send(&subscribe(1, &[too_deep_filter()]));
    assert_eq!(client.read_packet(), suback_bytes(1, &[0x8F], None));
    client.send(&Packet::PubRel(PubResp::new(pid(5))));
    assert_eq!(client.read_packet(), ack_bytes(0x70, 5, 0x92, None));
    // The DISCONNECT still explains itself...
    client.send(&alias_publish(17));
    assert_eq!(
        client.read_until_closed(),
        disconnect_bytes(0x94, Some(ALIAS_17))
    );
    // ...and so does a refusing CONNACK.
    let mut connect = connect_v5("rpi-0-auth", None, Some(0));
    connect.0.properties.authentication_method = Some(mqtt_string("X"));
    let mut refused = Wire::open(broker.addr, "rpi-0-auth");
    refused.send(&connect.packet());
    let text = "authentication method \"X\" is not supported";
    assert_eq!(
        refused.read_until_closed(),
        connack_refusal_bytes(0x8C, Some(text))
    );
}
