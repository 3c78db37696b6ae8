//! Routing: where a PUBLISH goes (the retained store, peer shards with interest, shared
//! groups, local subscribers) and how it reaches one subscriber's connection. Every PUBLISH
//! a client receives, live, queued or resent, is written by `write_publish`.
//!
//! The destinations of a message are the kinds below, each one function:
//! - `store` in `Retained` (RETAIN 1), copied to every peer;
//! - `forward_to_peers`: each peer shard whose clients subscribed, once;
//! - `route_shared`: one member of each matching shared group, on any shard;
//! - `deliver_local`: each local session with a matching subscription, once.
//!
//! A destination outside the process (a bridge to another broker) is a local session like any
//! other, so it needs no case here. Routing returns what held the message up (a congested
//! subscriber, a full peer ring), which flow control turns into held acknowledgements.

use super::ShardState;
use super::connections::{ConnId, OutPublish, Written};
use super::flow::GateCause;
use super::mesh_out::Sent;
use super::subscriptions::{Interest, LocalSub};
use crate::protocol::{PacketId, QoS, RetainHandling, TopicFilter};
use crate::session::{Delivery, Discard, Message, Outgoing};
use crate::shard::MeshMsg;
use std::time::Instant;

/// What routing a message held up, if anything (the last cause found).
pub(super) type Held = Option<GateCause>;

/// How a message is offered to one session.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offer<'a> {
    /// min(publish QoS, subscription QoS).
    pub qos: QoS,
    /// The RETAIN flag the subscriber sees.
    pub retain: bool,
    /// The shared subscription group it came through (the session remembers it).
    pub group: Option<&'a TopicFilter>,
}

impl ShardState {
    /// Routes a PUBLISH from a local client (or a will): retained store, local subscribers,
    /// shared groups, and once to each peer shard that has interest (retained messages go to
    /// every peer).
    pub(super) fn route(&mut self, msg: &Message, origin: Option<usize>, now: Instant) -> Held {
        let routed = self.stats.routed;
        let to_peers = if msg.retain {
            self.store_retained(msg);
            self.broadcast(|| MeshMsg::Retain(msg.clone()))
        } else {
            self.forward_to_peers(msg)
        };
        let to_shared = self.route_shared(msg, now);
        let to_local = self.deliver_local(msg, origin, now);
        if self.stats.routed == routed && !msg.retain {
            self.stats.no_subscriber += 1;
        }
        to_local.or(to_shared).or(to_peers)
    }

    /// Sends `make()` to every peer; holds if one of them had to overflow.
    pub(super) fn broadcast(&mut self, make: impl Fn() -> MeshMsg) -> Held {
        let mut held = None;
        for peer in 0..self.shards() {
            if peer != self.id() && self.mesh.send(peer, make()) == Sent::Overflowed {
                held = Some(GateCause::Peer(peer));
            }
        }
        held
    }

    fn forward_to_peers(&mut self, msg: &Message) -> Held {
        if self.shards() < 2 {
            return None;
        }
        let mut held = None;
        let peers = self.subs.interested_peers(&msg.topic);
        for (peer, _) in peers.iter().enumerate().filter(|(_, marked)| **marked) {
            self.stats.routed += 1;
            let sent = self.mesh.send(peer, MeshMsg::Publish(msg.clone()));
            if sent == Sent::Overflowed {
                held = Some(GateCause::Peer(peer));
            } else if msg.qos != QoS::AtMostOnce {
                held = self.flow.holds_for(peer).or(held);
            }
        }
        held
    }

