//! The broker's configuration: the TOML file format (`RawConfig`), its validation into typed
//! values (`Config`), the built-in defaults, and printing a config back as commented TOML.

use crate::auth::scram::{self, ScramCredential};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
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
    pub listen: SocketAddr,
    pub shards: NonZeroUsize,
    /// Connections accepted at once over all shards; each shard takes its share.
    pub max_connections: NonZeroUsize,
    /// New connections accepted per second over all shards (each shard takes its share);
    /// `None`: unlimited. Over it a CONNECT is refused with 0x9F Connection rate exceeded.
    pub max_connection_rate: Option<NonZeroU32>,
    pub mqtt: MqttConfig,
    pub queues: QueueConfig,
    pub retained: RetainedConfig,
    pub runtime: RuntimeConfig,
    /// When set, every CONNECT is refused with a redirection (MQTT 5.0 section 4.11).
    pub redirect: Option<Redirect>,
    pub auth: AuthConfig,
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

/// MQTT 5.0 enhanced authentication (AUTH, section 4.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// How long a client may take from CONNECT to the end of its authentication exchange.
    pub exchange_timeout: Duration,
    /// SCRAM-SHA-256 users, keys already derived; empty: the method is not offered.
    pub scram: Vec<ScramCredential>,
}

/// Limits the broker announces in CONNACK and enforces per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// Largest packet accepted (MQTT 5.0 Maximum Packet Size we announce), in bytes.
    pub max_packet_size: NonZeroU32,
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

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        path: String,
        reason: String,
    },
    /// The text is not valid TOML or does not fit the format (unknown key, wrong type).
    Parse(String),
    BadListenAddress(String),
    /// A field that must be positive is 0.
    Zero(&'static str),
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    NotPowerOfTwo {
        field: &'static str,
        value: u64,
    },
    /// A string that goes out in a packet is not a valid MQTT UTF-8 string (1.5.4).
    NotMqttString {
        field: &'static str,
        reason: String,
    },
    /// An `[[auth.scram]]` user entry is unusable.
    AuthUser {
        username: String,
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, reason } => write!(f, "cannot read {path}: {reason}"),
            Self::Parse(msg) => write!(f, "invalid config: {msg}"),
            Self::BadListenAddress(addr) => {
                write!(f, "listen: {addr:?} is not an IP:port socket address")
            }
            Self::Zero(field) => write!(f, "{field} must be greater than 0"),
            Self::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(f, "{field} = {value} is outside {min}..={max}"),
            Self::NotPowerOfTwo { field, value } => {
                write!(f, "{field} = {value} is not a power of two")
            }
            Self::NotMqttString { field, reason } => {
                write!(f, "{field} is not a valid MQTT string: {reason}")
            }
            Self::AuthUser { username, reason } => {
                write!(f, "auth.scram user {username:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The config file as written: plain numbers, every field optional (defaults fill the gaps).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub listen: String,
    /// 0: one shard per core available to the process.
    pub shards: usize,
    pub max_connections: usize,
    /// 0: unlimited.
    pub max_connection_rate: u32,
    pub mqtt: RawMqtt,
    pub queues: RawQueues,
    pub retained: RawRetained,
    pub runtime: RawRuntime,
    pub redirect: RawRedirect,
    pub auth: RawAuth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    pub exchange_timeout_ms: u64,
    pub scram: Vec<RawScramUser>,
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
            listen: "0.0.0.0:1883".into(),
            shards: 0,
            max_connections: 100_000,
            max_connection_rate: 0,
            mqtt: RawMqtt::default(),
            queues: RawQueues::default(),
            retained: RawRetained::default(),
            runtime: RawRuntime::default(),
            redirect: RawRedirect::default(),
            auth: RawAuth::default(),
        }
    }
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            exchange_timeout_ms: 10_000,
            scram: Vec::new(),
        }
    }
}

