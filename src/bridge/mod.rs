//! Bridges to other MQTT brokers, the sans-IO part. The IO (the remote socket, TLS, the task
//! on its shard, the local session's connection) is `shard::bridge`.
//!
//! - `rule`: a `[[bridges]]` topic rule (Mosquitto's syntax) and its topic rewriting.
//! - `session`: the bridge's MQTT state between the two brokers: packet ids each way, what
//!   is acknowledged when, what survives an outage (packet in -> packets for each side).
//! - `backoff`: the reconnect delay (exponential, bounded, jittered).
//! - `wire`: the client id of a bridge's local session, the topic of its state.

mod backoff;
mod rule;
mod session;
mod wire;

pub use backoff::Backoff;
pub use rule::{Direction, RuleError, TopicRule};
pub use session::{BridgeError, BridgeSession, MAX_INBOUND, Sends};
pub use wire::{LOCAL_ID_PREFIX, local_client_id, state_topic};
