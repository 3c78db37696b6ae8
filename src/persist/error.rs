//! Why a record does not decode, why a log's tail was cut, and why persistence could not
//! start. None of these is a panic: file contents are input like any other.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a record body does not decode (or cannot be encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The body ends inside a field.
    Short,
    /// Bytes left after the last field.
    TrailingBytes(usize),
    /// A kind this version does not know.
    UnknownKind(u8),
    /// A retained-set body flags optional fields this version does not know.
    UnknownFields(u8),
    BadQoS(u8),
    /// A protocol level that is not 3, 4 or 5.
    BadVersion(u8),
    /// A subscription options byte with reserved bits or values set.
    BadOptions(u8),
    /// A flag byte that is neither 0 nor 1.
    BadFlag(u8),
    /// A packet identifier of 0.
    ZeroPacketId,
    /// A topic that is not a valid topic name (empty, wildcards, not UTF-8).
    BadTopic,
    /// A string that is not a valid MQTT UTF-8 string.
    BadString,
    /// Encoding: a field too long for its length prefix.
    TooLong(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short => f.write_str("the body ends inside a field"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the last field"),
            Self::UnknownKind(k) => write!(f, "unknown record kind 0x{k:02X}"),
            Self::UnknownFields(bits) => write!(f, "unknown optional fields 0x{bits:02X}"),
            Self::BadQoS(q) => write!(f, "QoS {q}"),
            Self::BadVersion(v) => write!(f, "protocol level {v}"),
            Self::BadOptions(b) => write!(f, "subscription options 0x{b:02X}"),
            Self::BadFlag(b) => write!(f, "flag byte {b}"),
            Self::ZeroPacketId => f.write_str("packet identifier 0"),
            Self::BadTopic => f.write_str("not a valid topic name"),
            Self::BadString => f.write_str("not a valid UTF-8 string"),
            Self::TooLong(what) => write!(f, "{what} too long for its length field"),
        }
    }
}

/// Why decoding stopped before the end of a log: what follows the last good record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailError {
    /// The file is shorter than its header, or the header is not ours.
    BadHeader,
    /// Fewer bytes than a record's length and CRC fields.
    ShortFrame,
    /// A length field pointing past the end of the file.
    ShortBody {
        len: u32,
        available: usize,
    },
    /// The length is 0, which no record has.
    EmptyBody,
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// The CRC matches but the body does not decode.
    BadBody(RecordError),
}

impl fmt::Display for TailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader => f.write_str("no valid file header"),
            Self::ShortFrame => f.write_str("a record cut inside its length or CRC"),
            Self::ShortBody { len, available } => {
                write!(
                    f,
                    "a record of {len} bytes with {available} left in the file"
                )
            }
            Self::EmptyBody => f.write_str("a record of length 0"),
            Self::BadCrc { stored, computed } => {
                write!(f, "CRC 0x{stored:08X} stored, 0x{computed:08X} computed")
            }
            Self::BadBody(e) => write!(f, "a record that does not decode: {e}"),
        }
    }
}

/// Why persistence could not start (the broker refuses to start: its data would be at risk).
#[derive(Debug)]
pub enum PersistError {
    /// The directory, a log or the lock file could not be created, read or written.
    Io { path: PathBuf, source: io::Error },
    /// Another process holds the directory's lock (another broker on the same `dir`).
    Locked(PathBuf),
    /// A log written by a newer format version, which this broker must not truncate.
    NewerFormat { path: PathBuf, version: u16 },
}

impl PersistError {
    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "persistence: {}: {source}", path.display()),
            Self::Locked(path) => write!(
                f,
                "persistence.dir {} is in use by another process (its lock file is held)",
                path.display()
            ),
            Self::NewerFormat { path, version } => write!(
                f,
                "persistence: {} has format version {version}, newer than this broker's; \
                 refusing to touch it",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PersistError {}

/// Why a shard's writer could not write its log while serving (the shard then refuses new
/// QoS 1/2 work until it can: `docs/persistence.md`, "A full disk").
#[derive(Debug)]
pub enum LogWriteError {
    /// A write, sync, rename or the directory's sync failed (ENOSPC, EIO, ...).
    Io(io::Error),
    /// The write would take the shard's log past its bound: half the shard's share of
    /// `persistence.max_disk_bytes` (the other half is room for compaction's new file).
    OverBound { need: u64, bound: u64 },
}

impl fmt::Display for LogWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::OverBound { need, bound } => write!(
                f,
                "a log of {need} bytes, over this shard's bound of {bound} bytes (half its \
                 share of persistence.max_disk_bytes)"
            ),
        }
    }
}

impl From<io::Error> for LogWriteError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl std::error::Error for LogWriteError {}
