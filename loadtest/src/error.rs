//! `LoadError`: every way a run or a command can fail, each with a message that says what to do.

use ringmq_protocol::{DecodeError, EncodeError, ReasonCode, TopicError};
use std::net::SocketAddr;

#[derive(Debug)]
pub enum LoadError {
    /// The TCP connection could not be opened.
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The broker did not answer in time (`what` names the step).
    Timeout {
        addr: SocketAddr,
        what: &'static str,
    },
    /// The broker closed the connection (`while_` names what the client was doing).
    Closed {
        client: String,
        while_: &'static str,
    },
    Io {
        client: String,
        source: std::io::Error,
    },
    /// The broker sent bytes that are not valid MQTT.
    Decode {
        client: String,
        source: DecodeError,
    },
    Encode(EncodeError),
    /// CONNACK, SUBACK or DISCONNECT carried an error reason code.
    Refused {
        client: String,
        what: &'static str,
        reason: ReasonCode,
    },
    /// The broker sent a packet the client did not expect at that point.
    Unexpected {
        client: String,
        what: String,
    },
    Topic {
        topic: String,
        source: TopicError,
    },
    /// A command-line value that cannot work (e.g. `--size` below the header).
    Usage(String),
    /// Reading or writing an output or input file.
    File {
        path: String,
        source: std::io::Error,
    },
    Hgrm {
        path: String,
        source: crate::hgrm::ParseError,
    },
    /// A worker thread could not be started or panicked.
    Thread(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect { addr, source } => {
                write!(
                    f,
                    "cannot connect to {addr}: {source} (is the broker running?)"
                )
            }
            Self::Timeout { addr, what } => write!(f, "{addr}: no answer to {what} in time"),
            Self::Closed { client, while_ } => {
                write!(f, "the broker closed {client}'s connection while {while_}")
            }
            Self::Io { client, source } => write!(f, "{client}: {source}"),
            Self::Decode { client, source } => {
                write!(f, "{client}: the broker sent malformed MQTT: {source}")
            }
            Self::Encode(e) => write!(f, "cannot encode a packet: {e}"),
            Self::Refused {
                client,
                what,
                reason,
            } => write!(f, "{client}: {what} refused with reason {reason:?}"),
            Self::Unexpected { client, what } => write!(f, "{client}: unexpected {what}"),
            Self::Topic { topic, source } => write!(f, "invalid topic {topic:?}: {source:?}"),
            Self::Usage(msg) => write!(f, "{msg}"),
            Self::File { path, source } => write!(f, "{path}: {source}"),
            Self::Hgrm { path, source } => write!(f, "{path}: {source}"),
            Self::Thread(msg) => write!(f, "worker thread: {msg}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<EncodeError> for LoadError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}
