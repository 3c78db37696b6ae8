//! Acknowledgements held until what they acknowledge is durable (`fsync = "always"`,
//! `docs/persistence.md`): a PUBACK / PUBREC for an inbound QoS 1/2 message and a SUBACK for
//! a persistent session wait until the log batch that holds their records is written and
//! `fdatasync`'d, on this shard and on every peer the message may have reached.
//!
//! Group commit: the acknowledgements of one loop turn share one *ticket*, sealed when the
//! log writer takes the turn's batch. A ticket with acknowledgements sends every peer a
//! `DurableBarrier` behind whatever this shard sent it before (each ring is FIFO), and the
//! peer answers `DurableAck` once its own batch holding everything it got before the
//! barrier is synced. The acknowledgements go out when the ticket is synced here and every
//! peer has answered. Many clients, and many shards, share one sync.
//!
//! Part of the journal: with persistence off, or with `interval` / `never`, nothing is
//! held and `write_packet` pays one branch.

use super::ShardState;
use super::connections::ConnId;
use crate::protocol::Packet;
use crate::shard::MeshMsg;
use std::collections::VecDeque;
use std::time::Instant;

/// Most acknowledgements held at once; past it they go out unheld (logged once), so a
/// stuck disk cannot grow the shard's memory without bound.
const MAX_HELD: usize = 1 << 16;

/// The acknowledgements of one loop turn, and the peers' barriers to answer with it.
#[derive(Debug, Default)]
struct Ticket {
    token: u64,
    acks: Vec<(ConnId, Packet)>,
    /// Peers' `DurableBarrier`s (peer, token) received before this batch was taken.
    replies: Vec<(usize, u64)>,
    /// Peers that have not answered this ticket's barrier yet.
    peers_left: usize,
    synced: bool,
}

impl Ticket {
    fn is_empty(&self) -> bool {
        self.acks.is_empty() && self.replies.is_empty()
    }
}

#[derive(Debug, Default)]
pub(super) struct Durability {
    /// Whether acknowledgements are held at all (`fsync = "always"`).
    holds: bool,
    /// The ticket of the batch being collected now.
    open: Ticket,
    /// Tickets of batches the writer took, oldest first.
    sealed: VecDeque<Ticket>,
    next_token: u64,
    held: usize,
    /// `MAX_HELD` was reached (logged once per episode).
    over: bool,
}

impl Durability {
    pub fn new(holds: bool) -> Self {
        Self {
            holds,
            ..Self::default()
        }
    }
}

impl ShardState {
    /// `write_packet`'s check: whether `packet` waits for the log to be durable (it is kept
    /// and sent by `release_ticket`).
    pub(super) fn hold_until_durable(&mut self, conn: ConnId, packet: &Packet) -> bool {
        let Some(journal) = &self.journal else {
            return false;
        };
        if !journal.durable.holds {
            return false;
        }
        let holds = match packet {
            Packet::PubAck(_) | Packet::PubRec(_) => true,
            Packet::SubAck(_) => self
                .conns
                .get(conn)
                .and_then(|c| self.sessions.get(c.session))
                .is_some_and(|e| e.session.is_persistent()),
            _ => false,
        };
        if !holds {
            return false;
        }
        let Some(journal) = &mut self.journal else {
            return false;
        };
        let durable = &mut journal.durable;
        if durable.held >= MAX_HELD {
            if !durable.over {
                durable.over = true;
                log::warn!(
                    held = durable.held;
                    "persistence: {} acknowledgements wait for the log; more go out before \
                     they are durable", durable.held
                );
            }
            return false;
        }
        durable.held += 1;
        durable.open.acks.push((conn, packet.clone()));
        if let Ok(mut sink) = journal.sink.try_borrow_mut() {
            sink.wake();
        }
        true
    }

    /// The writer took the turn's batch: its ticket is sealed (true if there was one, so
    /// that the writer syncs and releases it even with no records), and every peer gets a
    /// barrier behind what this shard sent it.
    pub(super) fn seal_ticket(&mut self) -> bool {
        let shards = self.shards();
        let Some(journal) = &mut self.journal else {
            return false;
        };
        let durable = &mut journal.durable;
        if durable.open.is_empty() {
            return false;
        }
        let mut ticket = std::mem::take(&mut durable.open);
        ticket.token = durable.next_token;
        durable.next_token += 1;
        let barrier = !ticket.acks.is_empty() && shards > 1;
        if barrier {
            ticket.peers_left = shards - 1;
        }
        let token = ticket.token;
        durable.sealed.push_back(ticket);
        if barrier {
            self.broadcast(|| MeshMsg::DurableBarrier { token });
            self.mesh.flush_wakes();
        }
        true
    }

    /// The writer wrote and synced every batch it took: their tickets are durable here.
    pub fn journal_durable(&mut self, now: Instant) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let mut sealed = std::mem::take(&mut journal.durable.sealed);
        for ticket in &mut sealed {
            ticket.synced = true;
            for (peer, token) in ticket.replies.drain(..) {
                let _ = self.mesh.send(peer, MeshMsg::DurableAck { token });
            }
        }
        let mut waiting = VecDeque::new();
        for ticket in sealed {
            if ticket.peers_left == 0 {
                self.release_ticket(ticket, now);
            } else {
                waiting.push_back(ticket);
            }
        }
        if let Some(journal) = &mut self.journal {
            // Tickets sealed while these were released (none: sealing is the writer's) go
            // after them.
            waiting.append(&mut journal.durable.sealed);
            journal.durable.sealed = waiting;
        }
        self.finish(now);
    }

    /// A peer asks to hear once everything it sent before is durable here.
    pub(super) fn on_durable_barrier(&mut self, from: usize, token: u64) {
        match &mut self.journal {
            Some(journal) => {
                journal.durable.open.replies.push((from, token));
                if let Ok(mut sink) = journal.sink.try_borrow_mut() {
                    sink.wake();
                }
            }
            // Persistence is on everywhere or nowhere; answer anyway, never hold a peer.
            None => {
                let _ = self.mesh.send(from, MeshMsg::DurableAck { token });
            }
        }
    }

    /// A peer's log holds durably everything this shard sent it before ticket `token`.
    pub(super) fn on_durable_ack(&mut self, token: u64, now: Instant) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let sealed = &mut journal.durable.sealed;
        let Some(i) = sealed.iter().position(|t| t.token == token) else {
            return;
        };
        let Some(ticket) = sealed.get_mut(i) else {
            return;
        };
        ticket.peers_left = ticket.peers_left.saturating_sub(1);
        if ticket.peers_left > 0 || !ticket.synced {
            return;
        }
        if let Some(ticket) = sealed.remove(i) {
            self.release_ticket(ticket, now);
        }
    }

    fn release_ticket(&mut self, ticket: Ticket, now: Instant) {
        if let Some(journal) = &mut self.journal {
            let durable = &mut journal.durable;
            durable.held = durable.held.saturating_sub(ticket.acks.len());
            if durable.held < MAX_HELD / 2 {
                durable.over = false;
            }
        }
        for (conn, packet) in &ticket.acks {
            // A connection gone meanwhile is a stale id: nothing is written.
            self.send_packet(conn.to_owned(), packet, now);
        }
    }
}
