//! `BridgeSession`: the MQTT state of one bridge between the two brokers, sans-IO. Packets
//! from the remote broker and from the bridge's local session come in; what each side must
//! be sent goes out (`Sends`). It owns the packet ids of both directions: a message carried
//! out is acknowledged to the local session only once the remote acknowledged it, and one
//! carried in is acknowledged to the remote only once the local session did, so an outage
//! on either side loses nothing the other has not acknowledged.

use super::TopicRule;
use crate::protocol::encoded_len;
use crate::protocol::{
    ConnAck, Connect, Packet, PacketId, PacketType, Properties, ProtocolVersion, PubResp, Publish,
    QoS, ReasonCode, RetainHandling, Subscribe, Subscription, SubscriptionOptions, TopicFilter,
};
use hashbrown::{HashMap, HashSet};
use std::fmt;
use std::num::NonZeroU16;

/// Most messages the remote may have in flight towards us, at most (our 5.0 Receive Maximum
/// is this or the local Receive Maximum if lower; a remote that sends more is cut off).
pub const MAX_INBOUND: u16 = 256;

/// What to send each side after a packet.
#[derive(Debug, Default)]
pub struct Sends {
    pub remote: Vec<Packet>,
    pub local: Vec<Packet>,
    /// Remote filters the remote refused in its SUBACK (for the log; the link goes on, as
    /// Mosquitto's does).
    pub refused: Vec<(TopicFilter, ReasonCode)>,
}

/// Why the remote connection must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeError {
    /// CONNACK with this reason (3.1.1 return codes mapped as the codec maps them).
    Refused(ReasonCode),
    /// A packet the remote must not send to a client.
    Unexpected(PacketType),
    /// More QoS 1/2 messages in flight towards us than the Receive Maximum we announced.
    TooManyInFlight,
    /// Every remote packet id is in use (the remote acknowledges nothing).
    NoPacketId,
    /// The remote sent DISCONNECT.
    Disconnected(ReasonCode),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(code) => write!(f, "the remote refused the CONNECT: {code:?}"),
            Self::Unexpected(t) => write!(f, "the remote sent a {t:?}, which a server must not"),
            Self::TooManyInFlight => f.write_str(
                "the remote has more QoS 1/2 messages unacknowledged than our Receive Maximum",
            ),
            Self::NoPacketId => f.write_str("every packet id towards the remote is in use"),
            Self::Disconnected(code) => write!(f, "the remote sent DISCONNECT {code:?}"),
        }
    }
}

impl std::error::Error for BridgeError {}

/// A remote packet id in use.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// A PUBLISH carried out; `local` is its id in the local session (acknowledged when the
    /// remote acknowledges), `None` once the local side has been answered.
    Publish {
        local: Option<(PacketId, QoS)>,
        released: bool,
    },
    Subscribe,
}

/// A message carried in, by its local packet id.
#[derive(Debug, Clone, Copy)]
struct In {
    /// Its id at the remote; `None` once the remote connection it came on is gone.
    remote: Option<PacketId>,
    qos: QoS,
    released: bool,
}

/// The bridge's MQTT state across reconnects of either side.
#[derive(Debug)]
pub struct BridgeSession {
    rules: Vec<TopicRule>,
    version: ProtocolVersion,
    out: HashMap<u16, Out>,
    next_remote: u16,
    inbound: HashMap<u16, In>,
    next_local: u16,
    /// Remote QoS 2 ids PUBREC'd and awaiting PUBREL (the remote session's state).
    awaiting_rel: HashSet<u16>,
    /// The remote's 5.0 limits from CONNACK.
    remote_max_qos: QoS,
    remote_receive_maximum: u16,
    remote_max_packet: usize,
    /// Messages carried in at most in flight: no more than the local session takes from one
    /// client before it counts a Receive Maximum violation.
    max_inbound: u16,
    /// Messages not carried out because they are over the remote's Maximum Packet Size.
    pub dropped_too_large: u64,
}

/// The local SUBSCRIBE's id (inbound messages never use it).
const SUBSCRIBE_ID: PacketId = PacketId(NonZeroU16::MIN);

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap_or(SUBSCRIBE_ID)
}

/// The next id after `last` for which `used` is false, or `None` when all are.
fn next_free(last: &mut u16, used: impl Fn(u16) -> bool) -> Option<u16> {
    for _ in 0..u16::MAX {
        *last = last.checked_add(1).unwrap_or(1);
        if !used(*last) {
            return Some(*last);
        }
    }
    None
}

