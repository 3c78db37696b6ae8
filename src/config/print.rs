//! A `Config` printed as the commented TOML file that reads back to it: what
//! `--print-default-config` shows, every key with the comment that explains it.

use super::Config;
use super::listeners::listeners_toml;
use super::scram_user::scram_user_toml;
use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};

impl Config {
    /// This configuration as a commented TOML file that `from_toml_str` reads back.
    pub fn to_toml(&self) -> String {
        let m = &self.mqtt;
        let q = &self.queues;
        let r = &self.retained;
        let rt = &self.runtime;
        let users: String = self.auth.scram.iter().map(scram_user_toml).collect();
        let (listen, anonymous, listeners) = listeners_toml(&self.listeners);
        let or_zero = |v: Option<NonZeroU16>| v.map_or(0, NonZeroU16::get);
        let (server_reference, permanent) = self
            .redirect
            .as_ref()
            .map_or(("", false), |r| (r.server_reference.as_str(), r.permanent));
        // A TOML basic string, escaped by the toml crate itself.
        let server_reference = toml::Value::String(server_reference.to_owned());
        format!(
            r#"# ringmq configuration. Every key is optional; the values below are the defaults.

# Where clients connect. `listen` is the shorthand for one plain MQTT listener (the default:
# loopback only). More, or other kinds, go in `[[listeners]]` tables, each with `bind`,
# `protocol` ("mqtt" or "websockets"), `allow_anonymous` and an optional `[listeners.tls]`
# table: `cert` (PEM chain), `key` (PEM), `client_ca` (PEM; verify client certificates),
# `require_client_cert`, `identity_as_username` (a verified certificate's CN is the
# username). With `[[listeners]]` and no `listen`, only those are served. A listener on a
# non-loopback address needs an explicit `allow_anonymous`. See docs/security.md.
{listen}# One shard (pinned thread, io_uring, mesh node) per core; 0 = every core available.
shards = {shards}
# Connections over all shards; over it a CONNECT gets CONNACK 0x97 Quota exceeded
# (3.1.1: 0x03 Server unavailable).
max_connections = {max_connections}
# New connections per second over all shards; over it a CONNECT gets CONNACK 0x9F Connection
# rate exceeded (3.1.1: 0x03). 0 = unlimited.
max_connection_rate = {max_connection_rate}
# Sessions stored at once over all shards, connected or offline (each shard takes its share of
# the client ids homed on it); a CONNECT that would create one more gets CONNACK 0x97 Quota
# exceeded (3.1.1: 0x03). 0 = unlimited.
max_sessions = {max_sessions}

{log}
[mqtt]
# Largest packet accepted, in bytes (announced as Maximum Packet Size to MQTT 5.0 clients).
max_packet_size = {max_packet_size}
# How long (milliseconds) one packet may take to arrive once its first bytes are read; a
# slower one closes the connection (5.0: DISCONNECT 0x97 Quota exceeded).
packet_timeout_ms = {packet_timeout_ms}
# Bytes of packets over 64 KiB that one shard reads at once (at least max_packet_size); a
# connection whose large packet does not fit stops reading until others complete.
max_partial_bytes = {max_partial_bytes}
# Keep alives above this (seconds) are lowered to it; 0 = no cap.
max_keepalive = {max_keepalive}
# Keep alive (seconds) imposed on MQTT 5.0 clients asking for none; 0 = allow none.
zero_keepalive = {zero_keepalive}
# Inbound QoS 1/2 publishes in flight per connection (Receive Maximum granted).
receive_maximum = {receive_maximum}
# Outbound QoS 1/2 publishes in flight per session.
max_inflight = {max_inflight}
# Topic Alias Maximum granted to MQTT 5.0 clients; 0 = none.
topic_alias_maximum = {topic_alias_maximum}
# Topic Aliases the broker assigns per MQTT 5.0 connection (never above the client's Topic
# Alias Maximum); the first topics sent keep them for the connection's life. 0 = none.
max_outbound_topic_aliases = {max_outbound_topic_aliases}
# Longest Session Expiry Interval honoured, in seconds (4294967295 = never expire).
max_session_expiry = {max_session_expiry}
# Response Information for MQTT 5.0 clients that send Request Response Information = 1: the
# basis of their response topics (sent as is). Empty = none is sent.
response_information = {response_information}

[queues]
# Per session, beyond the in-flight window: the oldest QoS 0 messages go first when full.
max_queued_messages = {max_queued_messages}
max_queued_bytes = {max_queued_bytes}
# Unwritten bytes per connection before it counts as slow.
outbound_buffer_limit = {outbound_buffer_limit}
# How long (milliseconds) a connection may stay over that limit with its writer stuck before it
# is disconnected (5.0: DISCONNECT 0x97 Quota exceeded, sent if the client still reads).
stall_timeout_ms = {stall_timeout_ms}

[retained]
enabled = {enabled}
max_messages = {max_messages}
max_bytes = {max_bytes}

[runtime]
# Messages per shard-to-shard ring (rounded up to a power of two).
mesh_capacity = {mesh_capacity}
# io_uring submission queue entries per shard (a power of two).
io_uring_entries = {io_uring_entries}
# Use IORING_SETUP_DEFER_TASKRUN | SINGLE_ISSUER when the kernel supports them.
defer_taskrun = {defer_taskrun}
# Timer resolution in milliseconds (keep alive and expiry checks).
timer_tick_ms = {timer_tick_ms}

[redirect]
# Non-empty: refuse every CONNECT and send the client here (MQTT 5.0 Server Reference, 4.11).
# 5.0 clients get CONNACK 0x9C Use another server, or 0x9D Server moved when permanent;
# 3.1.1 clients get 0x03 Server unavailable.
server_reference = {server_reference}
permanent = {permanent}

{metrics}
{persistence}
[auth]
# A Mosquitto password file (`username:hash` lines, as `mosquitto_passwd` or `ringmq passwd`
# write them): a CONNECT with a user name must give its password (else CONNACK 0x86; 3.1.1
# 0x04). Empty = no passwords are checked. SIGHUP reads it again (and the acl_file).
password_file = {password_file}
# A Mosquitto acl_file: what each client may publish (else PUBACK/PUBREC 0x87; 3.1.1: dropped),
# subscribe to (else SUBACK 0x87; 3.1.1 0x80) and receive. Empty = everything is allowed.
acl_file = {acl_file}
# Whether a CONNECT without a user name is accepted (else CONNACK 0x87; 3.1.1 0x05): the
# default of every listener that sets none. Unset, anonymous clients are accepted on loopback
# listeners only; a listener on another address then needs `allow_anonymous` set (or, with a
# password file, takes none).
{anonymous}# MQTT 5.0 enhanced authentication: how long a client may take from CONNECT to the end of
# its AUTH exchange, in milliseconds.
exchange_timeout_ms = {exchange_timeout_ms}
# SCRAM-SHA-256 users; none = the method is not offered (CONNACK 0x8C). Either
#   [[auth.scram]]
#   username = "alice"
#   password = "..."        # keys derived at startup (random salt), password not kept
#   iterations = 4096       # optional, at least 4096
# or the stored form printed below (base64 salt, StoredKey and ServerKey).
{users}{listeners}
{bridges}"#,
            shards = self.shards,
            max_connections = self.max_connections,
            max_connection_rate = self.max_connection_rate.map_or(0, NonZeroU32::get),
            max_sessions = self.max_sessions.map_or(0, NonZeroUsize::get),
            max_packet_size = m.max_packet_size,
            packet_timeout_ms = m.packet_timeout.as_millis(),
            max_partial_bytes = m.max_partial_bytes,
            max_keepalive = or_zero(m.max_keepalive),
            zero_keepalive = or_zero(m.zero_keepalive),
            receive_maximum = m.receive_maximum,
            max_inflight = m.max_inflight,
            topic_alias_maximum = m.topic_alias_maximum,
            max_outbound_topic_aliases = m.max_outbound_topic_aliases,
            response_information =
                toml::Value::String(m.response_information.clone().unwrap_or_default()),
            max_session_expiry = m.max_session_expiry,
            max_queued_messages = q.max_queued_messages,
            max_queued_bytes = q.max_queued_bytes,
            outbound_buffer_limit = q.outbound_buffer_limit,
            stall_timeout_ms = q.stall_timeout.as_millis(),
            enabled = r.enabled,
            max_messages = r.max_messages,
            max_bytes = r.max_bytes,
            mesh_capacity = rt.mesh_capacity,
            io_uring_entries = rt.io_uring_entries,
            defer_taskrun = rt.defer_taskrun,
            timer_tick_ms = rt.timer_tick.as_millis(),
            exchange_timeout_ms = self.auth.exchange_timeout.as_millis(),
            password_file = toml_path(self.auth.file_paths.password_file.as_deref()),
            acl_file = toml_path(self.auth.file_paths.acl_file.as_deref()),
            log = super::observability::log_toml(&self.log),
            metrics = super::observability::metrics_toml(&self.metrics),
            persistence = super::persistence::persistence_toml(&self.persistence),
            bridges = super::bridges::bridges_toml(&self.bridges),
        )
    }
}

/// A configured file's path as a TOML string; "" when none is configured.
fn toml_path(path: Option<&std::path::Path>) -> toml::Value {
    toml::Value::String(path.map_or(String::new(), |p| p.display().to_string()))
}
