//! MQTT 5.0 enhanced authentication (sections 3.15 and 4.12) against the real `ringmq`
//! binary: the AUTH exchange before CONNACK, re-authentication on a live connection, and the
//! protocol errors around both, with SCRAM-SHA-256 (RFC 5802 / RFC 7677) as the method. The
//! client side of SCRAM is implemented here with the same RustCrypto crates.

pub mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use ringmq::protocol::packet::{Auth, ConnAck};
use ringmq::protocol::{Packet, Properties, ProtocolVersion, ReasonCode};
use sha2::{Digest, Sha256};
use std::time::Duration;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const SCRAM: &str = "SCRAM-SHA-256";
const CONFIG: &str = r#"
[[auth.scram]]
username = "alice"
password = "wonderland"
"#;

// ----- the client side of SCRAM-SHA-256 --------------------------------------------------

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// One SCRAM login as a client: client-first, then client-final from the server-first.
struct ScramClient {
    password: String,
    first_bare: String,
    nonce: String,
    server_signature: Option<[u8; 32]>,
}

impl ScramClient {
    fn new(user: &str, password: &str, nonce: &str) -> Self {
        Self {
            password: password.into(),
            first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.into(),
            server_signature: None,
        }
    }

    fn client_first(&self) -> Bytes {
        Bytes::from(format!("n,,{}", self.first_bare))
    }

