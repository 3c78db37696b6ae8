//! `Journal`: the records this shard owes its persistence log (`docs/persistence.md`),
//! collected as the state changes during a loop turn and taken by the shard's log writer as
//! one batch, one write (group commit). Sans-IO: a byte buffer and the writer's waker; the
//! writer task (`shard::persist`) does the file IO.
//!
//! Every shard holds every retained message, but only the topic's *owner*
//! (`home_shard(topic)`, the hash that homes client ids) logs it, so each retained message is
//! in exactly one log and is recovered once. `$SYS` topics are not logged: the broker
//! publishes them afresh.
//!
//! Fed from `store_retained`, the only way a retained message is stored or deleted (a local
//! PUBLISH, a will, a peer's `Retain`), from `session_log` (a persistent session's state),
//! and from the persistent sessions themselves (their messages), which share its `Sink`.

use super::ShardState;
use super::retained::Change;
use crate::persist::{
    HEADER, Record, RetainedMessage, SharedSink, Sink, SinkStats, WallClock, WallTime,
    encode_record,
};
use crate::session::Message;
use crate::shard::home_shard;
use std::task::Waker;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Journal {
    /// The records not yet taken by the writer, shared with the persistent sessions, which
    /// write their own changes into it.
    pub sink: SharedSink,
    /// Shutdown: the writer writes what is left, syncs and ends.
    closing: bool,
    /// Acknowledgements held until their records are durable (`durable`).
    pub durable: super::durable::Durability,
    /// The writer's last write failed (`disk`): new QoS 1/2 work is refused.
    pub failing: bool,
    /// Which peers' logs fail (`MeshMsg::DiskState`), and how many: new QoS 1/2 work is
    /// refused here too.
    pub peers_failing: Vec<bool>,
    pub peers_failing_count: usize,
}

impl Journal {
    pub fn push(&self, record: &Record) {
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            sink.push(record);
        }
    }

    pub fn clock(&self) -> Option<WallClock> {
        self.sink.try_borrow().ok().map(|s| s.clock())
    }
}

/// What a retained message is in the log.
fn record_of(msg: &Message, clock: &WallClock) -> RetainedMessage {
    RetainedMessage {
        topic: msg.topic.clone(),
        payload: msg.payload.clone(),
        qos: msg.qos,
        properties: msg.properties.clone(),
        expires_at: msg.expires_at.map(|at| clock.wall_at(at)),
    }
}

impl ShardState {
    /// Turns the journal on: from now on the retained messages this shard owns and its
    /// persistent sessions are logged. `wall` is the wall-clock time at `now`;
    /// `hold_acks` (`fsync = "always"`) holds acknowledgements until durable.
    pub fn enable_journal(&mut self, now: Instant, wall: WallTime, hold_acks: bool) {
        self.journal = Some(Journal {
            sink: Sink::new(WallClock { instant: now, wall }),
            closing: false,
            durable: super::durable::Durability::new(hold_acks),
            failing: false,
            peers_failing: vec![false; self.shards()],
            peers_failing_count: 0,
        });
    }

    /// Whether this shard logs `topic`.
    fn owns(&self, msg: &Message) -> bool {
        !msg.topic.is_system() && home_shard(msg.topic.as_bytes(), self.shards()) == self.id()
    }

    /// Stores (or deletes) a retained message, and logs the change if this shard owns it.
    pub(super) fn store_retained(&mut self, msg: &Message) {
        let change = self.retained.store(msg);
        if change == Change::None || self.journal.is_none() || !self.owns(msg) {
            return;
        }
        let Some(journal) = &self.journal else {
            return;
        };
        let record = match (change, journal.clock()) {
            (Change::Stored, Some(clock)) => Record::RetainedSet(record_of(msg, &clock)),
            (Change::Stored, None) => return,
            _ => Record::RetainedClear(msg.topic.clone()),
        };
        journal.push(&record);
    }

    /// Stores retained messages recovered at start, without logging them again (they are
    /// in the log already).
    pub fn restore_retained(&mut self, messages: impl IntoIterator<Item = Message>) {
        for msg in messages {
            let _ = self.retained.store(&msg);
        }
    }

