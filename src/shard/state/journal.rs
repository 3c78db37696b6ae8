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
//! Fed from one place: `store_retained`, the only way a retained message is stored or
//! deleted (a local PUBLISH, a will, a peer's `Retain`).

use super::ShardState;
use super::retained::Change;
use crate::persist::{HEADER, Record, RetainedMessage, WallTime, encode_record};
use crate::session::Message;
use crate::shard::home_shard;
use std::task::Waker;
use std::time::Instant;

/// A wall-clock reading and the `Instant` it was taken at, to turn deadlines (`Instant`)
/// into wall-clock times for the log. Given by the writer task, which reads both clocks.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    instant: Instant,
    wall: WallTime,
}

impl WallClock {
    fn wall_at(&self, at: Instant) -> WallTime {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall.plus(after),
            None => WallTime(self.wall.0.saturating_sub(
                u64::try_from((self.instant - at).as_millis()).unwrap_or(u64::MAX),
            )),
        }
    }
}

#[derive(Debug)]
pub(super) struct Journal {
    /// Encoded records not yet taken by the writer.
    pending: Vec<u8>,
    writer: Option<Waker>,
    clock: WallClock,
    /// Shutdown: the writer writes what is left, syncs and ends.
    closing: bool,
}

impl Journal {
    fn push(&mut self, record: &Record) {
        if let Err(e) = encode_record(record, &mut self.pending) {
            // Topics and payloads fit their length fields by the MQTT limits; never expected.
            log::error!("persistence: a record could not be encoded ({e}); not logged");
            return;
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
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
    /// Turns the journal on: from now on the retained messages this shard owns are logged.
    /// `wall` is the wall-clock time at `now`.
    pub fn enable_journal(&mut self, now: Instant, wall: WallTime) {
        self.journal = Some(Journal {
            pending: Vec::with_capacity(64 * 1024),
            writer: None,
            clock: WallClock { instant: now, wall },
            closing: false,
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
        let Some(journal) = &mut self.journal else {
            return;
        };
        let record = match change {
            Change::Stored => Record::RetainedSet(record_of(msg, &journal.clock)),
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

    /// The writer's side: a new wall-clock reading, for the deadlines logged next.
    pub fn set_wall_clock(&mut self, now: Instant, wall: WallTime) {
        if let Some(journal) = &mut self.journal {
            journal.clock = WallClock { instant: now, wall };
        }
    }

    /// The writer's side: swaps the pending records into `batch` (empty, with its capacity
    /// kept); true if there were any. With none, `waker` is woken by the next record.
    pub fn take_journal(&mut self, batch: &mut Vec<u8>, waker: &Waker) -> bool {
        let Some(journal) = &mut self.journal else {
            return false;
        };
        batch.clear();
        if journal.pending.is_empty() {
            journal.writer = Some(waker.clone());
            return false;
        }
        std::mem::swap(batch, &mut journal.pending);
        true
    }

    /// Whether the writer should write what is left and end.
    pub fn journal_closing(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| j.closing)
    }

    /// Asks the writer to write what is left, sync and end (shutdown).
    pub fn close_journal(&mut self) {
        if let Some(journal) = &mut self.journal {
            journal.closing = true;
            if let Some(w) = journal.writer.take() {
                w.wake();
            }
        }
    }

    /// A whole log (header first) holding the retained messages this shard owns, unexpired
    /// at `now`, written into `out`: what compaction replaces the log by. The pending
    /// records are dropped, as the snapshot holds their effect.
    pub fn journal_snapshot(&mut self, now: Instant, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&HEADER);
        let Some(clock) = self.journal.as_ref().map(|j| j.clock) else {
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
        if let Some(journal) = &mut self.journal {
            journal.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_become_wall_clock_times_around_the_reading() {
        let instant = Instant::now();
        let clock = WallClock {
            instant,
            wall: WallTime(10_000),
        };
        assert_eq!(clock.wall_at(instant), WallTime(10_000));
        assert_eq!(
            clock.wall_at(instant + Duration::from_millis(2_500)),
            WallTime(12_500)
        );
        if let Some(before) = instant.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.wall_at(before), WallTime(9_000));
        }
    }
}