    /// [MQTT-3.3.4-1..] delivers to each local subscriber once, at the highest QoS of its
    /// matching subscriptions, capped by the publish QoS.
    pub(super) fn deliver_local(
        &mut self,
        msg: &Message,
        origin: Option<usize>,
        now: Instant,
    ) -> Held {
        let mut matches = self.subs.take_matches(&msg.topic);
        let mut held = None;
        if !matches.subs.is_empty() {
            self.stats.routed += 1;
            self.conns.begin_message();
        }
        for group in matches.subs.chunk_by(|a, b| a.session == b.session) {
            let Some(offer) = merge_subscriptions(group, msg, origin, &mut matches.ids) else {
                continue;
            };
            let session = group[0].session;
            held = if matches.ids.is_empty() {
                self.deliver_to(session, msg, offer, now)
            } else {
                // A copy that differs per subscriber (Subscription Identifiers): encoded on
                // its own, so the shared encodings are invalidated before and after it.
                let tagged = msg.with_subscription_ids(&matches.ids);
                self.conns.begin_message();
                let held = self.deliver_to(session, &tagged, offer, now);
                self.conns.begin_message();
                held
            }
            .or(held);
        }
        self.subs.restore_matches(matches);
        held
    }

    /// Offers one message to one session and writes it to its connection if it goes out now.
    pub(super) fn deliver_to(
        &mut self,
        session_key: usize,
        msg: &Message,
        offer: Offer<'_>,
        now: Instant,
    ) -> Held {
        let entry = self.sessions.get_mut(session_key)?;
        let conn = entry.conn;
        let delivery = entry
            .session
            .deliver_via(msg, offer.qos, offer.retain, offer.group);
        let (qos, packet_id) = match delivery {
            Delivery::Send { qos, packet_id } => (qos, packet_id),
            Delivery::Queued => return self.note_queued(session_key, now),
            Delivery::Dropped if offer.qos == QoS::AtMostOnce => {
                self.counters.dropped_qos0 += 1;
                return None;
            }
            Delivery::Dropped => {
                self.counters.dropped_queue_full += 1;
                return None;
            }
            Delivery::NotAuthorized => return None,
        };
        let out = OutPublish {
            msg,
            qos,
            retain: offer.retain,
            packet_id,
            dup: false,
        };
        if let Some(conn) = conn {
            self.write_publish(conn, session_key, out, now);
            self.latency.delivered(msg.received_at);
        }
        None
    }

    /// Writes a resent or released PUBLISH. One that expired while it waited is dropped
    /// [MQTT-3.3.2-5] (a resend has started delivery already and still goes); the rest carry
    /// the remaining expiry [MQTT-3.3.2-6].
    pub(super) fn write_outgoing(
        &mut self,
        conn: ConnId,
        session_key: usize,
        outgoing: &Outgoing,
        now: Instant,
    ) {
        let remaining;
        let mut msg = &outgoing.msg;
        if msg.expires_at.is_some() {
            if msg.is_expired(now) && !outgoing.dup {
                return self.discard(conn, session_key, outgoing.packet_id, Discard::Expired);
            }
            if let Some(left) = msg.with_remaining_expiry(now) {
                remaining = left;
                msg = &remaining;
            }
        }
        let out = OutPublish {
            msg,
            qos: msg.qos,
            retain: msg.retain,
            packet_id: outgoing.packet_id,
            dup: outgoing.dup,
        };
        // A message of its own: not one of the encodings of a fan-out in progress.
        self.conns.begin_message();
        self.write_publish(conn, session_key, out, now);
        self.conns.begin_message();
    }

    /// The one path of a PUBLISH into a connection's buffer (`Connections::write_publish`),
    /// with what follows for the session: a buffer over its cap stops deliveries, and a
    /// message too large for the client gives its window slot to the next one.
    #[inline(always)]
    fn write_publish(
        &mut self,
        conn: ConnId,
        session_key: usize,
        out: OutPublish<'_>,
        now: Instant,
    ) {
        let cap = self.limits.max_outbound_bytes;
        match self.conns.write_publish(conn, out, cap) {
            Written::Done => self.stats.sent(out.qos),
            trouble => self.written_with_trouble(conn, session_key, out, trouble, now),
        }
    }

    #[cold]
    #[inline(never)]
    fn written_with_trouble(
        &mut self,
        conn: ConnId,
        session_key: usize,
        out: OutPublish<'_>,
        written: Written,
        now: Instant,
    ) {
        match written {
            Written::Done => self.stats.sent(out.qos),
            Written::OverCap => {
                self.stats.sent(out.qos);
                self.mark_over_cap(conn, now);
            }
            // [MQTT-3.1.2-25] never more than the client's Maximum Packet Size.
            Written::TooLarge => self.discard(conn, session_key, out.packet_id, Discard::TooLarge),
        }
    }

