//! The shard's persistence at start (`docs/persistence.md`): recovery (once, before any
//! shard runs), each shard's share of what was recovered, and its log opened for the
//! writer task (`super::writer`).

use super::home_shard;
use super::state::ShardState;
use crate::config::{Config, Fsync, PersistenceConfig};
use crate::persist::{
    self, DirLock, LogFile, PersistError, RecoveredSession, RetainedMessage, WallTime,
};
use crate::session::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// What every shard starts its persistence with: the config, the retained messages
/// recovered, and the directory's lock (held while the broker runs). Shared by the shard
/// threads; read once by each at start (the lock is taken at start only, never while
/// serving), and the recovered messages are let go once every shard has its copy.
#[derive(Debug, Default)]
pub struct Persistence {
    config: PersistenceConfig,
    retained: RwLock<Vec<RetainedMessage>>,
    /// The persistent sessions, each with its home shard: each shard restores its own and
    /// takes the others' subscriptions as peer interest.
    sessions: RwLock<Vec<(usize, RecoveredSession)>>,
    /// Shards that have not taken their copy of `retained` and `sessions` yet.
    unrestored: AtomicUsize,
    /// The wall-clock time of recovery, and the `Instant` it was read at.
    recovered_at: Option<(Instant, WallTime)>,
    _lock: Option<DirLock>,
}

impl Persistence {
    /// Persistence off.
    pub fn off() -> Arc<Self> {
        Arc::default()
    }

    /// Recovers `config.persistence.dir` for `config.shards` shards (off without a `dir`):
    /// every log replayed, torn tails cut, logs rehomed when the shard count changed. Run
    /// before the shards start.
    pub fn recover(config: &Config) -> Result<Arc<Self>, PersistError> {
        let Some(dir) = &config.persistence.dir else {
            return Ok(Self::off());
        };
        let started = Instant::now();
        let wall = WallTime::from_system(SystemTime::now());
        let shards = config.shards.get();
        let owner = |key: &[u8]| home_shard(key, shards);
        let (lock, recovered) = persist::recover(dir, shards, wall, owner)?;
        log_recovered(dir, &recovered, started.elapsed());
        Ok(Arc::new(Self {
            config: config.persistence.clone(),
            retained: RwLock::new(recovered.retained),
            sessions: RwLock::new(recovered.sessions),
            unrestored: AtomicUsize::new(shards),
            recovered_at: Some((started, wall)),
            _lock: Some(lock),
        }))
    }

    pub fn is_on(&self) -> bool {
        self.config.dir.is_some()
    }

    /// Gives `shard` the recovered retained messages (each shard holds them all), turns its
    /// journal on, and puts back its recovered sessions.
    pub(super) fn restore(&self, shard: &mut ShardState) {
        let Some((then, wall_then)) = self.recovered_at else {
            return;
        };
        let now = Instant::now();
        let wall = wall_then.plus(now.saturating_duration_since(then));
        let retained = match self.retained.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        shard.restore_retained(retained.iter().filter_map(|m| {
            let expires_at = match m.expires_at {
                None => None,
                Some(at) if at <= wall => return None,
                Some(at) => Some(now + wall.until(at)),
            };
            Some(Message {
                topic: m.topic.clone(),
                payload: m.payload.clone(),
                qos: m.qos,
                retain: true,
                properties: m.properties.clone(),
                expires_at,
                received_at: None,
            })
        }));
        drop(retained);
        shard.enable_journal(now, wall, self.config.fsync == Fsync::Always);
        {
            let sessions = match self.sessions.read() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            shard.restore_sessions(&sessions, now, wall);
        }
        if self.unrestored.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Ok(mut retained) = self.retained.write() {
                *retained = Vec::new();
            }
            if let Ok(mut sessions) = self.sessions.write() {
                *sessions = Vec::new();
            }
        }
    }

    /// Opens shard `id`'s log; `None` with persistence off.
    pub(super) async fn open(&self, id: usize) -> Option<std::io::Result<LogFile>> {
        let dir = self.config.dir.as_ref()?;
        Some(LogFile::open(dir, id).await)
    }

    pub(super) fn config(&self) -> &PersistenceConfig {
        &self.config
    }
}

/// The start-up line: what was recovered, the bytes replayed and how fast (the replay is
/// bounded by the logs' size: `docs/persistence.md`, "Bounds").
fn log_recovered(dir: &std::path::Path, recovered: &persist::Recovered, took: Duration) {
    let owed: usize = (recovered.sessions.iter())
        .map(|(_, s)| s.messages.len())
        .sum();
    let ms = took.as_millis();
    // MiB/s, from bytes and microseconds (at least 1, for an instant replay).
    let rate = recovered.bytes as f64 / took.as_micros().max(1) as f64 * 1e6 / 1048576.0;
    log::info!(
        dir:% = dir.display(), messages = recovered.retained.len(),
        sessions = recovered.sessions.len(), queued = owed,
        expired = recovered.expired, sessions_expired = recovered.sessions_expired,
        files = recovered.files, bytes = recovered.bytes, ms, truncated = recovered.truncated;
        "persistence: recovered {} retained messages and {} sessions ({} messages owed) \
         from {} logs ({} bytes replayed in {ms} ms, {rate:.0} MiB/s; {} messages and {} \
         sessions expired, {} tails truncated)",
        recovered.retained.len(), recovered.sessions.len(), owed, recovered.files,
        recovered.bytes, recovered.expired, recovered.sessions_expired, recovered.truncated
    );
}
