//! TLS listeners against the real `ringmq` binary, with certificates made in the test (a CA,
//! server and client certificates): rumqttc and raw TLS clients, with and without client
//! certificates, `identity_as_username`, malformed records, and SIGHUP reloads.

pub mod support;

use ringmq::protocol::{ProtocolVersion, ReasonCode};
use rustls::ClientConfig;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A broker with a plain listener (`listen`) and a TLS one (`listeners[0]`) whose
/// `[listeners.tls]` table also holds `tls_extra`.
fn tls_broker(pki: &Pki, tls_extra: &str) -> (Broker, std::net::SocketAddr) {
    let broker = Broker::start_with_config(&pki.listener_toml("mqtt", tls_extra));
    let addr = broker.listener("listeners[0]");
    assert_eq!(broker.listeners[1].scheme, "mqtts");
    (broker, addr)
}

fn trusting(pki: &Pki) -> Arc<ClientConfig> {
    client_config(&pki.ca_pem(), None)
}

#[test]
fn rumqttc_over_tls_talks_to_plain_clients_through_the_broker() {
    let pki = Pki::new();
    let (broker, tls_addr) = tls_broker(&pki, "");
    let mut options = rumqtt_tls(tls_addr, "tls-sub", &pki.ca_pem(), None);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let mut sub = Rumqtt4::connect_with(options).0;
    sub.client
        .subscribe("tls/t", rumqttc::QoS::AtLeastOnce)
        .unwrap_or_else(|e| panic!("{e}"));
    sub.wait_for_incoming(|p| matches!(p, rumqttc::Packet::SubAck(_)), "SUBACK");
    let mut plain = RawClient::connect(broker.addr, V4, "plain-pub");
    plain.publish("tls/t", b"over the wire", 1, false);
    let got = sub.next_publish();
    assert_eq!(&got.payload[..], b"over the wire");
    // And back: a TLS publisher, a plain subscriber, a payload over one TLS record.
    let mut plain_sub = RawClient::connect(broker.addr, V4, "plain-sub");
    plain_sub.subscribe_ok(1, &[("tls/back", 1)]);
    let big = vec![b'x'; 100_000];
    sub.client
        .publish("tls/back", rumqttc::QoS::AtLeastOnce, false, big.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&plain_sub.expect_publish_acked().payload[..], &big[..]);
}

#[test]
fn tls_1_2_and_1_3_are_served_and_alpn_mqtt_is_chosen_when_offered() {
    let pki = Pki::new();
    let (_broker, addr) = tls_broker(&pki, "");
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = ClientConfig::builder_with_protocol_versions(&[version])
            .with_root_certificates(roots(&pki))
            .with_no_client_auth();
        let stream = tls_connect(addr, Arc::new(config)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stream.conn.protocol_version(), Some(version.version));
        assert_eq!(stream.conn.alpn_protocol(), None, "ALPN is not required");
        let mut c = RawClient::from_wire(Box::new(stream), V4, "tls-version");
        c = c.handshake(ConnectBuilder::new(V4, "tls-version")).0;
        c.ping();
    }
    let mut config = (*trusting(&pki)).clone();
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    let stream = tls_connect(addr, Arc::new(config)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"mqtt"[..]));
}

fn roots(pki: &Pki) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem().as_bytes()) {
        let cert: rustls::pki_types::CertificateDer = cert.unwrap_or_else(|e| panic!("{e}"));
        roots.add(cert).unwrap_or_else(|e| panic!("{e}"));
    }
    roots
}

#[test]
fn rumqttc_presents_a_client_certificate_where_one_is_required() {
    let pki = Pki::new();
    let extra = format!("{}\nrequire_client_cert = true", pki.client_ca_line());
    let (_broker, addr) = tls_broker(&pki, &extra);
    let alice = pki.client("alice");
    let options = rumqtt_tls(addr, "with-cert", &pki.ca_pem(), Some(&alice));
    let (mut c, connack) = Rumqtt4::connect_with(options);
    assert_eq!(connack.code, rumqttc::ConnectReturnCode::Success);
    c.client
        .subscribe("cert/t", rumqttc::QoS::AtMostOnce)
        .unwrap_or_else(|e| panic!("{e}"));
    c.wait_for_incoming(|p| matches!(p, rumqttc::Packet::SubAck(_)), "SUBACK");
}

