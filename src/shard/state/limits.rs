//! `Limits`: the bounds and timeouts of one shard, derived once from the broker config.

use crate::config::Config;
use crate::session;
use std::time::Duration;

/// Bounds and timeouts of a shard, from the broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub session: session::Limits,
    /// Largest packet accepted from a client (and advertised to 5.0 clients).
    pub max_packet_size: usize,
    /// How long one packet may take to arrive once its first bytes are read.
    pub packet_timeout: Duration,
    /// Bytes of large packets this shard's connections read at once (`read_budget`).
    pub max_partial_bytes: usize,
    /// Outbound bytes buffered per connection before QoS 0 is dropped and QoS 1/2 queued.
    pub max_outbound_bytes: usize,
    /// How long a connection may stay over `max_outbound_bytes` before it is disconnected.
    pub stall_timeout: Duration,
    /// Messages held per peer when its mesh ring is full before reading pauses.
    pub max_mesh_overflow: usize,
    /// The timer wheel's tick.
    pub timer_tick: Duration,
    /// 5.0 keep alives above this are lowered to it (Server Keep Alive).
    pub max_keepalive: Option<u16>,
    /// Keep alive imposed on 5.0 clients that ask for 0.
    pub zero_keepalive: Option<u16>,
    /// Most outbound Topic Aliases per 5.0 connection (also capped by the client's maximum).
    pub max_outbound_topic_aliases: u16,
    /// Cap on a 5.0 Session Expiry Interval, seconds (`u32::MAX`: never expires).
    pub max_session_expiry: u32,
    /// Connections this shard accepts at once.
    pub max_connections: usize,
    /// Sessions this shard stores at once, connected or offline (`usize::MAX`: unlimited).
    pub max_sessions: usize,
    /// New connections this shard accepts per second (`None`: unlimited).
    pub max_connection_rate: Option<std::num::NonZeroU32>,
    /// Retained messages are stored (5.0 Retain Available).
    pub retain_available: bool,
    pub max_retained_messages: usize,
    pub max_retained_bytes: usize,
    /// How long an enhanced-authentication exchange may take, CONNECT to CONNACK.
    pub auth_timeout: Duration,
}

impl Limits {
    /// The limits of one of `config.shards` shards.
    pub fn from_config(config: &Config) -> Self {
        let shards = config.shards.get();
        Self {
            session: session::Limits {
                max_inflight: config.mqtt.max_inflight.get(),
                max_queued_messages: config.queues.max_queued_messages.get(),
                max_queued_bytes: config.queues.max_queued_bytes.get(),
                max_inbound_qos2: config.mqtt.receive_maximum.get(),
                topic_alias_maximum: config.mqtt.topic_alias_maximum,
                retain_available: config.retained.enabled,
            },
            max_keepalive: config.mqtt.max_keepalive.map(|k| k.get()),
            zero_keepalive: config.mqtt.zero_keepalive.map(|k| k.get()),
            max_outbound_topic_aliases: config.mqtt.max_outbound_topic_aliases,
            max_session_expiry: config.mqtt.max_session_expiry,
            max_packet_size: config.mqtt.max_packet_size.get() as usize,
            packet_timeout: config.mqtt.packet_timeout,
            max_partial_bytes: config.mqtt.max_partial_bytes,
            max_outbound_bytes: config.queues.outbound_buffer_limit.get(),
            timer_tick: config.runtime.timer_tick,
            max_connections: config.max_connections.get().div_ceil(shards),
            max_sessions: config
                .max_sessions
                .map_or(usize::MAX, |n| n.get().div_ceil(shards)),
            max_connection_rate: config
                .max_connection_rate
                .and_then(|rate| std::num::NonZeroU32::new(rate.get().div_ceil(shards as u32))),
            stall_timeout: config.queues.stall_timeout,
            retain_available: config.retained.enabled,
            max_retained_messages: config.retained.max_messages,
            max_retained_bytes: config.retained.max_bytes,
            auth_timeout: config.auth.exchange_timeout,
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            session: session::Limits::default(),
            max_packet_size: 2 * 1024 * 1024,
            packet_timeout: Duration::from_secs(10),
            max_partial_bytes: 64 * 1024 * 1024,
            max_outbound_bytes: 1024 * 1024,
            stall_timeout: Duration::from_secs(30),
            max_mesh_overflow: 4096,
            timer_tick: Duration::from_millis(100),
            max_keepalive: None,
            zero_keepalive: None,
            max_outbound_topic_aliases: 16,
            max_session_expiry: u32::MAX,
            max_connections: usize::MAX,
            max_sessions: usize::MAX,
            max_connection_rate: None,
            retain_available: true,
            max_retained_messages: usize::MAX,
            max_retained_bytes: usize::MAX,
            auth_timeout: Duration::from_secs(10),
        }
    }
}