impl Default for RawMqtt {
    fn default() -> Self {
        Self {
            max_packet_size: 1024 * 1024,
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

fn nonzero_usize(field: &'static str, v: usize) -> Result<NonZeroUsize, ConfigError> {
    NonZeroUsize::new(v).ok_or(ConfigError::Zero(field))
}

fn nonzero_u16(field: &'static str, v: u16) -> Result<NonZeroU16, ConfigError> {
    NonZeroU16::new(v).ok_or(ConfigError::Zero(field))
}

fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// The number of cores this process may run on (1 if the OS will not say).
fn available_cores() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen = self
            .listen
            .parse()
            .map_err(|_| ConfigError::BadListenAddress(self.listen.clone()))?;
        let shards = match self.shards {
            0 => available_cores(),
            n => NonZeroUsize::new(in_range("shards", n as u64, 1, MAX_SHARDS as u64)? as usize)
                .unwrap_or(NonZeroUsize::MIN),
        };
        Ok(Config {
            listen,
            shards,
            max_connections: nonzero_usize("max_connections", self.max_connections)?,
            max_connection_rate: NonZeroU32::new(self.max_connection_rate),
            mqtt: self.mqtt.validate()?,
            queues: self.queues.validate()?,
            retained: RetainedConfig {
                enabled: self.retained.enabled,
                max_messages: self.retained.max_messages,
                max_bytes: self.retained.max_bytes,
            },
            runtime: self.runtime.validate()?,
            redirect: self.redirect.validate()?,
            auth: self.auth.validate()?,
        })
    }
}

impl RawRedirect {
    fn validate(self) -> Result<Option<Redirect>, ConfigError> {
        if self.server_reference.is_empty() {
            return Ok(None);
        }
        // It goes out as a CONNACK property: a UTF-8 Encoded String (1.5.4).
        mqtt_string("redirect.server_reference", &self.server_reference)?;
        Ok(Some(Redirect {
            server_reference: self.server_reference,
            permanent: self.permanent,
        }))
    }
}

impl RawAuth {
    fn validate(self) -> Result<AuthConfig, ConfigError> {
        let timeout_ms = in_range(
            "auth.exchange_timeout_ms",
            self.exchange_timeout_ms,
            1,
            3_600_000,
        )?;
        let mut scram = Vec::with_capacity(self.scram.len());
        for user in self.scram {
            let credential = user.validate()?;
            if scram
                .iter()
                .any(|u: &ScramCredential| u.username == credential.username)
            {
                return Err(ConfigError::AuthUser {
                    username: credential.username,
                    reason: "listed twice",
                });
            }
            scram.push(credential);
        }
        Ok(AuthConfig {
            exchange_timeout: Duration::from_millis(timeout_ms),
            scram,
        })
    }
}

impl RawScramUser {
    fn validate(self) -> Result<ScramCredential, ConfigError> {
        let username = self.username;
        let refuse = |reason| ConfigError::AuthUser {
            username: username.clone(),
            reason,
        };
        if username.is_empty() || username.len() > 255 {
            return Err(refuse("the user name must have 1 to 255 bytes"));
        }
        let iterations = self.iterations.unwrap_or(scram::MIN_ITERATIONS);
        let iterations = NonZeroU32::new(iterations)
            .filter(|i| i.get() >= scram::MIN_ITERATIONS)
            .ok_or_else(|| refuse("iterations must be at least 4096 (RFC 7677)"))?;
        let stored = (self.salt, self.stored_key, self.server_key);
        match (self.password, stored) {
            (Some(password), (None, None, None)) => {
                let salt = scram::random_bytes(scram::SALT_LEN)
                    .map_err(|_| refuse("no OS randomness for the salt"))?;
                Ok(ScramCredential::from_password(
                    username.clone(),
                    &password,
                    salt,
                    iterations,
                ))
            }
            (None, (Some(salt), Some(stored_key), Some(server_key))) => {
                let salt = BASE64.decode(salt).ok().filter(|s| !s.is_empty());
                let key = |k: String| {
                    BASE64
                        .decode(k)
                        .ok()
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                };
                match (salt, key(stored_key), key(server_key)) {
                    (Some(salt), Some(stored_key), Some(server_key)) => Ok(ScramCredential {
                        username: username.clone(),
                        salt,
                        iterations,
                        stored_key,
                        server_key,
                    }),
                    _ => Err(refuse(
                        "salt, stored_key and server_key must be base64 (keys of 32 bytes)",
                    )),
                }
            }
            _ => Err(refuse(
                "give either password or salt + stored_key + server_key",
            )),
        }
    }
}

/// Checks a string the broker will send in a packet: a UTF-8 Encoded String (1.5.4).
fn mqtt_string(field: &'static str, value: &str) -> Result<(), ConfigError> {
    crate::protocol::string::validate(value.as_bytes()).map_err(|e| ConfigError::NotMqttString {
        field,
        reason: format!("{e:?}"),
    })
}

impl RawMqtt {
    fn validate(self) -> Result<MqttConfig, ConfigError> {
        let max_packet_size = in_range(
            "mqtt.max_packet_size",
            u64::from(self.max_packet_size),
            u64::from(MIN_PACKET_SIZE),
            u64::from(MAX_POSSIBLE_PACKET_SIZE),
        )?;
        let max_keepalive = NonZeroU16::new(self.max_keepalive);
        let zero_keepalive = NonZeroU16::new(self.zero_keepalive);
        if let (Some(cap), Some(imposed)) = (max_keepalive, zero_keepalive) {
            in_range(
                "mqtt.zero_keepalive",
                u64::from(imposed.get()),
                1,
                u64::from(cap.get()),
            )?;
        }
        mqtt_string("mqtt.response_information", &self.response_information)?;
        Ok(MqttConfig {
            max_packet_size: NonZeroU32::new(max_packet_size as u32).unwrap_or(NonZeroU32::MIN),
            max_keepalive,
            zero_keepalive,
            receive_maximum: nonzero_u16("mqtt.receive_maximum", self.receive_maximum)?,
            max_inflight: nonzero_u16("mqtt.max_inflight", self.max_inflight)?,
            topic_alias_maximum: self.topic_alias_maximum,
            max_outbound_topic_aliases: self.max_outbound_topic_aliases,
            max_session_expiry: self.max_session_expiry,
            response_information: Some(self.response_information).filter(|r| !r.is_empty()),
        })
    }
}

impl RawQueues {
    fn validate(self) -> Result<QueueConfig, ConfigError> {
        Ok(QueueConfig {
            max_queued_messages: nonzero_usize(
                "queues.max_queued_messages",
                self.max_queued_messages,
            )?,
            max_queued_bytes: nonzero_usize("queues.max_queued_bytes", self.max_queued_bytes)?,
            outbound_buffer_limit: nonzero_usize(
                "queues.outbound_buffer_limit",
                self.outbound_buffer_limit,
            )?,
            stall_timeout: Duration::from_millis(in_range(
                "queues.stall_timeout_ms",
                self.stall_timeout_ms,
                10,
                86_400_000,
            )?),
        })
    }
}

impl RawRuntime {
    fn validate(self) -> Result<RuntimeConfig, ConfigError> {
        let mesh_capacity = in_range(
            "runtime.mesh_capacity",
            self.mesh_capacity as u64,
            2,
            1 << 24,
        )?;
        let entries = in_range(
            "runtime.io_uring_entries",
            u64::from(self.io_uring_entries),
            8,
            32_768,
        )?;
        if !entries.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo {
                field: "runtime.io_uring_entries",
                value: entries,
            });
        }
        let tick_ms = in_range("runtime.timer_tick_ms", self.timer_tick_ms, 1, 1000)?;
        Ok(RuntimeConfig {
            mesh_capacity: NonZeroUsize::new(mesh_capacity as usize).unwrap_or(NonZeroUsize::MIN),
            io_uring_entries: NonZeroU32::new(entries as u32).unwrap_or(NonZeroU32::MIN),
            defer_taskrun: self.defer_taskrun,
            timer_tick: Duration::from_millis(tick_ms),
        })
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        raw.validate()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml_str(&text)
    }

    /// This configuration as a commented TOML file that `from_toml_str` reads back.
    pub fn to_toml(&self) -> String {
        let m = &self.mqtt;
        let q = &self.queues;
        let r = &self.retained;
        let rt = &self.runtime;
        let users: String = self.auth.scram.iter().map(scram_user_toml).collect();
        let or_zero = |v: Option<NonZeroU16>| v.map_or(0, NonZeroU16::get);
        let (server_reference, permanent) = self
            .redirect
            .as_ref()
            .map_or(("", false), |r| (r.server_reference.as_str(), r.permanent));
        // A TOML basic string, escaped by the toml crate itself.
        let server_reference = toml::Value::String(server_reference.to_owned());
        format!(
            r#"# ringmq configuration. Every key is optional; the values below are the defaults.

listen = "{listen}"
# One shard (pinned thread, io_uring, mesh node) per core; 0 = every core available.
shards = {shards}
# Connections over all shards; over it a CONNECT gets CONNACK 0x97 Quota exceeded
# (3.1.1: 0x03 Server unavailable).
max_connections = {max_connections}
# New connections per second over all shards; over it a CONNECT gets CONNACK 0x9F Connection
# rate exceeded (3.1.1: 0x03). 0 = unlimited.
max_connection_rate = {max_connection_rate}

[mqtt]
# Largest packet accepted, in bytes (announced as Maximum Packet Size to MQTT 5.0 clients).
max_packet_size = {max_packet_size}
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

[auth]
# MQTT 5.0 enhanced authentication: how long a client may take from CONNECT to the end of
# its AUTH exchange, in milliseconds.
exchange_timeout_ms = {exchange_timeout_ms}
# SCRAM-SHA-256 users; none = the method is not offered (CONNACK 0x8C). Either
#   [[auth.scram]]
#   username = "alice"
#   password = "..."        # keys derived at startup (random salt), password not kept
#   iterations = 4096       # optional, at least 4096
# or the stored form printed below (base64 salt, StoredKey and ServerKey).
{users}"#,
            listen = self.listen,
            shards = self.shards,
            max_connections = self.max_connections,
            max_connection_rate = self.max_connection_rate.map_or(0, NonZeroU32::get),
            max_packet_size = m.max_packet_size,
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
        )
    }
}

