//! Start-up, before any shard thread exists (so plain blocking `std::fs`): lock the
//! directory, replay every `shard-N.log` in it, cut each torn or corrupt tail at its last
//! good record (logged with the offset; never a refusal to start), drop retained messages
//! whose expiry passed while the broker was down, and, when the logs do not match the shard
//! count (another `--shards`), rewrite them so that each record is in the log of the shard
//! that owns it now.
//!
//! Sessions are replayed too (`sessions`): each persistent session's last state, the
//! messages it still owes and its inbound QoS 2 ids; a session whose expiry passed while
//! the broker was down is dropped here, unless it has a will, which its shard publishes
//! when it ends the session at its first tick.
//!
//! Every shard holds a full copy of the retained store, so every shard needs every retained
//! message at start: one pass here reads each file once, instead of each shard reading all of
//! them. Each message is written by one shard only (its owner), so it is recovered once.

mod sessions;

pub use sessions::{RecoveredOut, RecoveredSession, encode_session};

use super::error::PersistError;
use super::frame::{FORMAT_VERSION, HEADER, Replay, encode_record};
use super::record::{Record, RetainedMessage, WallTime};
use crate::protocol::TopicName;
use hashbrown::HashMap;
use sessions::SessionReplay;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long start-up waits for a predecessor's lock (a broker killed a moment ago).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The log of shard `shard` in `dir`.
pub fn log_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard}.log"))
}

