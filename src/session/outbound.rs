//! Messages to the client: `deliver` into the in-flight window or the queue behind it, the
//! PUBACK / PUBREC / PUBCOMP that free a slot, packet id allocation, queue release when a
//! slot frees or the client becomes writable, resends on reconnect [MQTT-4.4.0-1], and
//! discards the shard reports.

use super::{Action, Delivery, Discard, InFlight, Message, Outgoing, Queued, Session, Stage};
use crate::protocol::{
    MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp, QoS, ReasonCode,
    TopicFilter,
};

/// The largest packet id; ids run 1..=65535.
pub(super) const PACKET_ID_SPACE: u64 = 65_535;

// A Reason String of a failure acknowledgement: a constant, so building one never allocates.
const AWAITS_NO_PUBREC: MqttString =
    MqttString::from_static("no QoS 2 PUBLISH with this packet identifier awaits PUBREC");

impl Session {
    /// Offers a routed message at QoS `qos` (already min(publish, subscription)) with the
    /// retain flag the subscriber must see. QoS 0 is sent or dropped; QoS 1/2 takes a window
    /// slot, or waits in the queue behind earlier messages.
    pub fn deliver(&mut self, msg: &Message, qos: QoS, retain: bool) -> Delivery {
        self.deliver_via(msg, qos, retain, None)
    }

    /// `deliver` for a message that came through the shared subscription `group`: a QoS 1/2
    /// copy remembers the group, so that it can go to another member if this session ends
    /// before the client has it (`take_undelivered_shared`).
    #[inline]
    pub fn deliver_via(
        &mut self,
        msg: &Message,
        qos: QoS,
        retain: bool,
        group: Option<&TopicFilter>,
    ) -> Delivery {
        // The ACL's read check (`auth.acl_file`): the one place every message reaches a client.
        if self
            .acl
            .as_ref()
            .is_some_and(|acl| !acl.can_read(&msg.topic))
        {
            self.stats.not_authorized += 1;
            return Delivery::NotAuthorized;
        }
        if qos == QoS::AtMostOnce {
            if self.connected && self.writable {
                return Delivery::Send {
                    qos,
                    packet_id: None,
                };
            }
            self.stats.dropped_qos0 += 1;
            return Delivery::Dropped;
        }
        self.deliver_acknowledged(msg, qos, retain, group)
    }

    /// `deliver_via` at QoS 1 or 2: a window slot, or the queue behind it.
    fn deliver_acknowledged(
        &mut self,
        msg: &Message,
        qos: QoS,
        retain: bool,
        group: Option<&TopicFilter>,
    ) -> Delivery {
        let group = group.cloned();
        if self.can_send_now() {
            let packet_id = self.push_inflight(msg.for_subscriber(qos, retain), group);
            return Delivery::Send {
                qos,
                packet_id: Some(packet_id),
            };
        }
        self.enqueue(msg.for_subscriber(qos, retain), group)
    }

    /// Counts a message the shard did not write (too large for the client, or expired); for
    /// QoS 1/2 it also takes back the window slot it was given.
    pub fn discard(&mut self, packet_id: Option<PacketId>, why: Discard, out: &mut Vec<Action>) {
        match why {
            Discard::TooLarge => self.stats.dropped_too_large += 1,
            Discard::Expired => self.stats.expired += 1,
        }
        let found =
            packet_id.and_then(|id| self.position(id, |s| matches!(s, Stage::Published(_))));
        if let Some(i) = found {
            self.retire(i);
            self.release_queue(out);
        }
    }

    fn can_send_now(&self) -> bool {
        self.connected
            && self.writable
            && self.queue.is_empty()
            && self.inflight.len() < self.window
    }

    /// The byte bound always applies. The count bound applies to offline sessions; a
    /// connected one is protected by flow control instead (the shard holds back publishers'
    /// acknowledgements while it is congested), and the publishers' in-flight windows, which
    /// together may exceed the count, still arrive.
    ///
    /// While the shard holds publishers back for this session (`set_congested`), the byte
    /// bound is twice the configured one: what publishers on other shards had acknowledged
    /// before they heard of the congestion is still on its way through the mesh, and those
    /// messages must not be dropped. The mesh's own capacity held them already; twice the
    /// bound still is a bound.
    fn enqueue(&mut self, msg: Message, group: Option<TopicFilter>) -> Delivery {
        let size = msg.queued_size();
        let over_count = !self.connected && self.queue.len() >= self.limits.max_queued_messages;
        let byte_bound = if self.congested {
            self.limits.max_queued_bytes.saturating_mul(2)
        } else {
            self.limits.max_queued_bytes
        };
        let full = over_count || self.queued_bytes + size > byte_bound;
        if full {
            self.stats.dropped_queue_full += 1;
            return Delivery::Dropped;
        }
        self.queued_bytes += size;
        let msg = msg.into_stored(&mut self.store);
        let n = self.take_n();
        self.log_queued(n, None, &msg);
        self.queue.push_back(Queued { n, msg, group });
        Delivery::Queued
    }

    /// A new message straight into the window: logged once, with its packet id.
    fn push_inflight(&mut self, msg: Message, group: Option<TopicFilter>) -> PacketId {
        let n = self.take_n();
        let (seq, packet_id) = self.allocate_packet_id();
        self.log_queued(n, Some(packet_id), &msg);
        self.push_allocated(seq, n, packet_id, msg, group)
    }

