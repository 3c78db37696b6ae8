//! `Sessions`: the sessions whose home is this shard, by key and by client id, with what the
//! shard keeps beside each session (its connection, the epoch that tells one disconnect from
//! the next, a will waiting for its delay, congestion flags).

use super::connections::ConnId;
use super::timers::SessionTimers;
use crate::session::{Message, Session};
use hashbrown::HashMap;
use slab::Slab;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct SessionEntry {
    pub session: Session,
    pub conn: Option<ConnId>,
    /// Unique per disconnect, for the expiry and will delay timers.
    pub epoch: u64,
    /// A will waiting for its Will Delay Interval (5.0) while the session is offline.
    pub pending_will: Option<Message>,
    /// Its expiry and will delay timers while offline, cancelled when it comes back or ends.
    pub timers: SessionTimers,
    /// Its queue is filling while connected: publishers wait for it (`flow`).
    pub congested: bool,
    /// It made no progress while congested: nobody waits for it until its queue drains.
    pub ignore_congestion: bool,
    /// Its last acknowledgement, or when it became congested (`flow`).
    pub progress_at: Instant,
    /// The persistence log holds this session (`session_log`): its end must be logged.
    pub logged: bool,
    /// While offline: when it expires and when its pending will is due (for the log).
    pub expiry_due: Option<Instant>,
    pub will_due: Option<Instant>,
}

#[derive(Debug, Default)]
pub(super) struct Sessions {
    slab: Slab<SessionEntry>,
    by_client_id: HashMap<String, usize>,
    next_epoch: u64,
}

impl Sessions {
    pub fn get(&self, key: usize) -> Option<&SessionEntry> {
        self.slab.get(key)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut SessionEntry> {
        self.slab.get_mut(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.slab.iter().map(|(key, _)| key)
    }

    pub fn find(&self, client_id: &str) -> Option<usize> {
        self.by_client_id.get(client_id).copied()
    }

    /// Sessions stored, connected or offline.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn contains(&self, client_id: &str) -> bool {
        self.by_client_id.contains_key(client_id)
    }

    /// Registers a new offline session under its client id.
    pub fn insert(&mut self, session: Session, now: Instant) -> usize {
        let client_id = session.client_id().to_owned();
        let key = self.slab.insert(SessionEntry {
            session,
            conn: None,
            epoch: 0,
            pending_will: None,
            timers: SessionTimers::default(),
            congested: false,
            ignore_congestion: false,
            progress_at: now,
            logged: false,
            expiry_due: None,
            will_due: None,
        });
        self.by_client_id.insert(client_id, key);
        key
    }

    pub fn remove(&mut self, key: usize) -> Option<SessionEntry> {
        let entry = self.slab.try_remove(key)?;
        self.by_client_id.remove(entry.session.client_id());
        Some(entry)
    }

    /// Starts a new epoch for the session (it just went offline); returns it.
    pub fn new_epoch(&mut self, key: usize) -> Option<u64> {
        let entry = self.slab.get_mut(key)?;
        self.next_epoch += 1;
        entry.epoch = self.next_epoch;
        Some(entry.epoch)
    }

    /// Whether the session `key` is offline since `epoch` (its timers are still current).
    pub fn offline_since(&self, key: usize, epoch: u64) -> bool {
        self.slab
            .get(key)
            .is_some_and(|e| e.conn.is_none() && e.epoch == epoch)
    }

    /// The session's connection, if its client is connected.
    pub fn conn_of(&self, key: usize) -> Option<ConnId> {
        self.slab.get(key).and_then(|e| e.conn)
    }

    pub fn is_online(&self, key: usize) -> bool {
        self.conn_of(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SessionEntry> {
        self.slab.iter().map(|(_, entry)| entry)
    }
}