    /// Drops a PUBLISH that is not written and gives its window slot to the next message,
    /// which the dispatcher writes once the current work is done.
    fn discard(
        &mut self,
        conn: ConnId,
        session_key: usize,
        packet_id: Option<PacketId>,
        why: Discard,
    ) {
        let Some(entry) = self.sessions.get_mut(session_key) else {
            return;
        };
        let mut released = Vec::new();
        entry.session.discard(packet_id, why, &mut released);
        self.work.defer(conn, released);
    }

    // ----- subscriptions ---------------------------------------------------------------------

    /// Adds a session's subscription; `barrier` is the SUBACK barrier this SUBSCRIBE waits
    /// behind, if any: its retained messages then wait for the SUBACK too.
    pub(super) fn subscribe(
        &mut self,
        filter: TopicFilter,
        sub: LocalSub,
        is_new: bool,
        barrier: Option<u64>,
        now: Instant,
    ) {
        if filter.share_group().is_some() {
            return self.join_shared(&filter, sub);
        }
        let Some(interest) = self.subs.add(&filter, sub, is_new) else {
            return;
        };
        if interest == Interest::First {
            self.broadcast_interest(&filter, true);
        }
        let send_retained = match sub.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => is_new,
            RetainHandling::DoNotSend => false,
        };
        match barrier {
            _ if !send_retained => {}
            Some(token) => self.defer_retained(token, &filter, sub),
            None => self.send_retained(&filter, sub, now),
        }
    }

    pub(super) fn unsubscribe(&mut self, session_key: usize, filter: &TopicFilter) {
        if filter.share_group().is_some() {
            return self.leave_shared(session_key, filter);
        }
        if self.subs.remove(session_key, filter) == Interest::Last {
            self.broadcast_interest(filter, false);
        }
    }

    fn broadcast_interest(&mut self, filter: &TopicFilter, add: bool) {
        let _: Held = self.broadcast(|| MeshMsg::Interest {
            filter: filter.clone(),
            add,
        });
    }

    /// Retained messages matching a new subscription go out with RETAIN=1 [MQTT-3.3.1-6].
    pub(super) fn send_retained(&mut self, filter: &TopicFilter, sub: LocalSub, now: Instant) {
        for msg in self.retained.matching(filter, now) {
            let offer = Offer {
                qos: msg.qos.min(sub.options.qos),
                retain: true,
                group: None,
            };
            let msg = if sub.id == 0 {
                msg
            } else {
                msg.with_subscription_ids(&[sub.id])
            };
            self.conns.begin_message();
            let _: Held = self.deliver_to(sub.session, &msg, offer, now);
        }
    }
}

/// The one offer a session gets for all its subscriptions matching `msg` (`group`, sorted by
/// session, all of one session): the highest QoS, capped by the message's; RETAIN as
/// published if any subscription asks; Subscription Identifiers of all of them in `ids`.
/// `None` for No Local [MQTT-3.8.3-3]: not back to the publishing session.
fn merge_subscriptions<'a>(
    group: &[LocalSub],
    msg: &Message,
    origin: Option<usize>,
    ids: &mut Vec<u32>,
) -> Option<Offer<'a>> {
    let first = group.first()?;
    let mut qos = first.options.qos;
    let mut retain_as_published = false;
    let mut no_local = true;
    ids.clear();
    for sub in group {
        qos = qos.max(sub.options.qos);
        retain_as_published |= sub.options.retain_as_published;
        no_local &= sub.options.no_local;
        if sub.id != 0 {
            ids.push(sub.id);
        }
    }
    if no_local && origin == Some(first.session) {
        return None;
    }
    Some(Offer {
        qos: msg.qos.min(qos),
        // [MQTT-3.3.1-9] / 5.0 Retain As Published.
        retain: msg.retain && retain_as_published,
        group: None,
    })
}
