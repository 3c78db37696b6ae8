//! The one harness of the integration suites: start the real `ringmq` binary, talk to it
//! with independent clients (a raw-socket client on our codec, rumqttc), build the packets.
//!
//! | file | owns |
//! | --- | --- |
//! | `broker.rs` | the broker process: start on a port it picks and announces, its log lines, SIGTERM, exit |
//! | `shards.rs` | client ids pinned to a home shard (cross-shard and same-shard tests) |
//! | `packets.rs` | builders for CONNECT, PUBLISH, SUBSCRIBE, ...; raw frames and encoding |
//! | `raw.rs` | [`RawClient`]: exact packets or bytes in, exactly what the broker sends out |
//! | `rumqtt.rs` | rumqttc 3.1.1 and 5.0 clients, each driven by its own thread |
//! | `tls.rs` | [`Pki`] (a CA and certificates made with rcgen), [`RawClient::tls`], rumqttc over TLS |
//! | `ws.rs` | [`WsStream`] (raw RFC 6455 client frames, malformed on purpose too), [`RawClient::websocket`], rumqttc over ws:// and wss:// |
//! | `mosquitto.rs` | [`Mosquitto`]: a real Mosquitto on a loopback port (bridge tests; skipped where it is not installed) |
//! | `wait.rs` | [`PROMPT`], [`QUIET`] and [`eventually`]: waiting on conditions |
//!
//! # Where a test goes
//!
//! By spec section, for rules of both 3.1.1 and 5.0 (`conformance_*.rs`): `connect` (CONNECT
//! and CONNACK, client ids, Session Present), `publish` (QoS flows, SUBACK, wildcards,
//! UNSUBSCRIBE, ordering, rumqttc interop), `retained`, `session` (persistence, resends,
//! session expiry), `will` (wills, keep alive, takeover, DISCONNECT), `malformed` (bad input
//! closes only that connection), `config` (what the config announces and enforces), `scale`
//! (many clients, back-pressure).
//!
//! By 5.0 feature (`mqtt5_*.rs`): `topic_alias`, `shared_subscriptions`, `limits` (the
//! client's Maximum Packet Size and Reason Strings, byte for byte), `server_codes` (refusals
//! and DISCONNECTs the server starts), `enhanced_auth`, `payload_format`,
//! `response_information`; `conformance_v5.rs` holds the 5.0-only rules without a suite of
//! their own (Receive Maximum, subscription options, Subscription Identifiers, message
//! expiry, will delay). `binary_startup.rs`: the command line, listeners, and the start-up
//! refusals of bad listener settings and certificate files. `observability.rs`: what an
//! operator sees (log lines, `/metrics`, `$SYS` topics). `tls.rs`: TLS listeners (client
//! certificates, `identity_as_username`, malformed records, SIGHUP reloads).
//! `websockets.rs`: WebSocket listeners, plain and over TLS (framing, the upgrade, malformed
//! frames, closing).
//! `bridge.rs`: `[[bridges]]` (ringmq to ringmq, and to a real Mosquitto when installed).
//! `persistence.rs`: `[persistence]` with restarts (`kill -9`, torn logs, other `--shards`).
//! `reliability_probes.rs`: memory probes (ignored: run by hand in release mode; their
//! numbers are in `docs/reliability.md`).
//!
//! Each behaviour is tested once: look for it first (`grep -rn MQTT-3.1.2-24 tests/`) and add
//! to the test that is there. Where the spec names a reason code, demand it
//! ([`RawClient::expect_disconnect_then_close`]); accept a bare close only where the spec
//! does.
//!
//! # Writing a test
//!
//! ```ignore
//! pub mod support; // `pub`: the helpers a suite does not use are not dead code
//! use ringmq::protocol::ProtocolVersion;
//! use support::*;
//!
//! #[test]
//! fn a_retained_message_is_delivered_on_subscribe_with_retain_1() {
//!     // [MQTT-3.3.1-6] (3.1.1): sent to a new matching subscription, [MQTT-3.3.1-8] RETAIN 1.
//!     let broker = Broker::start(); // or Broker::start_with_config("[mqtt]\n...")
//!     let [pub_id, sub_id] = ids_on_distinct_shards("ret"); // the message crosses the mesh
//!     let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V4, &pub_id);
//!     publisher.publish("ret/a", b"kept", 1, true); // waits for the PUBACK
//!     let mut sub = RawClient::connect(broker.addr, ProtocolVersion::V4, &sub_id);
//!     sub.subscribe_ok(1, &[("ret/a", 1)]);
//!     let got = sub.expect_publish_acked();
//!     assert!(got.retain, "[MQTT-3.3.1-8]");
//!     sub.expect_nothing(QUIET);
//! }
//! ```
//!
//! - One broker per test: tests run in parallel, each on its own port.
//! - Name the test after the behaviour; cite the normative statement it checks
//!   (`[MQTT-x.y.z-n]`, saying 3.1.1 or 5.0) and assert what would fail if it broke.
//! - Wait on conditions, not the clock: `expect_*` wait up to [`PROMPT`] for what must
//!   happen, [`QUIET`] is how long to watch for what must not, [`RawClient::ping`] is a
//!   barrier (everything sent before it was processed), and [`eventually`] retries a check
//!   of state that settles across shards. Sleep only when time itself is the behaviour
//!   (keep alive, expiry intervals, delays).
//! - Exact bytes: [`RawClient::send_bytes`] with [`frame`], and [`RawClient::expect_raw_packet`]
//!   or [`RawClient::expect_raw_until_closed`] for what comes back.
//! - A builder for a packet another suite needs too belongs in `packets.rs`, not in the suite.

pub mod broker;
pub mod mosquitto;
pub mod packets;
pub mod raw;
pub mod rumqtt;
pub mod shards;
pub mod tls;
pub mod wait;
pub mod ws;

pub use broker::*;
pub use mosquitto::*;
pub use packets::*;
pub use raw::*;
pub use rumqtt::*;
pub use shards::*;
pub use tls::*;
pub use wait::*;
pub use ws::*;
