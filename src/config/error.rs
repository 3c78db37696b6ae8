//! Why a configuration was refused: one variant per kind of mistake, each naming the field.

use std::fmt;

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
    /// A field that must be at least another field's value is below it.
    BelowOther {
        field: &'static str,
        value: u64,
        other: &'static str,
        min: u64,
    },
    /// A string that goes out in a packet is not a valid MQTT UTF-8 string (1.5.4).
    NotMqttString {
        field: &'static str,
        reason: String,
    },
    /// A listener setting is unusable; `key` is its full name (`listeners[1].tls.cert`).
    Listener {
        key: String,
        reason: String,
    },
    /// An `[[auth.scram]]` user entry is unusable.
    AuthUser {
        username: String,
        reason: &'static str,
    },
    /// A `[[bridges]]` setting is unusable; `key` is its full name (`bridges[0].topics[1]`).
    Bridge {
        key: String,
        reason: String,
    },
    /// A file named by `key` cannot be read or is not in its format (`reason` names the file
    /// and the line).
    File {
        key: &'static str,
        reason: String,
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
            Self::BelowOther {
                field,
                value,
                other,
                min,
            } => write!(f, "{field} = {value} must be at least {other} ({min})"),
            Self::NotMqttString { field, reason } => {
                write!(f, "{field} is not a valid MQTT string: {reason}")
            }
            Self::Listener { key, reason } => write!(f, "{key}: {reason}"),
            Self::AuthUser { username, reason } => {
                write!(f, "auth.scram user {username:?}: {reason}")
            }
            Self::File { key, reason } => write!(f, "{key}: {reason}"),
            Self::Bridge { key, reason } => write!(f, "{key}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}