    /// Bounds the records pending for the writer (`persistence.max_pending_bytes`): past it
    /// they are dropped and the writer replaces the log by a snapshot (`Sink::set_cap`).
    pub fn set_journal_cap(&mut self, bytes: usize) {
        if let Some(Ok(mut sink)) = self.journal.as_ref().map(|j| j.sink.try_borrow_mut()) {
            sink.set_cap(bytes);
        }
    }

    /// Whether records were dropped past the cap: the writer must write a snapshot (which
    /// holds their effect) before it appends anything again.
    pub fn journal_overflowed(&self) -> bool {
        match self.journal.as_ref().map(|j| j.sink.try_borrow()) {
            Some(Ok(sink)) => sink.overflowed(),
            _ => false,
        }
    }

    /// The writer's side: a new wall-clock reading, for the deadlines logged next.
    pub fn set_wall_clock(&mut self, now: Instant, wall: WallTime) {
        if let Some(Ok(mut sink)) = self.journal.as_ref().map(|j| j.sink.try_borrow_mut()) {
            sink.set_clock(WallClock { instant: now, wall });
        }
    }

    /// The writer's side: swaps the pending records into `batch` (empty, with its capacity
    /// kept) and seals the turn's held acknowledgements; true if there were records or
    /// acknowledgements (then the writer writes, syncs and calls `journal_durable`). With
    /// neither, `waker` is woken by the next.
    pub fn take_journal(&mut self, batch: &mut Vec<u8>, waker: &Waker) -> bool {
        self.take_journal_at_least(batch, waker, 1)
    }

    /// `take_journal`, but the records are taken only once at least `min_bytes` are pending
    /// (the writer lets them collect: `shard::persist`); `waker` is woken when they are.
    pub fn take_journal_at_least(
        &mut self,
        batch: &mut Vec<u8>,
        waker: &Waker,
        min_bytes: usize,
    ) -> bool {
        let got = match self.journal.as_ref().map(|j| j.sink.try_borrow_mut()) {
            Some(Ok(mut sink)) => sink.take_at_least(batch, waker, min_bytes),
            _ => return false,
        };
        let sealed = self.seal_ticket();
        got || sealed
    }

    /// What the sink saw since the start (the writer's closing log line).
    pub fn journal_stats(&self) -> SinkStats {
        match self.journal.as_ref().map(|j| j.sink.try_borrow()) {
            Some(Ok(sink)) => sink.stats,
            _ => SinkStats::default(),
        }
    }

    /// Whether the writer should write what is left and end.
    pub fn journal_closing(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| j.closing)
    }

    /// Asks the writer to write what is left, sync and end (shutdown).
    pub fn close_journal(&mut self) {
        if let Some(journal) = &mut self.journal {
            journal.closing = true;
            if let Ok(mut sink) = journal.sink.try_borrow_mut() {
                sink.wake();
            }
        }
    }

    /// A whole log (header first) holding the retained messages this shard owns, unexpired
    /// at `now`, and its persistent sessions with what they owe, written into `out`: what
    /// compaction replaces the log by. Call `journal_snapshot_taken` before anything else
    /// changes the state if the snapshot is written.
    pub fn journal_snapshot(&mut self, now: Instant, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&HEADER);
        let Some(clock) = self.journal.as_ref().and_then(|j| j.clock()) else {
            return;
        };
        for msg in self.retained.iter() {
            if msg.is_expired(now) || !self.owns(msg) {
                continue;
            }
            let record = Record::RetainedSet(record_of(msg, &clock));
            if let Err(e) = encode_record(&record, out) {
                log::error!("persistence: a record could not be encoded ({e}); not logged");
            }
        }
        self.snapshot_sessions(now, &clock, out);
    }

    /// The snapshot just encoded replaces the log: the pending records are dropped, as it
    /// holds their effect (and none of them can be voided any more: the snapshot may hold
    /// the message a "taken" record names).
    pub fn journal_snapshot_taken(&mut self) {
        if let Some(Ok(mut sink)) = self.journal.as_ref().map(|j| j.sink.try_borrow_mut()) {
            sink.clear();
        }
    }
}