/// A PUBLISH's 5.0 properties as they cross to the other broker: what belongs to one
/// connection (Topic Alias, Subscription Identifiers) stays behind.
fn crossing(properties: &Properties) -> Properties {
    if properties.topic_alias.is_none() && properties.subscription_identifiers.is_empty() {
        return properties.clone();
    }
    let mut p = properties.clone();
    p.topic_alias = None;
    p.subscription_identifiers.clear();
    p
}

fn ack_for(qos: QoS, packet_id: PacketId) -> Option<Packet> {
    match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce => Some(Packet::PubAck(PubResp::new(packet_id))),
        QoS::ExactlyOnce => Some(Packet::PubRec(PubResp::new(packet_id))),
    }
}

impl BridgeSession {
    pub fn new(rules: Vec<TopicRule>, version: ProtocolVersion) -> Self {
        Self {
            rules,
            version,
            out: HashMap::new(),
            next_remote: 0,
            inbound: HashMap::new(),
            next_local: 1,
            awaiting_rel: HashSet::new(),
            remote_max_qos: QoS::ExactlyOnce,
            remote_receive_maximum: u16::MAX,
            remote_max_packet: usize::MAX,
            max_inbound: MAX_INBOUND,
            dropped_too_large: 0,
        }
    }

    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Limits what the remote may have in flight towards us to what the local session takes
    /// (its Receive Maximum, `mqtt.receive_maximum`), and `MAX_INBOUND`.
    pub fn limit_inbound(&mut self, local_receive_maximum: u16) {
        self.max_inbound = local_receive_maximum.clamp(1, MAX_INBOUND);
    }

    /// Our 5.0 Receive Maximum towards the remote.
    pub fn max_inbound(&self) -> u16 {
        self.max_inbound
    }

    /// How many messages the local session may have in flight to the bridge: the remote's
    /// Receive Maximum, so the bridge never holds more than the remote takes.
    pub fn local_window(&self) -> u16 {
        self.remote_receive_maximum
    }

    /// The largest packet the remote takes (its 5.0 Maximum Packet Size).
    pub fn remote_max_packet(&self) -> usize {
        self.remote_max_packet
    }

    /// The CONNECT of the bridge's local session: persistent (it queues for the remote
    /// while the remote is down, within the session bounds), no keep alive (it has no
    /// socket), at most the remote's window in flight.
    pub fn local_connect(&self, client_id: &str) -> Option<Connect> {
        let mut properties = Properties::default();
        properties.session_expiry_interval = Some(u32::MAX);
        properties.receive_maximum = Some(self.local_window().max(1));
        Some(Connect {
            bridge: false,
            version: ProtocolVersion::V5,
            clean_start: false,
            keep_alive: 0,
            client_id: client_id.try_into().ok()?,
            will: None,
            username: None,
            password: None,
            properties,
        })
    }

