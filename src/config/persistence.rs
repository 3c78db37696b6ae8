//! The `[persistence]` section: where each shard's log lives, when it is synced, and when it
//! is compacted; from the file format to typed values and back to commented TOML.

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// When a shard's log is synced to disk (`fdatasync`); `docs/persistence.md` says what a
/// crash can lose with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// After every write (one write per loop turn: records of many clients share a sync).
    Always,
    /// At least every `fsync_interval` while something was written.
    #[default]
    Interval,
    /// Never: the kernel writes back when it likes.
    Never,
}

impl Fsync {
    fn name(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Interval => "interval",
            Self::Never => "never",
        }
    }
}

/// Persistence of retained messages (step 1 of issue 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// The directory of the shards' logs; `None`: nothing is persisted.
    pub dir: Option<PathBuf>,
    pub fsync: Fsync,
    pub fsync_interval: Duration,
    /// A shard's log is compacted once it passes this many bytes (or twice its size after
    /// the last compaction, if that is more).
    pub max_log_bytes: u64,
    /// The most bytes of records a shard holds for its writer; past it they are dropped
    /// and the log is replaced by a snapshot (a full disk, a writer that cannot keep up).
    pub max_pending_bytes: usize,
    /// The most bytes the logs may take in the directory, all shards together (each shard
    /// `1/shards` of it, compaction's new file included); past it the disk counts as full.
    /// `None`: no bound but the disk's.
    pub max_disk_bytes: Option<u64>,
}

const DEFAULT_FSYNC_INTERVAL_MS: u64 = 100;
const DEFAULT_MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest `max_log_bytes`: a log below it would be compacted over and over.
const MIN_MAX_LOG_BYTES: u64 = 4096;
const DEFAULT_MAX_PENDING_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest `max_pending_bytes`: one large record (a retained message of a few KB with
/// its properties) must fit, and the writer lets up to half of it collect.
const MIN_MAX_PENDING_BYTES: u64 = 64 * 1024;
/// The smallest `max_disk_bytes` (but 0, no bound): a log and its compaction must fit.
const MIN_MAX_DISK_BYTES: u64 = 1024 * 1024;

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            dir: None,
            fsync: Fsync::default(),
            fsync_interval: Duration::from_millis(DEFAULT_FSYNC_INTERVAL_MS),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES as usize,
            max_disk_bytes: None,
        }
    }
}

/// `[persistence]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPersistence {
    /// Empty: off.
    pub dir: String,
    pub fsync: String,
    pub fsync_interval_ms: u64,
    pub max_log_bytes: u64,
    pub max_pending_bytes: u64,
    /// 0: no bound.
    pub max_disk_bytes: u64,
}

impl Default for RawPersistence {
    fn default() -> Self {
        Self {
            dir: String::new(),
            fsync: Fsync::default().name().into(),
            fsync_interval_ms: DEFAULT_FSYNC_INTERVAL_MS,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_disk_bytes: 0,
        }
    }
}

impl RawPersistence {
    pub(super) fn validate(self) -> Result<PersistenceConfig, ConfigError> {
        let fsync = match self.fsync.as_str() {
            "always" => Fsync::Always,
            "interval" => Fsync::Interval,
            "never" => Fsync::Never,
            other => {
                return Err(ConfigError::Parse(format!(
                    "persistence.fsync: {other:?} is not one of \"always\", \"interval\", \
                     \"never\""
                )));
            }
        };
        let interval_ms = self.fsync_interval_ms;
        if !(1..=60_000).contains(&interval_ms) {
            return Err(ConfigError::OutOfRange {
                field: "persistence.fsync_interval_ms",
                value: interval_ms,
                min: 1,
                max: 60_000,
            });
        }
        if self.max_log_bytes < MIN_MAX_LOG_BYTES {
            return Err(ConfigError::OutOfRange {
                field: "persistence.max_log_bytes",
                value: self.max_log_bytes,
                min: MIN_MAX_LOG_BYTES,
                max: u64::MAX,
            });
        }
        let max_pending_bytes = usize::try_from(self.max_pending_bytes)
            .ok()
            .filter(|&b| b as u64 >= MIN_MAX_PENDING_BYTES)
            .ok_or(ConfigError::OutOfRange {
                field: "persistence.max_pending_bytes",
                value: self.max_pending_bytes,
                min: MIN_MAX_PENDING_BYTES,
                max: usize::MAX as u64,
            })?;
        let max_disk_bytes = self.max_disk_bytes;
        if max_disk_bytes != 0 && max_disk_bytes < MIN_MAX_DISK_BYTES {
            return Err(ConfigError::OutOfRange {
                field: "persistence.max_disk_bytes",
                value: max_disk_bytes,
                min: MIN_MAX_DISK_BYTES,
                max: u64::MAX,
            });
        }
        Ok(PersistenceConfig {
            dir: (!self.dir.is_empty()).then(|| PathBuf::from(self.dir)),
            fsync,
            fsync_interval: Duration::from_millis(interval_ms),
            max_log_bytes: self.max_log_bytes,
            max_pending_bytes,
            max_disk_bytes: (max_disk_bytes != 0).then_some(max_disk_bytes),
        })
    }
}

