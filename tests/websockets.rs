//! WebSocket listeners (RFC 6455, MQTT 5.0 section 6) against the real `ringmq` binary, plain
//! and over TLS: rumqttc over ws:// and wss://, MQTT packets across and within frames,
//! control frames, the upgrade and its refusals, malformed frames, and closing.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion};
use std::net::{SocketAddr, TcpStream};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A broker with a plain listener (`listen`), a ws:// one (`listeners[0]`) and a wss:// one
/// (`listeners[1]`).
fn ws_broker(pki: &Pki) -> (Broker, SocketAddr, SocketAddr) {
    let toml = format!(
        "[[listeners]]\nbind = \"127.0.0.1:0\"\nprotocol = \"websockets\"\n\n{}",
        pki.listener_toml("websockets", "")
    );
    let broker = Broker::start_with_config(&toml);
    let schemes: Vec<&str> = broker.listeners.iter().map(|l| l.scheme.as_str()).collect();
    assert_eq!(schemes, ["mqtt", "ws", "wss"]);
    let (ws, wss) = (
        broker.listener("listeners[0]"),
        broker.listener("listeners[1]"),
    );
    (broker, ws, wss)
}

fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"))
}

/// A WebSocket upgraded and MQTT-connected as `id`.
fn ws_client(addr: SocketAddr, version: ProtocolVersion, id: &str) -> WsStream<TcpStream> {
    let mut ws = WsStream::upgrade(tcp(addr), &upgrade_request("/mqtt"))
        .unwrap_or_else(|e| panic!("upgrade: {e}"));
    let connect = encode_bytes(&ConnectBuilder::new(version, id).packet(), version);
    ws.send_raw(&client_frame(OP_BINARY, true, &connect, true));
    assert!(matches!(ws.read_packet(version), Some(Packet::ConnAck(_))));
    ws
}

#[test]
fn rumqttc_over_ws_and_wss_talks_to_plain_clients_through_the_broker() {
    let pki = Pki::new();
    let (broker, ws, wss) = ws_broker(&pki);
    let mut plain = RawClient::connect(broker.addr, V4, "ws-plain-pub");
    for (addr, ca, id) in [(ws, None, "ws-sub"), (wss, Some(pki.ca_pem()), "wss-sub")] {
        let mut options = rumqtt_ws(addr, id, ca.as_deref(), None);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (mut sub, connack) = Rumqtt4::connect_with(options);
        assert_eq!(connack.code, rumqttc::ConnectReturnCode::Success);
        let topic = format!("{id}/t");
        sub.client
            .subscribe(&topic, rumqttc::QoS::AtLeastOnce)
            .unwrap_or_else(|e| panic!("{e}"));
        sub.wait_for_incoming(|p| matches!(p, rumqttc::Packet::SubAck(_)), "SUBACK");
        // Larger than a TLS record and than the server's first read.
        let big = vec![b'w'; 200_000];
        plain.publish(&topic, &big, 1, false);
        assert_eq!(&sub.next_publish().payload[..], &big[..]);
    }
}

#[test]
fn mqtt_packets_may_span_frames_and_a_frame_may_hold_several_packets() {
    // [MQTT-6.0.0-2] the receiver must not assume MQTT packets are aligned on frame
    // boundaries; RFC 6455 5.4: control frames may come between a message's fragments.
    let pki = Pki::new();
    let (_broker, ws_addr, wss_addr) = ws_broker(&pki);
    for version in [V4, V5] {
        let mut ws = WsStream::upgrade(tcp(ws_addr), &upgrade_request("/any/path"))
            .unwrap_or_else(|e| panic!("upgrade: {e}"));
        let connect = encode_bytes(&ConnectBuilder::new(version, "frames").packet(), version);
        let (a, rest) = connect.split_at(3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut bytes = client_frame(OP_BINARY, false, a, true);
        bytes.extend(client_frame(OP_PING, true, b"are you there", true));
        bytes.extend(client_frame(OP_CONTINUATION, false, b, true));
        bytes.extend(client_frame(OP_CONTINUATION, true, c, true));
        ws.send_raw(&bytes);
        assert!(matches!(ws.read_packet(version), Some(Packet::ConnAck(_))));
        assert_eq!(
            ws.pongs,
            [b"are you there".to_vec()],
            "the ping is answered"
        );
        // SUBSCRIBE, a PUBLISH to it and PINGREQ in one frame; then a PUBLISH split over
        // two frames, cut inside its fixed header.
        let mut three = encode_bytes(
            &SubscribeBuilder::with(1, &[("frames/t", 0)]).packet(),
            version,
        );
        three.extend(encode_bytes(
            &publish_packet("frames/t", b"one", 0, None, false),
            version,
        ));
        three.extend(encode_bytes(&Packet::PingReq, version));
        ws.send_raw(&client_frame(OP_BINARY, true, &three, true));
        // The SUBACK waits for the other shard to know the subscription; a PUBLISH may come
        // first [MQTT-3.8.4-3], and the PINGRESP does not wait.
        let got: Vec<Packet> = (0..3).filter_map(|_| ws.read_packet(version)).collect();
        let suback = got.iter().any(|p| matches!(p, Packet::SubAck(_)));
        let one = got
            .iter()
            .any(|p| matches!(p, Packet::Publish(p) if &p.payload[..] == b"one"));
        let pong = got.iter().any(|p| matches!(p, Packet::PingResp));
        assert!(suback && one && pong, "{got:?}");
        let split = encode_bytes(&publish_packet("frames/t", b"two", 0, None, false), version);
        ws.send_raw(&client_frame(OP_BINARY, true, &split[..1], true));
        ws.send_raw(&client_frame(OP_BINARY, true, &split[1..], true));
        assert!(
            matches!(ws.read_packet(version), Some(Packet::Publish(p)) if &p.payload[..] == b"two")
        );
    }
    // The same over TLS.
    let stream =
        tls_connect(wss_addr, client_config(&pki.ca_pem(), None)).unwrap_or_else(|e| panic!("{e}"));
    let mut c = RawClient::websocket(stream, V4, "wss-raw")
        .handshake(ConnectBuilder::new(V4, "wss-raw"))
        .0;
    c.subscribe_ok(1, &[("wss/t", 0)]);
    c.ping();
}

#[test]
fn a_bad_upgrade_request_gets_http_400_and_a_close() {
    let pki = Pki::new();
    let (broker, ws_addr, _) = ws_broker(&pki);
    let good = upgrade_request("/mqtt");
    for (request, status) in [
        (good.replace("Sec-WebSocket-Protocol: mqtt\r\n", ""), "400"),
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
        ),
        (good.replace("GET", "POST"), "400"),
        (good.replace("Version: 13", "Version: 8"), "426"),
        // Not HTTP at all: MQTT sent to the WebSocket port.
        (
            String::from_utf8_lossy(&encode_bytes(&ConnectBuilder::new(V4, "lost").packet(), V4))
                .into_owned()
                + "\r\n\r\n",
            "400",
        ),
    ] {
        match WsStream::upgrade(tcp(ws_addr), &request) {
            Ok(_) => panic!("upgraded: {request:?}"),
            Err(response) => assert!(
                response.starts_with(&format!("HTTP/1.1 {status} ")),
                "{request:?}: {response}"
            ),
        }
    }
    // Only those connections were closed.
    RawClient::connect(broker.addr, V4, "after-400").ping();
}