    /// Message `n`, logged when it was queued, from the queue into the window.
    fn push_inflight_n(&mut self, n: u64, msg: Message, group: Option<TopicFilter>) -> PacketId {
        let (seq, packet_id) = self.allocate_packet_id();
        self.log_sent(n, packet_id);
        self.push_allocated(seq, n, packet_id, msg, group)
    }

    fn push_allocated(
        &mut self,
        seq: u64,
        n: u64,
        packet_id: PacketId,
        msg: Message,
        group: Option<TopicFilter>,
    ) -> PacketId {
        self.inflight.push_back(InFlight {
            seq,
            n,
            packet_id,
            stage: Stage::Published(msg),
            group,
        });
        packet_id
    }

    /// Ids are handed out in sequence; an id can still be in use only once the oldest
    /// in-flight entry is a whole id space behind, so the scan is rare.
    fn allocate_packet_id(&mut self) -> (u64, PacketId) {
        loop {
            let seq = self.next_seq;
            self.next_seq += 1;
            let raw = u16::try_from(seq % PACKET_ID_SPACE + 1).unwrap_or(u16::MAX);
            let Some(id) = PacketId::new(raw) else {
                continue;
            };
            let may_collide = self
                .inflight
                .front()
                .is_some_and(|oldest| seq - oldest.seq >= PACKET_ID_SPACE);
            if !may_collide || !self.inflight.iter().any(|e| e.packet_id == id) {
                return (seq, id);
            }
        }
    }

    /// The shard reports whether it holds publishers back for this session (flow control):
    /// its queue may then take twice its byte bound (`enqueue`).
    pub fn set_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// The shard reports whether the client's outbound buffer has room; turning writable
    /// releases queued messages into the window.
    pub fn set_writable(&mut self, writable: bool, out: &mut Vec<Action>) {
        let was = self.writable;
        self.writable = writable;
        if writable && !was {
            self.release_queue(out);
        }
    }

    pub(super) fn release_queue(&mut self, out: &mut Vec<Action>) {
        while self.connected && self.writable && self.inflight.len() < self.window {
            let Some(Queued { n, msg, group }) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= msg.queued_size();
            let packet_id = self.push_inflight_n(n, msg.clone(), group);
            out.push(Action::Deliver(Outgoing {
                msg,
                packet_id: Some(packet_id),
                dup: false,
            }));
        }
        if self.queue.is_empty() && self.inflight.is_empty() {
            self.store.release();
        }
    }

    /// [MQTT-4.4.0-1] on reconnect, unacknowledged PUBLISHes (DUP=1 [MQTT-3.3.1-1]) and
    /// PUBRELs go out again with their original ids, in their original order.
    pub(super) fn resend_inflight(&mut self, out: &mut Vec<Action>) {
        for entry in &self.inflight {
            match &entry.stage {
                Stage::Published(msg) => out.push(Action::Deliver(Outgoing {
                    msg: msg.clone(),
                    packet_id: Some(entry.packet_id),
                    dup: true,
                })),
                Stage::Released => {
                    out.push(Action::Send(Packet::PubRel(PubResp::new(entry.packet_id))))
                }
            }
        }
    }

    pub(super) fn on_puback(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        if let Some(i) = self.position(
            id,
            |s| matches!(s, Stage::Published(m) if m.qos == QoS::AtLeastOnce),
        ) {
            self.retire(i);
            self.release_queue(out);
        }
    }

    pub(super) fn on_pubrec(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        let found = self.position(
            id,
            |s| matches!(s, Stage::Published(m) if m.qos == QoS::ExactlyOnce),
        );
        match found {
            // A 5.0 PUBREC with an error reason ends the exchange (section 4.3.3): no PUBREL.
            Some(i) if resp.reason.is_error() => {
                self.retire(i);
                self.release_queue(out);
            }
            Some(i) => {
                if let Some(entry) = self.inflight.get_mut(i) {
                    entry.stage = Stage::Released;
                    let n = entry.n;
                    self.log_released(n);
                }
                out.push(Action::Send(Packet::PubRel(PubResp::new(id))));
            }
            None => {
                let mut pubrel = PubResp::new(id);
                if self.version == ProtocolVersion::V5 {
                    pubrel.reason = ReasonCode::PacketIdentifierNotFound;
                    pubrel.properties = Properties::reason_string(Some(AWAITS_NO_PUBREC));
                }
                out.push(Action::Send(Packet::PubRel(pubrel)));
            }
        }
    }

    pub(super) fn on_pubcomp(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        if let Some(i) = self.position(resp.packet_id, |s| matches!(s, Stage::Released)) {
            self.retire(i);
            self.release_queue(out);
        }
    }

    /// Ends the exchange of in-flight entry `i`.
    fn retire(&mut self, i: usize) {
        if let Some(entry) = self.inflight.remove(i) {
            self.log_done(entry.n);
        }
    }

    /// Acknowledgements arrive almost always in order, so the scan ends at the front.
    fn position(&self, id: PacketId, stage: impl Fn(&Stage) -> bool) -> Option<usize> {
        self.inflight
            .iter()
            .position(|e| e.packet_id == id && stage(&e.stage))
    }
}
