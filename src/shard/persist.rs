//! The shard's persistence that reads clocks and does IO (`docs/persistence.md`): recovery
//! at start (once, before any shard runs), each shard's share of what was recovered, and the
//! log writer task: one write per loop turn of whatever `ShardState`'s journal collected
//! (group commit), synced as `[persistence] fsync` says, compacted past `max_log_bytes`.

use super::conn::Shared;
use super::home_shard;
use super::state::ShardState;
use crate::config::{Config, Fsync, PersistenceConfig};
use crate::persist::{
    self, DirLock, LogFile, PersistError, RecoveredSession, RetainedMessage, WallTime,
};
use crate::session::Message;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

/// How long the writer waits after a failed write or compaction before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// With `interval` and `never` the writer lets records collect for `fsync_interval_ms`
/// after a write before it writes again, or until this many bytes are pending (voided
/// records included: they leave the buffer only when it is taken): fewer, larger writes,
/// and a message taken and retired within that time is never written at all
/// (`Sink::void`). What a `kill -9` can lose grows by as much (`docs/persistence.md`);
/// `always` writes every loop turn. 8 MiB is about 50 ms of 50 QoS 1 pairs at full speed
/// on one core, and bounds the buffer (twice, with the one being written).
const WRITE_BYTES: usize = 8 << 20;

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
        let owed: usize = (recovered.sessions.iter())
            .map(|(_, s)| s.messages.len())
            .sum();
        log::info!(
            dir:% = dir.display(), messages = recovered.retained.len(),
            sessions = recovered.sessions.len(), queued = owed,
            expired = recovered.expired, sessions_expired = recovered.sessions_expired,
            files = recovered.files, bytes = recovered.bytes, truncated = recovered.truncated;
            "persistence: recovered {} retained messages and {} sessions ({} messages owed) \
             from {} logs ({} bytes) in {} ms ({} messages and {} sessions expired, {} tails \
             truncated)",
            recovered.retained.len(), recovered.sessions.len(), owed, recovered.files,
            recovered.bytes, started.elapsed().as_millis(), recovered.expired,
            recovered.sessions_expired, recovered.truncated
        );
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

