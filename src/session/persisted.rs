//! What a persistent session writes to its shard's persistence log as it changes (its
//! outbound QoS 1/2 messages through their stages, its inbound QoS 2 ids), the records a
//! snapshot holds for it, and the session recovered from them at start. The session writes
//! into the shard's `Sink` only while it has one (persistent, persistence on): otherwise
//! each of these is one branch on a `None`.

use super::{InFlight, Message, Queued, Session, Stage, outbound::PACKET_ID_SPACE};
use crate::persist::{
    MessageFields, Record, RecoveredSession, RetainedMessage, SharedSink, StoredMessage,
    SubscriptionRecord, WallClock, WallTime, WillRecord, encode_out_done, encode_out_queued,
};
use crate::protocol::{Connect, PacketId};
use hashbrown::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message a session still owes its client, as a snapshot writes it.
#[derive(Debug)]
pub enum OwedMessage<'a> {
    /// Queued (`packet_id` none) or sent and not yet acknowledged.
    Publish {
        n: u64,
        packet_id: Option<PacketId>,
        msg: &'a Message,
    },
    /// QoS 2, PUBREC received: PUBREL is owed.
    PubRel { n: u64, packet_id: PacketId },
    /// An inbound QoS 2 id awaiting PUBREL.
    InboundQos2(PacketId),
}

impl Session {
    /// Gives the session the shard's sink (persistent, persistence on) or takes it away.
    pub fn set_log(&mut self, sink: Option<SharedSink>) {
        self.log = sink;
        self.pending_takes.clear();
    }

    pub fn is_logged(&self) -> bool {
        self.log.is_some()
    }

    pub(super) fn take_n(&mut self) -> u64 {
        let n = self.next_n;
        self.next_n += 1;
        n
    }

    fn note(&self, record: impl FnOnce(String) -> Record) {
        let Some(sink) = &self.log else {
            return;
        };
        // The shard never holds its sink borrowed while a session runs; if it did, the
        // record is lost rather than the shard.
        if let Ok(mut sink) = sink.try_borrow_mut() {
            sink.push(&record(self.client_id.clone()));
        }
    }

    pub(super) fn log_queued(&mut self, n: u64, packet_id: Option<PacketId>, msg: &Message) {
        let Some(sink) = &self.log else {
            return;
        };
        let Ok(mut sink) = sink.try_borrow_mut() else {
            return;
        };
        let clock = sink.clock();
        // Entries of batches the writer took are of no more use.
        let epoch = sink.epoch();
        while (self.pending_takes.front()).is_some_and(|(_, p)| p.epoch() != epoch) {
            self.pending_takes.pop_front();
        }
        // Encoded from the message in place: what `Record::OutQueued` of `to_stored` would be.
        let fields = MessageFields {
            topic: &msg.topic,
            payload: &msg.payload,
            qos: msg.qos,
            properties: msg.properties.as_deref(),
            expires_at: msg.expires_at.map(|at| clock.wall_at(at)),
        };
        let client_id = &self.client_id;
        let body = |out: &mut Vec<u8>| {
            encode_out_queued(client_id, n, packet_id, (msg.retain, fields), out)
        };
        if let Some(at) = sink.push_body(body) {
            self.pending_takes.push_back((n, at));
        }
    }

    pub(super) fn log_sent(&self, n: u64, packet_id: PacketId) {
        self.note(|client_id| Record::OutSent {
            client_id,
            n,
            packet_id,
        });
    }

    pub(super) fn log_released(&self, n: u64) {
        self.note(|client_id| Record::OutReleased { client_id, n });
    }

    /// Message `n` is retired. If its "taken" record is still pending, that record is voided
    /// and nothing is written: neither reached the file, so a crash from now on finds no
    /// trace of it, which is what a retired message leaves. A "sent" or "PUBREC" record of
    /// it that stays pending names a message the log does not hold, which recovery ignores.
    pub(super) fn log_done(&mut self, n: u64) {
        let Some(sink) = &self.log else {
            return;
        };
        let Ok(mut sink) = sink.try_borrow_mut() else {
            return;
        };
        // Entries of batches the writer took cannot be voided: dropped, so that the scan
        // covers the current batch only. Acknowledgements come in order almost always: the
        // entry is at the front.
        let epoch = sink.epoch();
        while (self.pending_takes.front()).is_some_and(|(_, p)| p.epoch() != epoch) {
            self.pending_takes.pop_front();
        }
        if let Some(i) = self.pending_takes.iter().position(|&(m, _)| m == n)
            && let Some((_, at)) = self.pending_takes.remove(i)
            && sink.void(at)
        {
            return;
        }
        let _ = sink.push_body(|out| encode_out_done(&self.client_id, n, out));
    }

    pub(super) fn log_in_qos2(&self, packet_id: PacketId, awaiting: bool) {
        self.note(|client_id| match awaiting {
            true => Record::InQos2 {
                client_id,
                packet_id,
            },
            false => Record::InQos2Done {
                client_id,
                packet_id,
            },
        });
    }

    /// The subscriptions as the log keeps them.
    pub fn subscription_records(&self) -> Vec<SubscriptionRecord> {
        self.subscriptions_with_ids()
            .map(|(filter, options, id)| SubscriptionRecord {
                filter: filter.clone(),
                options,
                id,
            })
            .collect()
    }

    /// The will of the connected client, as the message it becomes, with its delay.
    pub fn will_message(&self) -> Option<(Message, u32)> {
        let delay = self.will_delay();
        self.will.clone().map(|w| (Message::from_will(w), delay))
    }