#[test]
fn require_client_cert_refuses_a_client_without_one() {
    let pki = Pki::new();
    let extra = format!("{}\nrequire_client_cert = true", pki.client_ca_line());
    let (_broker, addr) = tls_broker(&pki, &extra);
    // In TLS 1.3 the client finishes its side of the handshake before the server has
    // checked it: the refusal (alert certificate_required) arrives on the first read.
    if let Ok(stream) = tls_connect(addr, trusting(&pki)) {
        let mut c = RawClient::from_wire(Box::new(stream), V4, "no-cert");
        c.send(&ConnectBuilder::new(V4, "no-cert").packet());
        c.expect_closed(PROMPT);
    }
    // A certificate from another CA is refused too.
    let other = Pki::new();
    let stranger = other.client("mallory");
    if let Ok(stream) = tls_connect(addr, client_config(&pki.ca_pem(), Some(&stranger))) {
        let mut c = RawClient::from_wire(Box::new(stream), V4, "stranger");
        c.send(&ConnectBuilder::new(V4, "stranger").packet());
        c.expect_closed(PROMPT);
    }
    // An optional client certificate: both kinds of client get in.
    let (_broker, optional) = tls_broker(&pki, &pki.client_ca_line());
    let alice = pki.client("alice");
    for (name, cert) in [("anonymous", None), ("alice", Some(&alice))] {
        let config = client_config(&pki.ca_pem(), cert);
        RawClient::tls(optional, config, V4, name)
            .handshake(ConnectBuilder::new(V4, name))
            .0
            .ping();
    }
}

#[test]
fn identity_as_username_takes_the_certificate_and_refuses_clients_without_one() {
    // Like Mosquitto's use_identity_as_username: no certificate (or no CN in it) is answered
    // as a bad user name or password, 3.1.1 0x04, 5.0 0x86. The CN is the user name the ACL
    // sees (the CONNECT's own user name and password are not used; no password file
    // applies), so bob's rules are bob's whatever the CONNECT says.
    let pki = Pki::new();
    let acl = pki.write("acl", "user bob\ntopic readwrite bob/#\n");
    let passwd = pki.write("passwd", "");
    let extra = format!("{}\nidentity_as_username = true", pki.client_ca_line());
    let toml = format!(
        "{}\n[auth]\nacl_file = {:?}\npassword_file = {:?}\n",
        pki.listener_toml("mqtt", &extra),
        path_str(&acl),
        path_str(&passwd)
    );
    let broker = Broker::start_with_config(&toml);
    let addr = broker.listener("listeners[0]");
    for (version, code) in [
        (V4, ReasonCode::BadUserNameOrPassword),
        (V5, ReasonCode::BadUserNameOrPassword),
    ] {
        let mut c = RawClient::tls(addr, trusting(&pki), version, "no-identity");
        c.send(&ConnectBuilder::new(version, "no-identity").packet());
        assert_eq!(c.expect_connack().reason, code, "{version:?}");
        c.expect_closed(PROMPT);
    }
    let bob = pki.client("bob");
    for version in [V4, V5] {
        let config = client_config(&pki.ca_pem(), Some(&bob));
        let connect = ConnectBuilder::new(version, "bob-device").credentials("not-bob", b"ignored");
        let (mut c, _) = RawClient::tls(addr, config, version, "bob-device").handshake(connect);
        c.subscribe_ok(1, &[("bob/#", 1)]);
        let refused = c.subscribe(2, &[("not-bob/#", 1)]);
        assert_ne!(
            refused,
            [ReasonCode::GrantedQoS1],
            "{version:?}: only bob's rules"
        );
        c.disconnect();
    }
}

