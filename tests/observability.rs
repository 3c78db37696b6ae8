//! What an operator sees: the log lines of connects, disconnects (with why), refusals and
//! takeovers, in text and JSON; never a password or a payload at `info`.

pub mod support;

use ringmq::protocol::{ProtocolVersion, ReasonCode};
use std::time::Duration;
use support::*;

/// How long a log line may take to appear (it goes through the logger's queue and thread).
const LOGGED: Duration = Duration::from_secs(5);

fn logged(broker: &Broker, parts: &[&str]) -> String {
    broker
        .wait_for_log(LOGGED, |l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| {
            panic!(
                "no log line with {parts:?} in:\n{}",
                broker.log_lines().join("\n")
            )
        })
}

#[test]
fn a_connect_and_its_disconnect_are_logged_with_their_fields_but_no_secrets() {
    let broker = Broker::start();
    // Homed on shard 1: a connection accepted by shard 0 is handed off and still logged.
    let id = id_on_shard("logged", 1);
    let mut connect = ConnectBuilder::new(ProtocolVersion::V5, &id).keep_alive(30);
    connect.0.username = Some(mqtt_string("alice"));
    connect.0.password = Some(bytes::Bytes::from_static(b"hunter2-password"));
    let (mut client, _) = RawClient::connect_with(broker.addr, connect);
    let line = logged(&broker, &["client connected", &format!("client_id={id}")]);
    for field in [
        "peer=127.0.0.1:",
        "protocol=5.0",
        "clean_start=true",
        "keepalive=30",
        "username=alice",
        "shard=1",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(line.contains(" INFO "), "{line}");
    client.publish("logged/t", b"payload-secret-42", 1, false);
    client.disconnect();
    let line = logged(
        &broker,
        &["client disconnected", &format!("client_id={id}")],
    );
    assert!(line.contains("cause=\"client disconnect\""), "{line}");
    assert!(
        line.contains("code=0x00") && line.contains("peer=127.0.0.1:"),
        "{line}"
    );
    for line in broker.log_lines() {
        assert!(!line.contains("hunter2"), "a password in the log: {line}");
        assert!(
            !line.contains("payload-secret"),
            "a payload in the log: {line}"
        );
    }
}

#[test]
fn a_takeover_is_logged_as_the_old_connections_end() {
    // [MQTT-3.1.4-3] the old connection is closed; the log says so and why.
    let broker = Broker::start();
    let id = id_on_shard("taken", 0);
    let mut old = RawClient::connect(broker.addr, ProtocolVersion::V5, &id);
    let _new = RawClient::connect(broker.addr, ProtocolVersion::V5, &id);
    old.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
    let line = logged(&broker, &["client disconnected", "cause=\"taken over\""]);
    assert!(line.contains(&format!("client_id={id}")), "{line}");
    assert!(
        line.contains("code=0x8e") && line.contains("reason=SessionTakenOver"),
        "{line}"
    );
    let connects = broker
        .log_lines()
        .iter()
        .filter(|l| l.contains("client connected") && l.contains(&format!("client_id={id}")))
        .count();
    assert_eq!(connects, 2, "both connections were logged");
}

#[test]
fn a_keepalive_expiry_is_logged() {
    // [MQTT-3.1.2-24] (3.1.1): silent for 1.5 x 1 s, the client is cut; the log says why.
    let broker = Broker::start();
    let id = id_on_shard("silent", 1);
    let connect = ConnectBuilder::new(ProtocolVersion::V4, &id).keep_alive(1);
    let (mut client, _) = RawClient::connect_with(broker.addr, connect);
    client.expect_closed(Duration::from_secs(4));
    let line = logged(
        &broker,
        &["client disconnected", "cause=\"keepalive timeout\""],
    );
    assert!(line.contains(&format!("client_id={id}")), "{line}");
    assert!(line.contains("code=0x8d"), "{line}");
}

#[test]
fn a_protocol_error_is_logged_with_the_rule_broken() {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol error.
    let broker = Broker::start();
    let id = id_on_shard("twice", 0);
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V5, &id);
    client.send(&ConnectBuilder::new(ProtocolVersion::V5, &id).packet());
    client.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
    let line = logged(
        &broker,
        &["client disconnected", "cause=\"protocol error\""],
    );
    assert!(line.contains("code=0x82"), "{line}");
    assert!(
        line.contains("detail=\"a second CONNECT [MQTT-3.1.0-2]\""),
        "{line}"
    );
}

#[test]
fn a_refused_connect_is_logged_with_its_reason_code() {
    // [MQTT-3.1.3-8] (3.1.1) an empty client id needs a clean session: CONNACK 0x02.
    let broker = Broker::start();
    let mut client = RawClient::tcp(broker.addr, ProtocolVersion::V4, "anonymous");
    client.send(
        &ConnectBuilder::new(ProtocolVersion::V4, "")
            .clean(false)
            .packet(),
    );
    client.expect_connack();
    let line = logged(&broker, &["connection refused", "protocol=3.1.1"]);
    assert!(
        line.contains("code=0x85") && line.contains("ClientIdentifierNotValid"),
        "{line}"
    );
}

#[test]
fn json_lines_carry_the_same_fields_typed() {
    let broker = Broker::start_with_config("log_format = \"json\"");
    let id = id_on_shard("json", 0);
    let connect = ConnectBuilder::new(ProtocolVersion::V4, &id).keep_alive(20);
    let (client, _) = RawClient::connect_with(broker.addr, connect);
    let line = logged(&broker, &["client connected", &id]);
    let json: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(json["level"], "info");
    assert_eq!(json["msg"], "client connected");
    assert_eq!(json["client_id"], id.as_str());
    assert_eq!(json["protocol"], "3.1.1");
    assert_eq!(json["keepalive"], 20);
    assert_eq!(json["clean_start"], true);
    assert!(
        json.get("username").is_none(),
        "no username, no field: {line}"
    );
    assert!(
        json["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{line}"
    );
    client.drop_connection();
    let line = logged(&broker, &["client disconnected", &id]);
    let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    assert_eq!(json["cause"], "connection lost", "{line}");
    // Every line is JSON, the start-up ones included.
    for line in broker.log_lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "not JSON: {line}"
        );
    }
}