    fn client_final(&mut self, server_first: &[u8]) -> Bytes {
        let server_first = std::str::from_utf8(server_first).expect("server-first is UTF-8");
        let mut fields = server_first.split(',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .expect("r=");
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .expect("s=");
        let iterations: u32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .expect("i=");
        assert!(
            nonce.starts_with(&self.nonce) && nonce.len() > self.nonce.len(),
            "the server nonce extends ours: {nonce}"
        );
        let salt = BASE64.decode(salt).expect("base64 salt");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Bytes::from(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// The server proved it knows the user's keys (mutual authentication).
    fn assert_server_final(&self, data: Option<&Bytes>) {
        let expected = format!(
            "v={}",
            BASE64.encode(self.server_signature.expect("final sent"))
        );
        assert_eq!(
            data.map(|d| String::from_utf8_lossy(d).into_owned()),
            Some(expected),
            "server-final carries the server signature"
        );
    }
}

// ----- packets -----------------------------------------------------------------------------

fn auth_properties(method: &str, data: Option<Bytes>) -> Properties {
    let mut properties = Properties::default();
    properties.authentication_method = Some(mqtt_string(method));
    properties.authentication_data = data;
    properties
}

fn connect_with_method(client_id: &str, method: &str, data: Option<Bytes>) -> Packet {
    let mut connect = ConnectBuilder::new(V5, client_id);
    connect.0.properties = auth_properties(method, data);
    connect.packet()
}

fn auth_packet(reason: ReasonCode, method: &str, data: Option<Bytes>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: auth_properties(method, data),
    })
}

fn expect_auth(client: &mut RawClient, reason: ReasonCode) -> Auth {
    match client.expect_packet(PROMPT) {
        // [MQTT-4.12.0-5] every AUTH from the server carries the method of the CONNECT.
        Packet::Auth(a) if a.reason == reason => {
            assert_eq!(
                a.properties
                    .authentication_method
                    .as_ref()
                    .map(|m| m.as_str()),
                Some(SCRAM),
                "AUTH carries the method [MQTT-4.12.0-5]"
            );
            a
        }
        other => panic!("{}: expected AUTH {reason:?}, got {other:?}", client.name),
    }
}

fn expect_refused(client: &mut RawClient, reason: ReasonCode) {
    let connack = client.expect_connack();
    assert_eq!(connack.reason, reason, "{connack:?}");
    client.expect_closed(PROMPT);
}

/// Sends CONNECT with `user`'s client-first and reads the server-first (AUTH 0x18): the
/// exchange is then waiting for the client-final. Returns the server-first's data.
fn start_exchange(broker: &Broker, client_id: &str, scram: &ScramClient) -> (RawClient, Bytes) {
    let mut client = RawClient::tcp(broker.addr, V5, client_id);
    client.send(&connect_with_method(
        client_id,
        SCRAM,
        Some(scram.client_first()),
    ));
    // [MQTT-4.12.0-2] the server asks for more with AUTH 0x18.
    let server_first = expect_auth(&mut client, ReasonCode::ContinueAuthentication);
    let data = server_first.properties.authentication_data.clone();
    (client, data.unwrap_or_default())
}

/// Sends CONNECT with client-first and answers the server-first: the CONNACK that follows.
fn scram_connect(broker: &Broker, client_id: &str, password: &str) -> (RawClient, ConnAck) {
    let mut scram = ScramClient::new("alice", password, "fyko+d2lbbFgONRv9qkxdawL");
    let (mut client, data) = start_exchange(broker, client_id, &scram);
    let client_final = scram.client_final(&data);
    // [MQTT-4.12.0-3] the client answers with AUTH 0x18.
    client.send(&auth_packet(
        ReasonCode::ContinueAuthentication,
        SCRAM,
        Some(client_final),
    ));
    let connack = client.expect_connack();
    if connack.reason == ReasonCode::Success {
        scram.assert_server_final(connack.properties.authentication_data.as_ref());
    }
    (client, connack)
}

fn authenticated(broker: &Broker, client_id: &str) -> RawClient {
    let (client, connack) = scram_connect(broker, client_id, "wonderland");
    assert_eq!(connack.reason, ReasonCode::Success, "{connack:?}");
    client
}

/// A re-authentication [MQTT-4.12.1-1]: AUTH 0x19 with client-first, then client-final.
/// `between` runs after the server-first arrived, while the exchange is in progress.
fn reauthenticate(client: &mut RawClient, password: &str, between: impl FnOnce(&mut RawClient)) {
    let mut scram = ScramClient::new("alice", password, "3rfcNHYJY1ZVvWVs7j");
    client.send(&auth_packet(
        ReasonCode::ReAuthenticate,
        SCRAM,
        Some(scram.client_first()),
    ));
    let server_first = expect_auth(client, ReasonCode::ContinueAuthentication);
    between(client);
    let data = server_first
        .properties
        .authentication_data
        .clone()
        .unwrap_or_default();
    let client_final = scram.client_final(&data);
    client.send(&auth_packet(
        ReasonCode::ContinueAuthentication,
        SCRAM,
        Some(client_final),
    ));
    if password == "wonderland" {
        let success = expect_auth(client, ReasonCode::Success);
        scram.assert_server_final(success.properties.authentication_data.as_ref());
    }
}

// ----- tests -------------------------------------------------------------------------------

#[test]
fn an_unknown_authentication_method_is_refused_with_0x8c() {
    // [MQTT-4.12.0-1] "If the Server does not support the Authentication Method supplied by
    // the Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
    // method) or 0x87 (Not Authorized) as described in section 4.13 and MUST close the
    // Network Connection." ringmq answers 0x8C, whether it has SCRAM users configured or
    // no enhanced authentication at all.
    for (config, method) in [(CONFIG, "GS2-KRB5"), ("", "SCRAM-SHA-999")] {
        let broker = Broker::start_with_config(config);
        let mut client = RawClient::tcp(broker.addr, V5, "auth-unknown");
        client.send(&connect_with_method("auth-unknown", method, None));
        expect_refused(&mut client, ReasonCode::BadAuthenticationMethod);
    }
}

#[test]
fn scram_succeeds_in_two_round_trips_and_connack_repeats_the_method() {
    // 4.12: CONNECT(client-first) / AUTH 0x18(server-first) / AUTH 0x18(client-final) /
    // CONNACK 0x00(server-final); [MQTT-4.12.0-5] the successful CONNACK carries the method.
    let broker = Broker::start_with_config(CONFIG);
    let (mut client, connack) = scram_connect(&broker, "auth-ok", "wonderland");
    assert_eq!(connack.reason, ReasonCode::Success);
    assert_eq!(
        connack
            .properties
            .authentication_method
            .as_ref()
            .map(|m| m.as_str()),
        Some(SCRAM)
    );
    client.ping();
}

#[test]
fn a_wrong_password_is_not_authorized_and_closed() {
    // [MQTT-4.12.0-4] the server may refuse at any point with CONNACK >= 0x80 and MUST close.
    let broker = Broker::start_with_config(CONFIG);
    let (mut client, connack) = scram_connect(&broker, "auth-wrong", "looking-glass");
    assert_eq!(connack.reason, ReasonCode::NotAuthorized, "{connack:?}");
    client.expect_closed(PROMPT);
}

#[test]
fn an_unknown_user_is_not_authorized_like_a_wrong_password() {
    // RFC 5802 section 5.1: an unknown user gets a server-first too and fails at the proof.
    let broker = Broker::start_with_config(CONFIG);
    let mut scram = ScramClient::new("bob", "builder", "Bnonce");
    let (mut client, data) = start_exchange(&broker, "auth-nobody", &scram);
    client.send(&auth_packet(
        ReasonCode::ContinueAuthentication,
        SCRAM,
        Some(scram.client_final(&data)),
    ));
    expect_refused(&mut client, ReasonCode::NotAuthorized);
}

#[test]
fn a_non_auth_packet_during_the_exchange_is_a_protocol_error() {
    // [MQTT-3.1.2-30] only AUTH or DISCONNECT until CONNACK. The server may not send
    // DISCONNECT before a successful CONNACK [MQTT-3.14.0-1], so it refuses with CONNACK 0x82.
    let broker = Broker::start_with_config(CONFIG);
    let scram = ScramClient::new("alice", "wonderland", "early");
    let (mut client, _) = start_exchange(&broker, "auth-early", &scram);
    client.send(&subscribe_packet(1, &[("early/#", 1)]));
    expect_refused(&mut client, ReasonCode::ProtocolError);
}

#[test]
fn auth_with_another_method_is_a_protocol_error() {
    // [MQTT-4.12.0-5] every AUTH carries the CONNECT's method: before CONNACK the answer is
    // CONNACK 0x82; in a re-authentication [MQTT-4.12.1-1] it is DISCONNECT 0x82.
    let broker = Broker::start_with_config(CONFIG);
    let scram = ScramClient::new("alice", "wonderland", "switch");
    let (mut client, _) = start_exchange(&broker, "auth-switch", &scram);
    client.send(&auth_packet(
        ReasonCode::ContinueAuthentication,
        "SCRAM-SHA-1",
        None,
    ));
    expect_refused(&mut client, ReasonCode::ProtocolError);

    let mut live = authenticated(&broker, "auth-switch-live");
    let other = ScramClient::new("alice", "wonderland", "other");
    live.send(&auth_packet(
        ReasonCode::ReAuthenticate,
        "SCRAM-SHA-1",
        Some(other.client_first()),
    ));
    live.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
}

#[test]
fn re_authentication_succeeds_and_the_session_keeps_working_across_shards() {
    // [MQTT-4.12.1-1] AUTH 0x19 with the same method; the server answers AUTH 0x18, then
    // AUTH 0x00. Other traffic goes on during the exchange (4.12.1).
    let broker = Broker::start_with_config(CONFIG);
    let [me, peer] = ids_on_distinct_shards("reauth");
    let mut client = authenticated(&broker, &me);
    client.subscribe_ok(1, &[("reauth/in", 1)]);
    let mut other = RawClient::connect(broker.addr, V5, &peer);
    other.subscribe_ok(1, &[("reauth/out", 1)]);
    reauthenticate(&mut client, "wonderland", |c| {
        // Publishing in the middle of the exchange is answered as usual.
        c.publish("reauth/out", b"during", 1, false);
    });
    assert_eq!(payload_str(&other.expect_publish_acked()), "during");
    // After the exchange: both directions across the shards still work.
    other.publish("reauth/in", b"to-me", 1, false);
    assert_eq!(payload_str(&client.expect_publish_acked()), "to-me");
    client.publish("reauth/out", b"after", 1, false);
    assert_eq!(payload_str(&other.expect_publish_acked()), "after");
    // And a second re-authentication works too.
    reauthenticate(&mut client, "wonderland", |_| {});
    client.ping();
}

#[test]
fn a_failed_re_authentication_disconnects() {
    // [MQTT-4.12.1-2] a failed re-authentication: DISCONNECT with a reason, then close.
    let broker = Broker::start_with_config(CONFIG);
    let mut client = authenticated(&broker, "reauth-bad");
    reauthenticate(&mut client, "looking-glass", |_| {});
    client.expect_disconnect_then_close(PROMPT, &[ReasonCode::NotAuthorized]);
}

#[test]
fn auth_from_a_client_that_named_no_method_is_a_protocol_error() {
    // [MQTT-4.12.0-7] without an Authentication Method in CONNECT the client must not send
    // AUTH; [MQTT-4.12.0-6] nor does the server (CONNACK carries no method).
    let broker = Broker::start_with_config(CONFIG);
    let (mut client, connack) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "auth-none"));
    assert_eq!(connack.properties.authentication_method, None);
    let scram = ScramClient::new("alice", "wonderland", "none");
    client.send(&auth_packet(
        ReasonCode::ReAuthenticate,
        SCRAM,
        Some(scram.client_first()),
    ));
    client.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
}

#[test]
fn an_idle_half_authenticated_connection_is_closed() {
    // The exchange is bounded: a client that stops answering is closed without CONNACK.
    let broker = Broker::start_with_config(&format!("[auth]\nexchange_timeout_ms = 300\n{CONFIG}"));
    let scram = ScramClient::new("alice", "wonderland", "idle");
    let (mut client, _) = start_exchange(&broker, "auth-idle", &scram);
    client.expect_closed(Duration::from_secs(2));
}

#[test]
fn a_connection_that_fails_authentication_takes_nothing_over() {
    // Takeover [MQTT-3.1.4-3] happens only once the new connection is authenticated: a
    // wrong password for a live client id leaves the live connection alone.
    let broker = Broker::start_with_config(CONFIG);
    let mut live = authenticated(&broker, "auth-takeover");
    let (mut intruder, connack) = scram_connect(&broker, "auth-takeover", "looking-glass");
    assert_eq!(connack.reason, ReasonCode::NotAuthorized);
    assert!(!connack.session_present);
    intruder.expect_closed(PROMPT);
    live.ping();
    // A successful login with the same id does take over.
    let _next = authenticated(&broker, "auth-takeover");
    live.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
}
