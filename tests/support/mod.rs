//! The one harness of the integration suites: start the real `ringmq` binary, talk to it
//! with independent clients (a raw-socket client on our codec, rumqttc), build the packets.
//!
//! | file | owns |
//! | --- | --- |
//! | `broker.rs` | the broker process: start on a port it picks and announces, SIGTERM, exit |
//! | `shards.rs` | client ids pinned to a home shard (cross-shard and same-shard tests) |
//! | `packets.rs` | builders for CONNECT, PUBLISH, SUBSCRIBE, ...; raw frames and encoding |
//! | `raw.rs` | [`RawClient`]: exact packets or bytes in, exactly what the broker sends out |
//! | `rumqtt.rs` | rumqttc 3.1.1 and 5.0 clients, each driven by its own thread |
//! | `wait.rs` | [`PROMPT`], [`QUIET`] and [`eventually`]: waiting on conditions |
//!
//! # Where a test goes
//!
//! - `conformance_*.rs`: a rule of both 3.1.1 and 5.0, by spec section (connect, publish,
//!   retained, session, will and keep alive and takeover, malformed input, what the config
//!   announces, many clients).
//! - `mqtt5_*.rs`: one 5.0-only feature per suite (topic aliases, shared subscriptions,
//!   limits and reason strings, server reason codes, enhanced auth, ...); `conformance_v5.rs`
//!   holds the 5.0-only rules that have no suite of their own.
//! - `binary_startup.rs`: the command line.
//!
//! Each behaviour is tested once: look for it (`grep -rn MQTT-3.1.2-24 tests/`) before
//! adding a test, and add to the existing test if it is there.
//!
//! # Writing a test
//!
//! ```ignore
//! pub mod support; // `pub`: the helpers a suite does not use are not dead code
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
pub mod packets;
pub mod raw;
pub mod rumqtt;
pub mod shards;
pub mod wait;

pub use broker::*;
pub use packets::*;
pub use raw::*;
pub use rumqtt::*;
pub use shards::*;
pub use wait::*;