#[test]
fn a_malformed_tls_record_closes_only_that_connection() {
    let pki = Pki::new();
    let (broker, addr) = tls_broker(&pki, "");
    let mut bystander = RawClient::tls(addr, trusting(&pki), V4, "bystander")
        .handshake(ConnectBuilder::new(V4, "bystander"))
        .0;
    bystander.subscribe_ok(1, &[("malformed/#", 0)]);
    // Not TLS at all: an MQTT CONNECT sent in the clear to the TLS port.
    let mut clear = RawClient::tcp(addr, V4, "in-the-clear");
    clear.send(&ConnectBuilder::new(V4, "in-the-clear").packet());
    let (answer, closed) = clear.read_raw_until_closed(PROMPT);
    assert!(closed, "not closed; got {answer:02X?}");
    assert!(
        answer.is_empty() || answer.first() == Some(&0x15),
        "an alert or nothing: {answer:02X?}"
    );
    // A handshake record whose length runs past what a ClientHello can be.
    let mut garbage = RawClient::tcp(addr, V4, "garbage");
    garbage.send_bytes(&[0x16, 0x03, 0x01, 0xFF, 0xFF, 0x01, 0x00]);
    garbage.send_bytes(&[0u8; 64]);
    let (answer, closed) = garbage.read_raw_until_closed(PROMPT);
    assert!(closed, "not closed; got {answer:02X?}");
    // After the handshake: an application-data record that does not decrypt.
    let mut tampered = tls_connect(addr, trusting(&pki)).unwrap_or_else(|e| panic!("{e}"));
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    record.extend_from_slice(&[0xA5; 0x20]);
    tampered
        .sock
        .write_all(&record)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = RawClient::from_wire(Box::new(tampered), V4, "tampered");
    c.expect_closed(PROMPT);
    // The other TLS client never noticed.
    let mut publisher = RawClient::connect(broker.addr, V4, "malformed-pub");
    publisher.publish("malformed/t", b"still here", 0, false);
    assert_eq!(&bystander.expect_publish().payload[..], b"still here");
    bystander.ping();
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_only() {
    let pki = Pki::new();
    let (mut broker, addr) = tls_broker(&pki, "");
    let presented = || {
        let stream = tls_connect(addr, trusting(&pki)).unwrap_or_else(|e| panic!("{e}"));
        let chain = stream.conn.peer_certificates().unwrap_or_default();
        chain.first().map(|c| c.to_vec()).unwrap_or_default()
    };
    let first = presented();
    let mut live = RawClient::tls(addr, trusting(&pki), V4, "live")
        .handshake(ConnectBuilder::new(V4, "live"))
        .0;
    let renewed = pki.server("ringmq renewed server", 2);
    assert_ne!(first, renewed.der);
    pki.write("server.pem", &renewed.cert_pem);
    pki.write("server.key", &renewed.key_pem);
    broker.sighup();
    eventually("new connections get the renewed certificate", || {
        (presented() == renewed.der)
            .then_some(())
            .ok_or_else(|| "the old one".to_string())
    });
    live.ping();
    // A reload that fails (a key that does not match) keeps the renewed certificate.
    let other = pki.server("unused", 3);
    pki.write("server.key", &other.key_pem);
    broker.sighup();
    std::thread::sleep(Duration::from_millis(300));
    broker.assert_alive();
    assert_eq!(presented(), renewed.der);
    live.ping();
}

#[test]
fn half_done_handshakes_do_not_hold_up_other_clients() {
    // Each shard gives at most 256 connections their handshake at once, and each one 10 s
    // (the CONNECT timeout); meanwhile the shard serves everyone else.
    let pki = Pki::new();
    let (broker, addr) = tls_broker(&pki, "");
    let stalled: Vec<std::net::TcpStream> = (0..100)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(addr).ok()?;
            // The first bytes of a ClientHello, and then nothing.
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(stalled.len(), 100);
    let mut c = RawClient::tls(addr, trusting(&pki), V5, "prompt")
        .handshake(ConnectBuilder::new(V5, "prompt"))
        .0;
    c.subscribe_ok(1, &[("prompt/t", 0)]);
    RawClient::connect(broker.addr, V4, "plain-prompt").publish("prompt/t", b"x", 0, false);
    assert_eq!(&c.expect_publish().payload[..], b"x");
}
