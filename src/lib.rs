//! ringmq: a thread-per-core MQTT broker on io_uring.
//!
//! The map, bottom to top (each module imports only modules above it in this list):
//!
//! - [`protocol`]: the sans-IO codec for MQTT 3.1, 3.1.1 and 5.0; typed packets, topics,
//!   properties, reason codes. No IO, no clock.
//! - [`timer`]: a hashed timer wheel driven by an explicit `now`.
//! - [`trie`]: the per-shard subscription trie (topic filter -> local subscribers).
//! - [`mesh`]: the lock-free SPSC ring, the N x N wiring between shards, and the messages
//!   that cross it.
//! - [`auth`]: MQTT 5.0 enhanced authentication (AUTH flow, method registry, SCRAM-SHA-256),
//!   Mosquitto-compatible password files and acl_file checks, sans-IO.
//! - [`ws`]: MQTT over WebSocket (RFC 6455): the upgrade handshake and the frame codec, a
//!   sans-IO byte transformer under the connection.
//! - [`config`]: typed, validated configuration with built-in defaults.
//! - [`session`]: the per-client MQTT state machine (packet + now -> actions).
//! - [`shard`]: one shard: owns its connections, sessions, trie, wheel and mesh ends.
//! - [`runtime`]: spawns and pins one thread per shard, builds the mesh, starts listeners.
//!
//! `docs/architecture.md` draws the ownership and the path of a publish.

pub mod auth;
pub mod config;
pub mod mesh;
pub mod protocol;
pub mod runtime;
pub mod session;
pub mod shard;
pub mod timer;
pub mod trie;
pub mod ws;
