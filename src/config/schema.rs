//! The config file format as written: serde structs with plain numbers and strings, every
//! field optional, and the built-in defaults that fill the gaps.

use super::Protocol;
use serde::Deserialize;
use std::fmt;

/// The config file as written: plain numbers, every field optional (defaults fill the gaps).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Shorthand for one plain MQTT listener (listed first); `None` with no `[[listeners]]`
    /// either: the loopback default.
    pub listen: Option<String>,
    pub listeners: Vec<RawListener>,
    /// 0: one shard per core available to the process.
    pub shards: usize,
    pub max_connections: usize,
    /// 0: unlimited.
    pub max_connection_rate: u32,
    /// 0: unlimited.
    pub max_sessions: usize,
    pub mqtt: RawMqtt,
    pub queues: RawQueues,
    pub retained: RawRetained,
    pub runtime: RawRuntime,
    pub redirect: RawRedirect,
    pub auth: RawAuth,
    pub log_level: String,
    pub log_format: String,
    pub metrics: super::RawMetrics,
    pub persistence: super::RawPersistence,
    pub bridges: Vec<super::RawBridge>,
}

/// One `[[listeners]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub bind: String,
    #[serde(default)]
    pub protocol: Protocol,
    pub allow_anonymous: Option<bool>,
    pub tls: Option<RawTls>,
}

/// A listener's `[listeners.tls]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
    #[serde(default)]
    pub require_client_cert: bool,
    #[serde(default)]
    pub identity_as_username: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    pub exchange_timeout_ms: u64,
    pub scram: Vec<RawScramUser>,
    pub password_file: String,
    pub acl_file: String,
    /// The default of every listener that sets none (`None`: anonymous clients only on
    /// loopback listeners, see `listeners`).
    pub allow_anonymous: Option<bool>,
}

/// One `[[auth.scram]]` entry: a `password` (keys derived at startup with a fresh random
/// salt), or the stored form `salt` + `stored_key` + `server_key` (base64).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScramUser {
    pub username: String,
    pub password: Option<String>,
    pub iterations: Option<u32>,
    pub salt: Option<String>,
    pub stored_key: Option<String>,
    pub server_key: Option<String>,
}

impl fmt::Debug for RawScramUser {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawScramUser")
            .field("username", &self.username)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMqtt {
    pub max_packet_size: u32,
    pub packet_timeout_ms: u64,
    pub max_partial_bytes: usize,
    pub max_keepalive: u16,
    pub zero_keepalive: u16,
    pub receive_maximum: u16,
    pub max_inflight: u16,
    pub topic_alias_maximum: u16,
    pub max_outbound_topic_aliases: u16,
    pub max_session_expiry: u32,
    /// Empty: no Response Information.
    pub response_information: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawQueues {
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    pub outbound_buffer_limit: usize,
    pub stall_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRetained {
    pub enabled: bool,
    pub max_messages: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRedirect {
    /// Empty: no redirection.
    pub server_reference: String,
    pub permanent: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRuntime {
    pub mesh_capacity: usize,
    pub io_uring_entries: u32,
    pub defer_taskrun: bool,
    pub timer_tick_ms: u64,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: None,
            listeners: Vec::new(),
            shards: 0,
            max_connections: 100_000,
            max_connection_rate: 0,
            max_sessions: 1_000_000,
            mqtt: RawMqtt::default(),
            queues: RawQueues::default(),
            retained: RawRetained::default(),
            runtime: RawRuntime::default(),
            redirect: RawRedirect::default(),
            auth: RawAuth::default(),
            log_level: "info".into(),
            log_format: "text".into(),
            metrics: super::RawMetrics::default(),
            persistence: super::RawPersistence::default(),
            bridges: Vec::new(),
        }
    }
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            exchange_timeout_ms: 10_000,
            scram: Vec::new(),
            password_file: String::new(),
            acl_file: String::new(),
            allow_anonymous: None,
        }
    }
}

impl Default for RawMqtt {
    fn default() -> Self {
        Self {
            // A 1 MiB payload passes, as Mosquitto's and FlashMQ's defaults let it.
            max_packet_size: 2 * 1024 * 1024,
            packet_timeout_ms: 10_000,
            max_partial_bytes: 64 * 1024 * 1024,
            max_keepalive: 0,
            zero_keepalive: 0,
            receive_maximum: 64,
            max_inflight: 64,
            topic_alias_maximum: 16,
            max_outbound_topic_aliases: 16,
            max_session_expiry: u32::MAX,
            response_information: String::new(),
        }
    }
}

impl Default for RawQueues {
    fn default() -> Self {
        Self {
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            outbound_buffer_limit: 2 * 1024 * 1024,
            stall_timeout_ms: 30_000,
        }
    }
}

impl Default for RawRetained {
    fn default() -> Self {
        Self {
            enabled: true,
            max_messages: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for RawRuntime {
    fn default() -> Self {
        Self {
            mesh_capacity: 4096,
            io_uring_entries: 1024,
            defer_taskrun: true,
            timer_tick_ms: 100,
        }
    }
}