#[test]
fn malformed_frames_close_only_that_connection_with_the_close_code_that_says_why() {
    let pki = Pki::new();
    let (broker, ws_addr, _) = ws_broker(&pki);
    let mut bystander = ws_client(ws_addr, V4, "ws-bystander");
    let subscribe = encode_bytes(&SubscribeBuilder::with(1, &[("bad/#", 0)]).packet(), V4);
    bystander.send_raw(&client_frame(OP_BINARY, true, &subscribe, true));
    assert!(matches!(bystander.read_packet(V4), Some(Packet::SubAck(_))));
    let ping = encode_bytes(&Packet::PingReq, V4);
    for (frame, code) in [
        // RFC 6455 5.1: client frames must be masked: 1002.
        (client_frame(OP_BINARY, true, &ping, false), 1002),
        // [MQTT-6.0.0-1] MQTT is sent in binary frames; a text frame: 1003.
        (client_frame(OP_TEXT, true, &ping, true), 1003),
        // A reserved opcode: 1002.
        (client_frame(0x3, true, &ping, true), 1002),
        // A continuation with nothing to continue: 1002.
        (client_frame(OP_CONTINUATION, true, &ping, true), 1002),
        // A fragmented ping: 1002.
        (client_frame(OP_PING, false, b"x", true), 1002),
    ] {
        let mut ws = ws_client(ws_addr, V4, "ws-bad");
        ws.send_raw(&frame);
        assert_eq!(ws.expect_close(), Some(code), "{frame:02X?}");
    }
    // Bytes inside a frame that are not MQTT: the MQTT rules close it (no Close code to
    // demand, the WebSocket framing itself was fine).
    let mut ws = ws_client(ws_addr, V4, "ws-garbage");
    ws.send_raw(&client_frame(OP_BINARY, true, &[0xF0, 0x00], true));
    ws.expect_close();
    let mut publisher = RawClient::connect(broker.addr, V4, "bad-pub");
    publisher.publish("bad/t", b"still here", 0, false);
    assert!(
        matches!(bystander.read_packet(V4), Some(Packet::Publish(p)) if &p.payload[..] == b"still here")
    );
}

#[test]
fn closing_a_websocket_either_way_sends_a_close_frame() {
    let pki = Pki::new();
    let (broker, ws_addr, _) = ws_broker(&pki);
    // The client's MQTT DISCONNECT: the server ends with Close 1000, then closes TCP.
    let mut ws = ws_client(ws_addr, V5, "ws-disconnect");
    let disconnect = encode_bytes(
        &disconnect_packet(ringmq::protocol::ReasonCode::NORMAL_DISCONNECTION),
        V5,
    );
    ws.send_raw(&client_frame(OP_BINARY, true, &disconnect, true));
    assert_eq!(ws.expect_close(), Some(1000));
    // The client's WebSocket Close without DISCONNECT: echoed, and the will goes out.
    let mut watcher = RawClient::connect(broker.addr, V4, "will-watcher");
    watcher.subscribe_ok(1, &[("ws/will", 0)]);
    let mut ws = WsStream::upgrade(tcp(ws_addr), &upgrade_request("/mqtt"))
        .unwrap_or_else(|e| panic!("upgrade: {e}"));
    let connect = ConnectBuilder::new(V4, "ws-will")
        .will("ws/will", b"gone", 0, false)
        .packet();
    ws.send_raw(&client_frame(
        OP_BINARY,
        true,
        &encode_bytes(&connect, V4),
        true,
    ));
    assert!(matches!(ws.read_packet(V4), Some(Packet::ConnAck(_))));
    ws.send_raw(&client_frame(OP_CLOSE, true, &1001u16.to_be_bytes(), true));
    assert_eq!(ws.expect_close(), Some(1001), "the client's code is echoed");
    assert_eq!(&watcher.expect_publish().payload[..], b"gone");
}
