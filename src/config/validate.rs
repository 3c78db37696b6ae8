//! Validation of the file format into typed values: each `Raw*` section becomes its `Config`
//! part, with ranges, non-zero limits and MQTT strings checked once, at startup.

use super::{
    AuthConfig, Config, ConfigError, MAX_POSSIBLE_PACKET_SIZE, MAX_SHARDS, MIN_PACKET_SIZE,
    MqttConfig, QueueConfig, RawAuth, RawConfig, RawMqtt, RawQueues, RawRedirect, RawRuntime,
    Redirect, RetainedConfig, RuntimeConfig,
};
use crate::auth::files::{AuthFiles, AuthPaths};
use crate::auth::scram::ScramCredential;
use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

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
pub(super) fn available_cores() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listeners = self.validate_listeners()?;
        let shards = match self.shards {
            0 => available_cores(),
            n => NonZeroUsize::new(in_range("shards", n as u64, 1, MAX_SHARDS as u64)? as usize)
                .unwrap_or(NonZeroUsize::MIN),
        };
        Ok(Config {
            listeners,
            shards,
            max_connections: nonzero_usize("max_connections", self.max_connections)?,
            max_connection_rate: NonZeroU32::new(self.max_connection_rate),
            max_sessions: NonZeroUsize::new(self.max_sessions),
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
            log: super::observability::validate_log(&self.log_level, &self.log_format)?,
            metrics: self.metrics.validate()?,
            persistence: self.persistence.validate()?,
            bridges: super::bridges::validate_bridges(self.bridges)?,
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
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        let file_paths = AuthPaths {
            password_file: path(&self.password_file),
            acl_file: path(&self.acl_file),
        };
        // The same function SIGHUP reloads them with.
        let files = AuthFiles::load(&file_paths).map_err(|e| ConfigError::File {
            key: e.key,
            reason: e.reason,
        })?;
        Ok(AuthConfig {
            exchange_timeout: Duration::from_millis(timeout_ms),
            scram,
            file_paths,
            files,
        })
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
        let packet_timeout_ms = in_range(
            "mqtt.packet_timeout_ms",
            self.packet_timeout_ms,
            100,
            86_400_000,
        )?;
        if (self.max_partial_bytes as u64) < max_packet_size {
            return Err(ConfigError::BelowOther {
                field: "mqtt.max_partial_bytes",
                value: self.max_partial_bytes as u64,
                other: "mqtt.max_packet_size",
                min: max_packet_size,
            });
        }
        Ok(MqttConfig {
            max_packet_size: NonZeroU32::new(max_packet_size as u32).unwrap_or(NonZeroU32::MIN),
            packet_timeout: Duration::from_millis(packet_timeout_ms),
            max_partial_bytes: self.max_partial_bytes,
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