/// One SCRAM user in the stored form (no password to print).
fn scram_user_toml(user: &ScramCredential) -> String {
    format!(
        "[[auth.scram]]\nusername = {}\niterations = {}\nsalt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
        toml::Value::String(user.username.clone()),
        user.iterations,
        BASE64.encode(&user.salt),
        BASE64.encode(user.stored_key),
        BASE64.encode(user.server_key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> ConfigError {
        match Config::from_toml_str(text) {
            Ok(c) => panic!("accepted {text:?} as {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_are_valid_and_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.listen, SocketAddr::from(([0, 0, 0, 0], 1883)));
        assert_eq!(c.shards, available_cores());
        assert_eq!(c.mqtt.max_packet_size.get(), 1024 * 1024);
        assert_eq!(c.runtime.timer_tick, Duration::from_millis(100));
        assert_eq!(Config::from_toml_str(""), Ok(c));
    }

    #[test]
    fn printed_config_reads_back_identically() {
        let mut c = Config::default();
        c.mqtt.max_keepalive = NonZeroU16::new(300);
        c.retained.enabled = false;
        c.listen = SocketAddr::from(([127, 0, 0, 1], 18830));
        c.mqtt.response_information = Some("replies/\"x\"/".into());
        assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    }

    #[test]
    fn connection_rate_redirect_and_stall_timeout_read_back() {
        let mut c = Config::default();
        assert_eq!(c.max_connection_rate, None, "unlimited by default");
        assert_eq!(c.redirect, None, "no redirection by default");
        assert_eq!(c.queues.stall_timeout, Duration::from_secs(30));
        c.max_connection_rate = NonZeroU32::new(250);
        c.queues.stall_timeout = Duration::from_millis(1500);
        c.redirect = Some(Redirect {
            server_reference: "a:1883 \"b\":1883".into(),
            permanent: true,
        });
        assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    }

    #[test]
    fn a_server_reference_must_be_a_valid_mqtt_string() {
        assert!(matches!(
            refused("[redirect]\nserver_reference = \"a\\u0000b\""),
            ConfigError::NotMqttString {
                field: "redirect.server_reference",
                ..
            }
        ));
        let c = Config::from_toml_str("[redirect]\nserver_reference = \"\"");
        assert_eq!(c.map(|c| c.redirect), Ok(None), "empty means off");
    }

    #[test]
    fn response_information_is_optional_and_must_be_a_valid_mqtt_string() {
        let c = Config::from_toml_str("[mqtt]\nresponse_information = \"replies/\"");
        assert_eq!(
            c.map(|c| c.mqtt.response_information),
            Ok(Some("replies/".to_owned()))
        );
        let off = Config::from_toml_str("");
        assert_eq!(off.map(|c| c.mqtt.response_information), Ok(None));
        assert!(matches!(
            refused("[mqtt]\nresponse_information = \"a\\u0000b\""),
            ConfigError::NotMqttString {
                field: "mqtt.response_information",
                ..
            }
        ));
    }

    #[test]
    fn partial_files_keep_defaults_for_the_rest() {
        let c = Config::from_toml_str("shards = 3\n[mqtt]\nmax_inflight = 10\n");
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.shards.get(), 3);
        assert_eq!(c.mqtt.max_inflight.get(), 10);
        assert_eq!(c.mqtt.receive_maximum.get(), 64);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_parse_errors() {
        assert!(matches!(refused("colour = 3"), ConfigError::Parse(_)));
        assert!(matches!(
            refused("[mqtt]\nmax_inflight = \"x\""),
            ConfigError::Parse(_)
        ));
        assert!(matches!(
            refused("[mqtt]\nmax_inflight = 70000"),
            ConfigError::Parse(_)
        ));
    }

    #[test]
    fn a_bad_listen_address_is_named() {
        assert_eq!(
            refused("listen = \"localhost\""),
            ConfigError::BadListenAddress("localhost".into())
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        assert_eq!(
            refused("max_connections = 0"),
            ConfigError::Zero("max_connections")
        );
        assert_eq!(
            refused("[mqtt]\nreceive_maximum = 0"),
            ConfigError::Zero("mqtt.receive_maximum")
        );
        assert_eq!(
            refused("[queues]\noutbound_buffer_limit = 0"),
            ConfigError::Zero("queues.outbound_buffer_limit")
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(matches!(
            refused("[mqtt]\nmax_packet_size = 10"),
            ConfigError::OutOfRange {
                field: "mqtt.max_packet_size",
                ..
            }
        ));
        assert!(matches!(
            refused("[mqtt]\nmax_packet_size = 300000000"),
            ConfigError::OutOfRange {
                field: "mqtt.max_packet_size",
                ..
            }
        ));
        assert!(matches!(
            refused("[queues]\nstall_timeout_ms = 0"),
            ConfigError::OutOfRange {
                field: "queues.stall_timeout_ms",
                ..
            }
        ));
        assert!(matches!(
            refused("[runtime]\ntimer_tick_ms = 0"),
            ConfigError::OutOfRange {
                field: "runtime.timer_tick_ms",
                ..
            }
        ));
        assert!(matches!(
            refused("[mqtt]\nmax_keepalive = 60\nzero_keepalive = 120"),
            ConfigError::OutOfRange {
                field: "mqtt.zero_keepalive",
                ..
            }
        ));
        assert_eq!(
            refused("[runtime]\nio_uring_entries = 1000"),
            ConfigError::NotPowerOfTwo {
                field: "runtime.io_uring_entries",
                value: 1000
            }
        );
    }

    #[test]
    fn keepalive_is_capped_and_zero_may_be_overridden() {
        let mut m = Config::default().mqtt;
        assert_eq!(m.effective_keepalive(0), 0);
        assert_eq!(m.effective_keepalive(600), 600);
        m.max_keepalive = NonZeroU16::new(120);
        assert_eq!(m.effective_keepalive(600), 120);
        assert_eq!(m.effective_keepalive(30), 30);
        assert_eq!(m.effective_keepalive(0), 0);
        m.zero_keepalive = NonZeroU16::new(60);
        assert_eq!(m.effective_keepalive(0), 60);
    }

    #[test]
    fn scram_users_keep_keys_not_passwords_and_print_back_identically() {
        let text = "[auth]\nexchange_timeout_ms = 500\n\
                    [[auth.scram]]\nusername = \"alice\"\npassword = \"wonderland\"\n";
        let c = Config::from_toml_str(text).expect("valid");
        assert_eq!(c.auth.exchange_timeout, Duration::from_millis(500));
        let [alice] = &c.auth.scram[..] else {
            panic!("one user: {:?}", c.auth.scram)
        };
        assert_eq!(alice.salt.len(), scram::SALT_LEN);
        let printed = c.to_toml();
        assert!(!printed.contains("wonderland") && printed.contains("stored_key = "));
        assert!(!format!("{c:?}").contains("wonderland"));
        // The stored form reads back to the same keys (the password is not needed again).
        assert_eq!(Config::from_toml_str(&printed), Ok(c));
    }

    #[test]
    fn unusable_scram_users_are_refused() {
        let user = |body: &str| format!("[[auth.scram]]\nusername = \"u\"\n{body}");
        for body in [
            "",
            "password = \"p\"\nsalt = \"AAAA\"",
            "password = \"p\"\niterations = 1000",
            "salt = \"AAAA\"\nstored_key = \"AAAA\"\nserver_key = \"AAAA\"",
        ] {
            assert!(
                matches!(refused(&user(body)), ConfigError::AuthUser { .. }),
                "{body}"
            );
        }
        let twice = format!(
            "{}{}",
            user("password = \"a\"\n"),
            user("password = \"b\"\n")
        );
        assert_eq!(
            refused(&twice).to_string(),
            "auth.scram user \"u\": listed twice"
        );
    }

    #[test]
    fn errors_read_clearly() {
        let e = ConfigError::OutOfRange {
            field: "mqtt.max_packet_size",
            value: 10,
            min: 128,
            max: 268_435_460,
        };
        assert_eq!(
            e.to_string(),
            "mqtt.max_packet_size = 10 is outside 128..=268435460"
        );
    }
}
