//! The persistent sessions' side of the journal (`docs/persistence.md`): the record of a
//! session's state, written when it is created or resumed, when its subscriptions change
//! and when its client goes away; its end; a session's records in a snapshot; and the
//! sessions recovered at start, put back offline with their subscriptions, timers and what
//! they owe. The session writes its own message records (`session::persisted`).

use super::ShardState;
use super::secs;
use super::sessions::SessionEntry;
use super::subscriptions::LocalSub;
use super::timers::TimerKey;
use crate::persist::{
    OutMessage, Record, RecoveredSession, SessionRecord, WallClock, WallTime, encode_record,
};
use crate::protocol::TopicFilter;
use crate::session::{self, OwedMessage, Session};
use hashbrown::HashSet;
use std::time::Instant;

impl ShardState {
    /// The state of session `key` changed in a way the log keeps (created, resumed, its
    /// subscriptions, its client gone): a persistent session's state is logged whole; one
    /// that is no longer persistent but was logged is ended in the log.
    pub(super) fn log_session(&mut self, key: usize, now: Instant) {
        let Some(journal) = &self.journal else {
            return;
        };
        let Some(clock) = journal.clock() else {
            return;
        };
        let sink = journal.sink.clone();
        let Some(entry) = self.sessions.get_mut(key) else {
            return;
        };
        if !entry.session.is_persistent() {
            if entry.logged {
                entry.logged = false;
                entry.session.set_log(None);
                let end = Record::SessionEnd(entry.session.client_id().to_owned());
                journal.push(&end);
            }
            return;
        }
        if !entry.session.is_logged() {
            entry.session.set_log(Some(sink));
        }
        entry.logged = true;
        let record = session_record(entry, &clock, now);
        journal.push(&Record::SessionState(record));
    }

    /// The session of `entry` ended: its log records are void.
    pub(super) fn log_session_end(&self, entry: &SessionEntry) {
        if let (true, Some(journal)) = (entry.logged, &self.journal) {
            journal.push(&Record::SessionEnd(entry.session.client_id().to_owned()));
        }
    }

    /// Every logged session's records, for a snapshot: its state, what it owes, its
    /// inbound QoS 2 ids.
    pub(super) fn snapshot_sessions(&self, now: Instant, clock: &WallClock, out: &mut Vec<u8>) {
        for entry in self.sessions.iter().filter(|e| e.logged) {
            let state = session_record(entry, clock, now);
            let client_id = state.client_id.clone();
            let mut records = vec![Record::SessionState(state)];
            entry.session.owed(|owed| {
                let client_id = client_id.clone();
                records.push(match owed {
                    OwedMessage::Publish { n, packet_id, msg } => Record::OutQueued(OutMessage {
                        client_id,
                        n,
                        packet_id,
                        message: session::to_stored(msg, clock),
                    }),
                    OwedMessage::PubRel { n, packet_id } => Record::OutPubRel {
                        client_id,
                        n,
                        packet_id,
                    },
                    OwedMessage::InboundQos2(packet_id) => Record::InQos2 {
                        client_id,
                        packet_id,
                    },
                });
            });
            for record in &records {
                if let Err(e) = encode_record(record, out) {
                    log::error!("persistence: a record could not be encoded ({e}); not logged");
                }
            }
        }
    }

    /// Puts back the sessions recovered at start whose home is this shard, offline, each
    /// with its subscriptions in the local trie (and shared groups), its expiry and delayed
    /// will timers at what is left of them (already passed: due at the first tick, which
    /// ends the session and publishes its will), and what it owes; and records the interest
    /// of every other shard's recovered sessions in the remote trie, so that a message
    /// published here right after start reaches them. Call after `enable_journal`.
    pub fn restore_sessions(
        &mut self,
        recovered: &[(usize, RecoveredSession)],
        now: Instant,
        wall: WallTime,
    ) {
        let Some(sink) = self.journal.as_ref().map(|j| j.sink.clone()) else {
            return;
        };
        let clock = WallClock { instant: now, wall };
        let me = self.id();
        let mut peer_interest: HashSet<(usize, &TopicFilter)> = HashSet::new();
        for (home, r) in recovered {
            if *home != me {
                for sub in &r.state.subscriptions {
                    if sub.filter.share_group().is_none()
                        && peer_interest.insert((*home, &sub.filter))
                    {
                        self.subs.on_peer_interest(*home, &sub.filter, true);
                    }
                }
                continue;
            }
            let mut session = Session::restored(r, self.limits.session, clock);
            session.set_log(Some(sink.clone()));
            let key = self.sessions.insert(session, now);
            for sub in &r.state.subscriptions {
                let local = LocalSub {
                    session: key,
                    options: sub.options,
                    id: sub.id,
                };
                if sub.filter.share_group().is_some() {
                    self.join_shared(&sub.filter, local);
                } else {
                    let _ = self.subs.add(&sub.filter, local, true);
                }
            }
            let Some(epoch) = self.sessions.new_epoch(key) else {
                continue;
            };
            let due = |at: Option<WallTime>, otherwise: u32| match at {
                Some(at) => now + wall.until(at),
                None => now + secs(otherwise),
            };
            let interval = r.state.expiry_interval.min(self.limits.max_session_expiry);
            let Some(entry) = self.sessions.get_mut(key) else {
                continue;
            };
            entry.logged = true;
            if r.state.expires_at.is_some() || interval != u32::MAX {
                let at = due(r.state.expires_at, interval);
                entry.expiry_due = Some(at);
                let timer = TimerKey::SessionExpiry {
                    session: key,
                    epoch,
                };
                self.timers.rearm(&mut entry.timers.expiry, at, timer);
            }
            // A will whose Message Expiry Interval ran out while the broker was down is gone.
            let will = (r.state.will.as_ref())
                .and_then(|w| Some((w, session::will_from_record(w, &clock)?)));
            if let Some((will, message)) = will {
                // A client connected when the broker stopped lost its connection then: its
                // will's delay runs from now.
                let at = due(will.due, will.delay.min(interval));
                entry.pending_will = Some(message);
                entry.will_due = Some(at);
                let timer = TimerKey::WillDelay {
                    session: key,
                    epoch,
                };
                self.timers.rearm(&mut entry.timers.will, at, timer);
            }
        }
    }
}

/// A session's state as the log keeps it at `now`: online, its will with its delay; offline,
/// when it expires and its pending will with when it is due.
fn session_record(entry: &SessionEntry, clock: &WallClock, now: Instant) -> SessionRecord {
    let s = &entry.session;
    let offline = entry.conn.is_none();
    let expires_at = match entry.expiry_due {
        Some(at) if offline => Some(clock.wall_at(at)),
        _ => None,
    };
    let will = match offline {
        false => {
            (s.will_message()).map(|(msg, delay)| session::to_will_record(&msg, delay, None, clock))
        }
        true => entry.pending_will.as_ref().map(|msg| {
            let due = clock.wall_at(entry.will_due.unwrap_or(now));
            session::to_will_record(msg, 0, Some(due), clock)
        }),
    };
    SessionRecord {
        client_id: s.client_id().to_owned(),
        version: s.version(),
        expiry_interval: s.expiry_interval(),
        expires_at,
        will,
        subscriptions: s.subscription_records(),
    }
}