    /// Every message the session still owes its client, oldest first (in flight, then
    /// queued), and the inbound QoS 2 ids awaiting PUBREL: what a snapshot writes.
    pub fn owed(&self, mut each: impl FnMut(OwedMessage<'_>)) {
        for entry in &self.inflight {
            each(match &entry.stage {
                Stage::Published(msg) => OwedMessage::Publish {
                    n: entry.n,
                    packet_id: Some(entry.packet_id),
                    msg,
                },
                Stage::Released => OwedMessage::PubRel {
                    n: entry.n,
                    packet_id: entry.packet_id,
                },
            });
        }
        for q in &self.queue {
            each(OwedMessage::Publish {
                n: q.n,
                packet_id: None,
                msg: &q.msg,
            });
        }
        for &id in &self.inbound_qos2 {
            if let Some(id) = PacketId::new(id) {
                each(OwedMessage::InboundQos2(id));
            }
        }
    }

    /// A persistent session recovered from the log at start, offline: its subscriptions,
    /// the messages it owes (those that had a packet id back in the window with it, to be
    /// resent with DUP on reconnect [MQTT-4.4.0-1], the others queued), its inbound QoS 2
    /// ids. `clock` reads both clocks at `now`, to turn wall-clock expiries into deadlines.
    pub fn restored(recovered: &RecoveredSession, limits: super::Limits, clock: WallClock) -> Self {
        let state = &recovered.state;
        let connect = Connect {
            version: state.version,
            clean_start: false,
            keep_alive: 0,
            client_id: Default::default(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
            // Its subscriptions were stored with the options a bridge gets; the CONNECT that
            // resumes the session says again whether the client is one.
            bridge: false,
        };
        let mut session = Self::new(state.client_id.clone(), &connect, limits);
        session.connected = false;
        session.writable = false;
        session.persistent = true;
        session.expiry_interval = state.expiry_interval;
        let mut subscriptions = HashMap::with_capacity(state.subscriptions.len());
        for sub in &state.subscriptions {
            subscriptions.insert(sub.filter.clone(), (sub.options, sub.id));
        }
        session.subscriptions = subscriptions;
        for (&n, out) in &recovered.messages {
            let msg = out.message.as_ref().map(|m| from_stored(m, &clock));
            match (out.packet_id, msg) {
                (Some(packet_id), msg) => session.inflight.push_back(InFlight {
                    // Recovered ids are any: seq 0 with `next_seq` a whole id space on makes
                    // every allocation check for a collision while they are in flight.
                    seq: 0,
                    n,
                    packet_id,
                    stage: msg.map_or(Stage::Released, Stage::Published),
                    group: None,
                }),
                (None, Some(msg)) => {
                    session.queued_bytes += msg.queued_size();
                    session.queue.push_back(Queued {
                        n,
                        msg,
                        group: None,
                    });
                }
                (None, None) => {}
            }
            session.next_n = n + 1;
        }
        session.next_seq = PACKET_ID_SPACE;
        session.inbound_qos2 = recovered.inbound_qos2.iter().copied().collect();
        session
    }
}

/// A message as the log keeps it; `clock` turns its expiry into wall-clock time.
pub fn to_stored(msg: &Message, clock: &WallClock) -> StoredMessage {
    StoredMessage {
        retain: msg.retain,
        message: RetainedMessage {
            topic: msg.topic.clone(),
            payload: msg.payload.clone(),
            qos: msg.qos,
            properties: msg.properties.clone(),
            expires_at: msg.expires_at.map(|at| clock.wall_at(at)),
        },
    }
}

/// The message of a log record; `clock` turns its wall-clock expiry into a deadline (one
/// already passed is a deadline at the reading, so it expires at once).
pub fn from_stored(m: &StoredMessage, clock: &WallClock) -> Message {
    let expires_at = m.message.expires_at.map(|at| {
        let left = clock.wall.until(at);
        clock.instant + left
    });
    Message {
        topic: m.message.topic.clone(),
        payload: m.message.payload.clone(),
        qos: m.message.qos,
        retain: m.retain,
        properties: m.message.properties.clone(),
        expires_at,
        received_at: None::<Instant>,
    }
}

/// A will as the log keeps it: the message, its delay, when it is due (an offline session's
/// pending will) and its Message Expiry Interval, which runs from when it is published.
pub fn to_will_record(
    msg: &Message,
    delay: u32,
    due: Option<WallTime>,
    clock: &WallClock,
) -> WillRecord {
    let mut message = to_stored(msg, clock);
    // The expiry is `due` plus the interval: one time, not two to keep in step.
    message.message.expires_at = None;
    WillRecord {
        message,
        delay,
        due,
        expiry_interval: msg
            .properties
            .as_ref()
            .and_then(|p| p.message_expiry_interval),
    }
}

/// The will of a log record as the message to publish, its Message Expiry Interval back in
/// its properties. An offline session's will (one with a due time) expires that interval
/// after it was due, so the time the broker was down past it counts [MQTT-3.3.2-6], as for
/// a queued message; `None` if it has expired already (nobody may get it
/// [MQTT-3.3.2-5]). Without a due time its interval starts when it is published.
pub fn will_from_record(will: &WillRecord, clock: &WallClock) -> Option<Message> {
    let mut msg = from_stored(&will.message, clock);
    msg.expires_at = None;
    let Some(interval) = will.expiry_interval else {
        return Some(msg);
    };
    let mut properties = msg.properties.as_deref().cloned().unwrap_or_default();
    properties.message_expiry_interval = Some(interval);
    msg.properties = Some(Arc::new(properties));
    if let Some(due) = will.due {
        let expires = due.plus(Duration::from_secs(u64::from(interval)));
        if expires <= clock.wall {
            return None;
        }
        msg.expires_at = Some(clock.instant + clock.wall.until(expires));
    }
    Some(msg)
}