    /// Takes the remote's CONNACK. `Ok(true)`: the remote kept our session; then the
    /// PUBRELs it is owed go out again (`Sends::remote`).
    pub fn on_connack(&mut self, ack: &ConnAck, sends: &mut Sends) -> Result<bool, BridgeError> {
        if ack.reason != ReasonCode::Success {
            return Err(BridgeError::Refused(ack.reason));
        }
        let p = &ack.properties;
        self.remote_max_qos = match p.maximum_qos {
            Some(0) => QoS::AtMostOnce,
            Some(1) => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        self.remote_receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
        self.remote_max_packet = p.maximum_packet_size.map_or(usize::MAX, |m| m as usize);
        if !ack.session_present {
            // A fresh remote session owes nothing and is owed nothing.
            self.out.clear();
            self.awaiting_rel.clear();
            return Ok(false);
        }
        // [MQTT-4.4.0-1] PUBRELs again, in the order of their ids.
        let mut released: Vec<u16> = (self.out.iter())
            .filter(|(_, o)| matches!(o, Out::Publish { released: true, .. }))
            .map(|(r, _)| *r)
            .collect();
        released.sort_unstable();
        for r in released {
            sends.remote.push(Packet::PubRel(PubResp::new(id(r))));
        }
        Ok(true)
    }

    /// The SUBSCRIBE for the rules that carry messages in: No Local (5.0, [MQTT-3.8.3-3]) so
    /// what the bridge publishes there never comes back, Retain As Published so a retained
    /// message stays retained here. `None` when no rule carries in.
    pub fn remote_subscribe(&mut self) -> Result<Option<Packet>, BridgeError> {
        let subscriptions: Vec<Subscription> = self
            .rules
            .iter()
            .filter(|r| r.direction.carries_in())
            .map(|r| subscription(r.remote_filter(), r.qos))
            .collect();
        if subscriptions.is_empty() {
            return Ok(None);
        }
        let out = &self.out;
        let r = next_free(&mut self.next_remote, |n| out.contains_key(&n))
            .ok_or(BridgeError::NoPacketId)?;
        self.out.insert(r, Out::Subscribe);
        Ok(Some(Packet::Subscribe(Subscribe {
            packet_id: id(r),
            properties: Properties::default(),
            subscriptions,
        })))
    }

    /// The local session's SUBSCRIBE for the rules that carry messages out (No Local: what
    /// the bridge brings in is not sent back; retained messages only for a new subscription,
    /// so a reconnect does not send them all again).
    pub fn local_subscribe(&self) -> Option<Packet> {
        let subscriptions: Vec<Subscription> = self
            .rules
            .iter()
            .filter(|r| r.direction.carries_out())
            .map(|r| {
                let mut s = subscription(r.local_filter(), r.qos);
                s.options.retain_handling = RetainHandling::SendAtSubscribeIfNew;
                s
            })
            .collect();
        (!subscriptions.is_empty()).then(|| {
            Packet::Subscribe(Subscribe {
                packet_id: SUBSCRIBE_ID,
                properties: Properties::default(),
                subscriptions,
            })
        })
    }

    /// The remote connection is gone. What it had not acknowledged is still unacknowledged
    /// in the local session, which sends it again when the bridge's local side reopens;
    /// only PUBRELs (the remote has the message) are kept, for a remote that keeps the
    /// session.
    pub fn remote_down(&mut self) {
        self.out
            .retain(|_, o| matches!(o, Out::Publish { released: true, .. }));
        for entry in self.inbound.values_mut() {
            entry.remote = None;
        }
    }

    /// The local side reopened (its session resumed): PUBRELs for the QoS 2 messages the
    /// bridge had handed it, whose exchange the closed connection cut short.
    pub fn local_reopened(&mut self, sends: &mut Sends) {
        let mut ids: Vec<(u16, In)> = self.inbound.drain().collect();
        ids.sort_unstable_by_key(|(l, _)| *l);
        for (l, entry) in ids {
            if entry.qos == QoS::ExactlyOnce {
                sends.local.push(Packet::PubRel(PubResp::new(id(l))));
            }
        }
    }

    /// A packet from the remote broker.
    pub fn on_remote(&mut self, packet: Packet, sends: &mut Sends) -> Result<(), BridgeError> {
        match packet {
            Packet::Publish(p) => self.carry_in(p, sends),
            Packet::PubAck(r) => {
                if let Some(Out::Publish { local, .. }) = self.out.remove(&r.packet_id.get()) {
                    sends.local.extend(local.and_then(|(l, q)| ack_for(q, l)));
                }
                Ok(())
            }
            Packet::PubRec(r) => {
                let key = r.packet_id.get();
                if let Some(Out::Publish { local, released }) = self.out.get_mut(&key) {
                    *released = true;
                    sends
                        .local
                        .extend(local.take().and_then(|(l, q)| ack_for(q, l)));
                }
                // PUBREL even for an id we do not know: the remote must be able to finish.
                sends.remote.push(Packet::PubRel(PubResp::new(r.packet_id)));
                Ok(())
            }
            Packet::PubComp(r) => {
                self.out.remove(&r.packet_id.get());
                Ok(())
            }
            Packet::PubRel(r) => {
                self.awaiting_rel.remove(&r.packet_id.get());
                sends
                    .remote
                    .push(Packet::PubComp(PubResp::new(r.packet_id)));
                Ok(())
            }
            Packet::SubAck(s) => {
                if matches!(self.out.remove(&s.packet_id.get()), Some(Out::Subscribe)) {
                    let filters = self.rules.iter().filter(|r| r.direction.carries_in());
                    let refused = filters.zip(&s.reasons).filter(|(_, code)| code.is_error());
                    sends
                        .refused
                        .extend(refused.map(|(rule, code)| (rule.remote_filter().clone(), *code)));
                }
                Ok(())
            }
            Packet::UnsubAck(_) | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => Err(BridgeError::Disconnected(d.reason)),
            other => Err(BridgeError::Unexpected(other.packet_type())),
        }
    }

    fn carry_in(&mut self, p: Publish, sends: &mut Sends) -> Result<(), BridgeError> {
        let topic = self.rules.iter().find_map(|r| r.to_local(&p.topic));
        let Some(r) = p.packet_id else {
            if let Some(topic) = topic {
                sends
                    .local
                    .push(Packet::Publish(local_publish(&p, topic, None)));
            }
            return Ok(());
        };
        let known_qos2 = p.qos == QoS::ExactlyOnce
            && (self.awaiting_rel.contains(&r.get())
                || (p.dup && self.inbound.values().any(|e| e.remote == Some(r))));
        let Some(topic) = topic.filter(|_| !known_qos2) else {
            // Not ours to carry, or a QoS 2 message we have already: answered, not routed
            // again.
            if p.qos == QoS::ExactlyOnce {
                self.awaiting_rel.insert(r.get());
            }
            sends.remote.extend(ack_for(p.qos, r));
            return Ok(());
        };
        if self.inbound.len() >= usize::from(self.max_inbound) {
            return Err(BridgeError::TooManyInFlight);
        }
        let inbound = &self.inbound;
        let l = next_free(&mut self.next_local, |n| n == 1 || inbound.contains_key(&n))
            .ok_or(BridgeError::TooManyInFlight)?;
        self.inbound.insert(
            l,
            In {
                remote: Some(r),
                qos: p.qos,
                released: false,
            },
        );
        sends
            .local
            .push(Packet::Publish(local_publish(&p, topic, Some(id(l)))));
        Ok(())
    }

    /// A packet the bridge's local session sent to it.
    pub fn on_local(&mut self, packet: Packet, sends: &mut Sends) -> Result<(), BridgeError> {
        match packet {
            Packet::Publish(p) => return self.carry_out(p, sends),
            Packet::PubAck(a) => {
                if let Some(entry) = self.inbound.remove(&a.packet_id.get()) {
                    sends
                        .remote
                        .extend(entry.remote.and_then(|r| ack_for(QoS::AtLeastOnce, r)));
                }
            }
            Packet::PubRec(a) => {
                sends.local.push(Packet::PubRel(PubResp::new(a.packet_id)));
                if let Some(entry) = self.inbound.get_mut(&a.packet_id.get())
                    && !entry.released
                {
                    entry.released = true;
                    if let Some(r) = entry.remote.take() {
                        self.awaiting_rel.insert(r.get());
                        sends.remote.push(Packet::PubRec(PubResp::new(r)));
                    }
                }
            }
            Packet::PubComp(a) => {
                self.inbound.remove(&a.packet_id.get());
            }
            // The local session releases a QoS 2 message it gave us: we have passed it on.
            Packet::PubRel(a) => sends.local.push(Packet::PubComp(PubResp::new(a.packet_id))),
            _ => {}
        }
        Ok(())
    }

    fn carry_out(&mut self, p: Publish, sends: &mut Sends) -> Result<(), BridgeError> {
        let carried = self
            .rules
            .iter()
            .find_map(|r| r.to_remote(&p.topic).map(|t| (t, r.qos)));
        let local = p.packet_id.map(|l| (l, p.qos));
        let Some((topic, rule_qos)) = carried else {
            sends.local.extend(local.and_then(|(l, q)| ack_for(q, l)));
            return Ok(());
        };
        let qos = p.qos.min(rule_qos).min(self.remote_max_qos);
        let mut publish = Publish {
            dup: false,
            qos,
            retain: p.retain,
            topic,
            packet_id: None,
            properties: crossing(&p.properties),
            payload: p.payload,
        };
        if qos != QoS::AtMostOnce {
            let out = &self.out;
            let r = next_free(&mut self.next_remote, |n| out.contains_key(&n))
                .ok_or(BridgeError::NoPacketId)?;
            publish.packet_id = Some(id(r));
        }
        let packet = Packet::Publish(publish);
        let too_large = encoded_len(&packet, self.version) > self.remote_max_packet;
        match (too_large, packet_id_of(&packet)) {
            (false, Some(r)) => {
                self.out.insert(
                    r.get(),
                    Out::Publish {
                        local,
                        released: false,
                    },
                );
            }
            // The remote will not acknowledge it (QoS 0), or must not get it (over its
            // Maximum Packet Size, [MQTT-3.1.2-24]): the local side is answered now.
            _ => sends.local.extend(local.and_then(|(l, q)| ack_for(q, l))),
        }
        if too_large {
            self.dropped_too_large += 1;
        } else {
            sends.remote.push(packet);
        }
        Ok(())
    }

    /// Messages carried out and not yet acknowledged by the remote (for the metrics).
    pub fn in_flight_out(&self) -> usize {
        self.out.len()
    }
}

fn packet_id_of(packet: &Packet) -> Option<PacketId> {
    match packet {
        Packet::Publish(p) => p.packet_id,
        _ => None,
    }
}

fn subscription(filter: &TopicFilter, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.clone(),
        options: SubscriptionOptions {
            qos,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendAtSubscribe,
        },
    }
}

fn local_publish(
    p: &Publish,
    topic: crate::protocol::TopicName,
    packet_id: Option<PacketId>,
) -> Publish {
    Publish {
        dup: false,
        qos: p.qos,
        retain: p.retain,
        topic,
        packet_id,
        properties: crossing(&p.properties),
        payload: p.payload.clone(),
    }
}

#[cfg(test)]
mod tests;
