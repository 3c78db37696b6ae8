//! The broker's configuration: typed, validated values (`Config`), read from a TOML file or
//! built from the defaults. Each step has its file:
//!
//! - `schema`: the file format as serde structs (`RawConfig`), with the built-in defaults.
//! - `listeners`: the `listen` shorthand and `[[listeners]]` (bind, protocol, anonymous
//!   access, TLS), validated and printed back.
//! - `validate`: `RawConfig` into `Config`, every constraint checked once.
//! - `scram_user`: an `[[auth.scram]]` entry: its stored keys decoded (or derived from a
//!   password), and printed back in the stored form.
//! - `observability`: the log keys and `[metrics]`, read, validated and printed.
//! - `persistence`: `[persistence]` (the shards' logs: directory, fsync policy, compaction
//!   bound), read, validated and printed.
//! - `bridges`: `[[bridges]]` (connections to other brokers: address, protocol, session,
//!   credentials, TLS, Mosquitto-style topic rules, reconnect backoff), read, validated and
//!   printed.
//! - `print`: a `Config` as the commented TOML file `--print-default-config` shows.
//! - `error`: why a configuration was refused.

mod bridges;
mod error;
mod listeners;
mod observability;
mod persistence;
mod print;
mod schema;
mod scram_user;
mod validate;

pub use bridges::{BridgeConfig, BridgeProtocol, BridgeTls, RawAddresses, RawBridge, RawBridgeTls};
pub use error::ConfigError;
pub use listeners::{DEFAULT_LISTEN, ListenerConfig, Protocol, TlsConfig};
pub use observability::{LogConfig, MetricsConfig, RawMetrics};
pub use persistence::{Fsync, PersistenceConfig, RawPersistence};
pub use schema::{
    RawAuth, RawConfig, RawListener, RawMqtt, RawQueues, RawRedirect, RawRetained, RawRuntime,
    RawScramUser, RawTls,
};

use crate::auth::files::{AuthFiles, AuthPaths};
use crate::auth::scram::ScramCredential;
use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

/// The largest packet MQTT can frame: a 268,435,455-byte remaining length plus a 5-byte header.
pub const MAX_POSSIBLE_PACKET_SIZE: u32 = 268_435_460;
/// The most shards a config may ask for.
pub const MAX_SHARDS: usize = 1024;
/// Below this a CONNECT with a client id and a will would not fit.
pub const MIN_PACKET_SIZE: u32 = 128;

/// A validated configuration. Build it with `Config::default()`, `Config::from_toml_str` or
/// `Config::load`; every field already satisfies its constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where clients connect, never empty: the `listen` shorthand first, then
    /// `[[listeners]]` in file order. Every shard serves every listener.
    pub listeners: Vec<ListenerConfig>,
    pub shards: NonZeroUsize,
    /// Connections accepted at once over all shards; each shard takes its share.
    pub max_connections: NonZeroUsize,
    /// New connections accepted per second over all shards (each shard takes its share);
    /// `None`: unlimited. Over it a CONNECT is refused with 0x9F Connection rate exceeded.
    pub max_connection_rate: Option<NonZeroU32>,
    /// Sessions stored at once (connected or offline) over all shards, each shard taking its
    /// share; `None`: unlimited. A CONNECT that would create one more is refused with 0x97.
    pub max_sessions: Option<NonZeroUsize>,
    pub mqtt: MqttConfig,
    pub queues: QueueConfig,
    pub retained: RetainedConfig,
    pub runtime: RuntimeConfig,
    /// When set, every CONNECT is refused with a redirection (MQTT 5.0 section 4.11).
    pub redirect: Option<Redirect>,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub persistence: PersistenceConfig,
    /// Connections to other brokers, in file order (`[[bridges]]`); names are unique.
    pub bridges: Vec<BridgeConfig>,
}

/// Server redirection: clients are sent elsewhere instead of being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The Server Reference sent to 5.0 clients: a valid MQTT UTF-8 string, its format is
    /// not specified (4.11); commonly `host:port`, several separated by spaces.
    pub server_reference: String,
    /// 0x9D Server moved (the client should use the other server from now on) instead of
    /// 0x9C Use another server (temporarily).
    pub permanent: bool,
}