/// The `[persistence]` section, commented, for `--print-default-config`.
pub(super) fn persistence_toml(p: &PersistenceConfig) -> String {
    let dir = p
        .dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    format!(
        r#"[persistence]
# Directory of the shards' append-only logs (shard-N.log), which keep retained messages,
# persistent sessions and their queued and in-flight QoS 1/2 messages across restarts and
# crashes. Empty = off: nothing is written. See docs/persistence.md.
dir = {dir}
# When a log is synced to disk: "always" (after each write; one write per shard loop turn;
# PUBACK, PUBREC and a persistent session's SUBACK wait for it), "interval" (at least every
# fsync_interval_ms) or "never" (the kernel decides). With "interval" and "never" the
# records are also written only every fsync_interval_ms (or per 8 MiB), so that a message
# delivered and acknowledged meanwhile is never written: a broker killed with kill -9 loses
# what was not written yet (up to fsync_interval_ms of changes; with "always" nothing
# acknowledged), a machine crash or power loss what was not synced yet.
fsync = "{fsync}"
fsync_interval_ms = {interval}
# A log past this many bytes is compacted: rewritten as a snapshot of its live messages.
# Recovery at start reads every log: at most max_log_bytes (or twice the live state, if
# that is more) per shard.
max_log_bytes = {max_log_bytes}
# The most bytes of records a shard holds while its log cannot be written (a full disk) or
# its writer falls behind; past it they are dropped and the log is replaced by a snapshot
# of the state once it can be written.
max_pending_bytes = {max_pending_bytes}
# The most bytes the logs may take in dir, all shards together (each shard a 1/shards
# share, compaction's new file included); past it the disk counts as full: QoS 1 and 2 are
# refused (5.0: 0x97), QoS 0 is served, until compaction frees room. 0 = no bound but the
# disk's. Also bounds what recovery reads at start.
max_disk_bytes = {max_disk_bytes}
"#,
        dir = toml::Value::String(dir),
        fsync = p.fsync.name(),
        interval = p.fsync_interval.as_millis(),
        max_log_bytes = p.max_log_bytes,
        max_pending_bytes = p.max_pending_bytes,
        max_disk_bytes = p.max_disk_bytes.unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn persistence_is_off_by_default_with_interval_sync_every_100_ms() {
        let p = Config::default().persistence;
        assert_eq!(p, PersistenceConfig::default());
        assert_eq!(p.dir, None);
        assert_eq!(p.fsync, Fsync::Interval);
        assert_eq!(p.fsync_interval, Duration::from_millis(100));
        assert_eq!(p.max_log_bytes, 64 * 1024 * 1024);
        assert_eq!(p.max_pending_bytes, 64 * 1024 * 1024);
        assert_eq!(p.max_disk_bytes, None);
    }

    #[test]
    fn the_persistence_keys_print_and_read_back() {
        for fsync in [Fsync::Always, Fsync::Interval, Fsync::Never] {
            let c = Config {
                persistence: PersistenceConfig {
                    dir: Some(PathBuf::from("/var/lib/ringmq \"x\"")),
                    fsync,
                    fsync_interval: Duration::from_millis(250),
                    max_log_bytes: 1 << 20,
                    max_pending_bytes: 1 << 17,
                    max_disk_bytes: Some(1 << 30),
                },
                ..Config::default()
            };
            assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
        }
    }

    #[test]
    fn bad_persistence_values_are_refused_naming_the_key() {
        for (text, key) in [
            ("[persistence]\nfsync = \"sometimes\"", "persistence.fsync"),
            (
                "[persistence]\nfsync_interval_ms = 0",
                "persistence.fsync_interval_ms",
            ),
            (
                "[persistence]\nfsync_interval_ms = 60001",
                "persistence.fsync_interval_ms",
            ),
            (
                "[persistence]\nmax_log_bytes = 100",
                "persistence.max_log_bytes",
            ),
            (
                "[persistence]\nmax_pending_bytes = 1000",
                "persistence.max_pending_bytes",
            ),
            (
                "[persistence]\nmax_disk_bytes = 1000",
                "persistence.max_disk_bytes",
            ),
            ("[persistence]\ndirectory = \"/tmp\"", "directory"),
            ("[persistence]\nfsync = 1", "fsync"),
        ] {
            match Config::from_toml_str(text) {
                Ok(_) => panic!("{text:?} was accepted"),
                Err(e) => assert!(e.to_string().contains(key), "{text:?}: {e}"),
            }
        }
    }
}