/// The log writer: waits for the journal's records, writes each batch with one write,
/// syncs per the policy, compacts past the bound. Ends after `close_journal`, once what was
/// left is written and synced.
pub(super) async fn journal_task(state: Shared, mut log: LogFile, config: PersistenceConfig) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut spare = Vec::new();
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    let mut last_write = Instant::now();
    let (mut writes, mut bytes) = (0u64, 0u64);
    let mut compact_at = compaction_bound(&config, log.len());
    // After a failed write the log's end is unknown: the next turn replaces it by a snapshot.
    let mut broken = false;
    loop {
        let deadline = match broken {
            // A failed write is retried now (after `RETRY_AFTER`), not at the next record:
            // without traffic there might be none.
            true => Some(Instant::now()),
            false => (config.fsync == Fsync::Interval && unsynced)
                .then(|| last_sync + config.fsync_interval),
        };
        let lazy = config.fsync != Fsync::Always && !broken;
        let got = match lazy {
            false => next_batch(&state, &mut batch, deadline, 1).await,
            true => {
                let due = last_write + config.fsync_interval;
                let until = deadline.map_or(due, |d| d.min(due));
                // Past the time (or closing): whatever is pending, else the first record.
                next_batch(&state, &mut batch, Some(until), WRITE_BYTES).await
                    || next_batch(&state, &mut batch, deadline, 1).await
            }
        };
        let closing = state.borrow().journal_closing();
        {
            let mut s = state.borrow_mut();
            s.set_wall_clock(Instant::now(), WallTime::from_system(SystemTime::now()));
        }
        if broken || (got && log.len() + batch.len() as u64 > compact_at) {
            state
                .borrow_mut()
                .journal_snapshot(Instant::now(), &mut spare);
            let before = log.len();
            let (result, snapshot) = log.replace(std::mem::take(&mut spare)).await;
            spare = snapshot;
            match result {
                Ok(()) => {
                    log::info!(
                        file:% = log.path().display(), before, after = log.len();
                        "persistence: {} compacted from {before} to {} bytes",
                        log.path().display(), log.len()
                    );
                    state.borrow_mut().set_log_failing(false, log.path());
                    broken = false;
                    unsynced = false;
                    last_sync = Instant::now();
                    compact_at = compaction_bound(&config, log.len());
                }
                Err(e) => {
                    // Logged once per episode (`set_log_failing`), not every retry.
                    if !state.borrow_mut().set_log_failing(true, log.path()) {
                        log::debug!(
                            file:% = log.path().display(), error:% = e;
                            "persistence: compacting {} failed again: {e}", log.path().display()
                        );
                    } else {
                        log::error!(
                            file:% = log.path().display(), error:% = e;
                            "persistence: compacting {} failed: {e}; retrying every {} s",
                            log.path().display(), RETRY_AFTER.as_secs()
                        );
                    }
                    broken = true;
                }
            }
            spare.clear();
        } else if got && !batch.is_empty() {
            let (result, written) = log.append(std::mem::take(&mut batch)).await;
            batch = written;
            last_write = Instant::now();
            if result.is_ok() {
                writes += 1;
                bytes += batch.len() as u64;
            }
            match result {
                Ok(()) => unsynced = true,
                Err(e) => {
                    if state.borrow_mut().set_log_failing(true, log.path()) {
                        log::error!(
                            file:% = log.path().display(), error:% = e;
                            "persistence: writing {} failed: {e}; the log will be rewritten",
                            log.path().display()
                        );
                    }
                    broken = true;
                }
            }
        }
        let due = match config.fsync {
            Fsync::Always => true,
            Fsync::Interval => last_sync.elapsed() >= config.fsync_interval,
            Fsync::Never => false,
        };
        if unsynced && (due || closing) {
            match log.sync().await {
                Ok(()) => unsynced = false,
                Err(e) => {
                    // What the kernel held may be lost: the log is rewritten, as after a
                    // failed write.
                    if state.borrow_mut().set_log_failing(true, log.path()) {
                        log::error!(
                            file:% = log.path().display(), error:% = e;
                            "persistence: syncing {} failed: {e}", log.path().display()
                        );
                    }
                    broken = true;
                }
            }
            last_sync = Instant::now();
        }
        let durable = !broken && (!unsynced || config.fsync != Fsync::Always);
        if durable {
            // What was taken is written (and, with `always`, synced): the acknowledgements
            // held for it may go.
            state.borrow_mut().journal_durable(Instant::now());
        }
        if broken {
            if closing {
                break;
            }
            monoio::time::sleep(RETRY_AFTER).await;
        } else if closing && !got {
            break;
        }
    }
    let stats = state.borrow().journal_stats();
    log::info!(
        file:% = log.path().display(), writes, bytes, records = stats.records,
        voided = stats.voided;
        "persistence: {} closed: {writes} writes of {bytes} bytes; {} records, {} of them \
         voided before they were written", log.path().display(), stats.records, stats.voided
    );
}

/// The size past which a log is compacted: the configured bound, or twice the live state
/// just written if that is more (a snapshot over the bound would be compacted over again).
fn compaction_bound(config: &PersistenceConfig, len: u64) -> u64 {
    config.max_log_bytes.max(len.saturating_mul(2))
}

/// Waits for at least `min_bytes` of records (true: they are in `batch`), for shutdown, or
/// until `deadline` (a sync or a write is due).
async fn next_batch(
    state: &Shared,
    batch: &mut Vec<u8>,
    deadline: Option<Instant>,
    min_bytes: usize,
) -> bool {
    let mut got = false;
    let wait = poll_fn(|cx| {
        let mut s = state.borrow_mut();
        if s.take_journal_at_least(batch, cx.waker(), min_bytes) {
            got = true;
            return Poll::Ready(());
        }
        if s.journal_closing() {
            return Poll::Ready(());
        }
        Poll::Pending
    });
    match deadline {
        None => wait.await,
        Some(at) => {
            let _ = monoio::time::timeout(at.saturating_duration_since(Instant::now()), wait).await;
        }
    }
    got
}