/// Who may connect and what they may do: MQTT 5.0 enhanced authentication (AUTH, section
/// 4.12), a Mosquitto password file, a Mosquitto ACL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// How long a client may take from CONNECT to the end of its authentication exchange.
    pub exchange_timeout: Duration,
    /// SCRAM-SHA-256 users, keys already derived; empty: the method is not offered.
    pub scram: Vec<ScramCredential>,
    /// Where `auth.password_file` and `auth.acl_file` are; SIGHUP reads them again.
    pub file_paths: AuthPaths,
    /// Those files, read and checked at start (`AuthFiles::load`, as SIGHUP does): CONNECTs
    /// with a user name must give its password; what each client may publish, subscribe to
    /// and receive.
    pub files: AuthFiles,
    // `[auth] allow_anonymous` is the default of each listener's `allow_anonymous`
    // (`ListenerConfig`), which is what is checked.
}

/// Limits the broker announces in CONNACK and enforces per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// Largest packet accepted (MQTT 5.0 Maximum Packet Size we announce), in bytes.
    pub max_packet_size: NonZeroU32,
    /// How long one packet may take to arrive once its first bytes are read (slowloris).
    pub packet_timeout: Duration,
    /// Bytes of large packets (over 64 KiB each) one shard reads at once; at least
    /// `max_packet_size`. A connection whose packet does not fit waits until others complete.
    pub max_partial_bytes: usize,
    /// Keep alives above this are lowered to it (MQTT 5.0 Server Keep Alive); `None`: no cap.
    pub max_keepalive: Option<NonZeroU16>,
    /// Keep alive imposed on MQTT 5.0 clients that ask for 0; `None`: 0 is honoured.
    pub zero_keepalive: Option<NonZeroU16>,
    /// Receive Maximum we grant: inbound QoS 1/2 publishes in flight per connection.
    pub receive_maximum: NonZeroU16,
    /// Outbound QoS 1/2 publishes in flight per session (also capped by the client's own
    /// Receive Maximum).
    pub max_inflight: NonZeroU16,
    /// Topic Alias Maximum we grant MQTT 5.0 clients; 0 disables inbound aliases.
    pub topic_alias_maximum: u16,
    /// Most outbound Topic Aliases the broker assigns per connection (also capped by the
    /// client's Topic Alias Maximum); 0 disables outbound aliases.
    pub max_outbound_topic_aliases: u16,
    /// Session Expiry Interval cap, in seconds; `u32::MAX` means sessions may never expire.
    pub max_session_expiry: u32,
    /// Response Information sent in CONNACK to 5.0 clients that request it (the basis of
    /// their response topics, 3.2.2.3.15); `None`: never sent.
    pub response_information: Option<String>,
}

/// Bounds on what waits for a slow or offline client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Messages queued per session beyond the in-flight window.
    pub max_queued_messages: NonZeroUsize,
    /// Payload bytes queued per session beyond the in-flight window.
    pub max_queued_bytes: NonZeroUsize,
    /// Encoded bytes waiting to be written per connection before it counts as slow.
    pub outbound_buffer_limit: NonZeroUsize,
    /// How long a connection may stay slow (its writer making no progress) before it is
    /// disconnected (5.0: DISCONNECT 0x97 Quota exceeded, best effort).
    pub stall_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedConfig {
    /// Retain Available: when false, PUBLISH with RETAIN is refused (MQTT 5.0) or stored not.
    pub enabled: bool,
    pub max_messages: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Messages per shard-to-shard ring (rounded up to a power of two).
    pub mesh_capacity: NonZeroUsize,
    /// Submission queue entries per shard's io_uring (a power of two).
    pub io_uring_entries: NonZeroU32,
    /// Ask io_uring for DEFER_TASKRUN | SINGLE_ISSUER (falls back when the kernel refuses).
    pub defer_taskrun: bool,
    /// The timer wheel's tick: how late at most a keep alive or expiry timer fires.
    pub timer_tick: Duration,
}

impl MqttConfig {
    /// The keep alive a client actually gets when it asks for `requested` seconds.
    pub fn effective_keepalive(&self, requested: u16) -> u16 {
        let wanted = match requested {
            0 => self.zero_keepalive.map_or(0, NonZeroU16::get),
            n => n,
        };
        match self.max_keepalive {
            Some(cap) if wanted > cap.get() => cap.get(),
            _ => wanted,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let raw = RawConfig::default();
        match raw.validate() {
            Ok(config) => config,
            // The built-in defaults are valid; `defaults_are_valid` checks it.
            Err(e) => unreachable!("built-in defaults are invalid: {e}"),
        }
    }
}

impl Config {
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        RawConfig::from_toml_str(text)?.validate()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        RawConfig::load(path)?.validate()
    }
}

impl RawConfig {
    /// The file as written, not validated yet (so that command-line flags can override it
    /// before `validate`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml_str(&text)
    }
}

#[cfg(test)]
mod tests;
