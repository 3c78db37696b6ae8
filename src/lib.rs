//! ringmq: a thread-per-core MQTT broker on io_uring.
//!
//! The map, bottom to top (each module imports only modules above it in this list):
//!
//! - [`protocol`]: the sans-IO codec for MQTT 3.1, 3.1.1 and 5.0; typed packets, topics,
//!   properties, reason codes. No IO, no clock. It is its own crate, `ringmq-protocol` in
//!   `protocol/`, so the load generator and the fuzz targets share it without the broker;
//!   re-exported here so that `crate::protocol::...` reads as before.
//! - [`timer`]: a hashed timer wheel driven by an explicit `now`.
//! - [`trie`]: the per-shard subscription trie (topic filter -> local subscribers).
//! - [`mesh`]: the lock-free SPSC ring and the N x N wiring between shards, generic over
//!   what crosses it (the shard defines that: `shard::MeshMsg`).
//! - [`auth`]: MQTT 5.0 enhanced authentication (AUTH flow, method registry, SCRAM-SHA-256),
//!   Mosquitto-compatible password files and acl_file checks, sans-IO.
//! - [`ws`]: MQTT over WebSocket (RFC 6455): the upgrade handshake and the frame codec, a
//!   sans-IO byte transformer under the connection.
//! - [`obs`]: observability outside the shards: the logger (a bounded queue drained by a
//!   thread of its own, so logging never blocks a shard), the metrics snapshots shards
//!   publish, the Prometheus endpoint, the `$SYS` topics, the latency histograms.
//! - [`persist`]: the persistence log, sans-IO where it can be: the record format (length +
//!   CRC32 + typed body: retained messages, sessions, their QoS 1/2 messages) and its
//!   replay, the sink a shard and its persistent sessions write records into, start-up
//!   recovery (torn tails cut, sessions rebuilt, logs rehomed to a new shard count), a
//!   shard's log file on monoio file IO.
//! - [`bridge`]: bridges to other brokers, sans-IO: Mosquitto's topic rules and their topic
//!   rewriting, the remote MQTT session of a bridge (packet + state -> packets for each
//!   side), the reconnect backoff.
//! - [`config`]: typed, validated configuration with built-in defaults.
//! - [`tls`]: TLS on the listeners (rustls) as a sans-IO byte transformer, the certificates
//!   loaded at start and on SIGHUP.
//! - [`session`]: the per-client MQTT state machine (packet + now -> actions).
//! - [`shard`]: one shard: owns its connections, sessions, tries, retained store, wheel and
//!   mesh ends as parts of `ShardState` (time passed in), the socket code, the shard's tasks,
//!   and `MeshMsg`, what shards send each other.
//! - [`runtime`]: spawns and pins one thread per shard, builds the mesh, starts listeners.
//!
//! `docs/architecture.md` draws the ownership and the path of a publish.

pub mod auth;
pub mod bridge;
pub mod config;
pub mod mesh;
pub mod obs;
pub mod persist;
pub mod runtime;
pub mod session;
pub mod shard;
pub mod timer;
pub mod tls;
pub mod trie;
pub mod ws;

pub use ringmq_protocol as protocol;