/// The exclusive lock on a persistence directory, held for as long as this lives (the
/// process's lifetime). The kernel releases it when the process dies, `kill -9` included.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` (its `lock` file), waiting up to `LOCK_WAIT` for a
    /// predecessor's to go.
    pub fn take(dir: &Path) -> Result<Self, PersistError> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(PersistError::io(&path))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Self { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::WouldBlock {
                return Err(PersistError::Io {
                    path,
                    source: error,
                });
            }
            if Instant::now() >= deadline {
                return Err(PersistError::Locked(dir.to_path_buf()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What start-up found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The live retained messages (unexpired), in no particular order.
    pub retained: Vec<RetainedMessage>,
    /// Retained messages dropped because their expiry passed.
    pub expired: usize,
    /// The persistent sessions, each with its home shard under the current shard count.
    pub sessions: Vec<(usize, RecoveredSession)>,
    /// Sessions dropped because their expiry passed while the broker was down.
    pub sessions_expired: usize,
    /// Logs read, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Logs whose tail was cut (each is also logged).
    pub truncated: usize,
    /// The logs were rewritten for a new shard count.
    pub rehomed: bool,
}

/// Recovers `dir` for `shards` shards at wall-clock time `now`; `owner` says which shard
/// logs a topic (its bytes) or a session (its client id's bytes). Creates `dir` if missing. Returns the lock, to be held while the broker
/// runs, and what was recovered.
pub fn recover(
    dir: &Path,
    shards: usize,
    now: WallTime,
    owner: impl Fn(&[u8]) -> usize,
) -> Result<(DirLock, Recovered), PersistError> {
    fs::create_dir_all(dir).map_err(PersistError::io(dir))?;
    let lock = DirLock::take(dir)?;
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(PersistError::io(dir))? {
        let entry = entry.map_err(PersistError::io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".log.tmp") {
            // An interrupted compaction or rehoming; the log it was to replace is intact.
            let path = entry.path();
            fs::remove_file(&path).map_err(PersistError::io(&path))?;
        } else if let Some(index) = name
            .strip_prefix("shard-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            found.push(index);
        }
    }
    found.sort_unstable();
    let mut recovered = Recovered::default();
    // Topic -> (the log it was in, its message).
    let mut live: HashMap<TopicName, (usize, RetainedMessage)> = HashMap::new();
    let mut sessions = SessionReplay::default();
    let mut outdated = false;
    for &index in &found {
        let path = log_path(dir, index);
        let bytes = fs::read(&path).map_err(PersistError::io(&path))?;
        recovered.files += 1;
        recovered.bytes += bytes.len() as u64;
        let mut replay = Replay::new(&bytes).map_err(|version| PersistError::NewerFormat {
            path: path.clone(),
            version,
        })?;
        // A log of an older version is rewritten (below), so that its header promises no
        // less than the records appended to it from now on.
        outdated |= replay.version() != 0 && replay.version() < FORMAT_VERSION;
        let mut torn = None;
        for item in replay.by_ref() {
            match item {
                Ok((Record::RetainedSet(m), _)) => {
                    live.insert(m.topic.clone(), (index, m));
                }
                Ok((Record::RetainedClear(topic), _)) => {
                    live.remove(&topic);
                }
                Ok((record, _)) => sessions.apply(index, record),
                Err(t) => torn = Some(t),
            }
        }
        if let Some(torn) = torn {
            log::warn!(
                file:% = path.display(), offset = torn.offset, len = bytes.len();
                "persistence: {}: {} at offset {}; truncated to the last good record \
                 ({} of {} bytes kept)",
                path.display(), torn.error, torn.offset, torn.offset, bytes.len()
            );
            truncate(&path, torn.offset as u64)?;
            recovered.truncated += 1;
        }
    }
    let before = live.len();
    live.retain(|_, (_, m)| m.expires_at.is_none_or(|at| at > now));
    recovered.expired = before - live.len();
    let before = sessions.live.len();
    // Expired while the broker was down: ended, unless a will is owed (its shard ends it).
    sessions
        .live
        .retain(|_, (_, s)| s.state.will.is_some() || s.state.expires_at.is_none_or(|at| at > now));
    recovered.sessions_expired = before - sessions.live.len();
    let misplaced = found.iter().any(|&i| i >= shards)
        || live
            .values()
            .any(|(index, m)| owner(m.topic.as_bytes()) != *index)
        || sessions
            .live
            .iter()
            .any(|(id, (index, _))| owner(id.as_bytes()) != *index);
    if misplaced || outdated || recovered.expired + recovered.sessions_expired > 0 {
        rehome(dir, shards, &found, (&live, &sessions), &owner)?;
        recovered.rehomed = misplaced;
    }
    recovered.retained = live.into_values().map(|(_, m)| m).collect();
    recovered.sessions = (sessions.live.into_iter())
        .map(|(id, (_, s))| (owner(id.as_bytes()), s))
        .collect();
    Ok((lock, recovered))
}

/// Cuts a log at `len` bytes, durably.
fn truncate(path: &Path, len: u64) -> Result<(), PersistError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(PersistError::io(path))?;
    file.set_len(len).map_err(PersistError::io(path))?;
    file.sync_all().map_err(PersistError::io(path))
}

/// Writes every shard's log anew with the records it owns, then removes the logs of shards
/// that no longer exist. Also run for logs of an older format version, and to drop what
/// expired while the broker was down. Each new log is written beside the old one, synced, and renamed
/// over it; until every rename is done the old and new logs hold the same state, so a
/// crash in between recovers the same messages.
fn rehome(
    dir: &Path,
    shards: usize,
    found: &[usize],
    (live, sessions): (
        &HashMap<TopicName, (usize, RetainedMessage)>,
        &SessionReplay,
    ),
    owner: &impl Fn(&[u8]) -> usize,
) -> Result<(), PersistError> {
    let mut logs: Vec<Vec<u8>> = (0..shards).map(|_| HEADER.to_vec()).collect();
    for (_, m) in live.values() {
        let Some(log) = logs.get_mut(owner(m.topic.as_bytes())) else {
            continue;
        };
        // A message that was encoded once encodes again; one that cannot is left out.
        let _ = encode_record(&Record::RetainedSet(m.clone()), log);
    }
    for (id, (_, session)) in &sessions.live {
        if let Some(log) = logs.get_mut(owner(id.as_bytes())) {
            let _ = encode_session(session, log);
        }
    }
    for (shard, bytes) in logs.iter().enumerate() {
        let path = log_path(dir, shard);
        replace(&path, bytes)?;
    }
    sync_dir(dir)?;
    for &index in found.iter().filter(|&&i| i >= shards) {
        let path = log_path(dir, index);
        fs::remove_file(&path).map_err(PersistError::io(&path))?;
    }
    sync_dir(dir)?;
    log::info!(
        shards, messages = live.len(), sessions = sessions.live.len();
        "persistence: {} retained messages and {} sessions rewritten onto {shards} shards",
        live.len(), sessions.live.len()
    );
    Ok(())
}

/// Replaces `path` by a file holding `bytes`: written beside it, synced, renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let tmp = path.with_extension("log.tmp");
    let mut file = File::create(&tmp).map_err(PersistError::io(&tmp))?;
    file.write_all(bytes).map_err(PersistError::io(&tmp))?;
    file.sync_all().map_err(PersistError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(PersistError::io(path))
}

/// Makes the directory's entries (renames, removals) durable.
fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(PersistError::io(dir))
}

#[cfg(test)]
mod tests;
