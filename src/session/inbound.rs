//! The client's PUBLISHes: topic alias resolution (section 3.3.2.3.4), the checks a PUBLISH
//! must pass, its acknowledgement and routing by QoS, inbound QoS 2 state up to PUBREL
//! (method B of [MQTT-4.3.3-2]), and the Payload Format Indicator check.

use super::{Action, Message, Session};
use crate::protocol::{
    MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp, Publish, QoS, Reason,
    ReasonCode,
};

// A Reason String of a failure acknowledgement: a constant, so building one never allocates.
const AWAITS_NO_PUBREL: MqttString =
    MqttString::from_static("no QoS 2 PUBLISH with this packet identifier awaits PUBREL");

impl Session {
    pub(super) fn on_publish(&mut self, mut publish: Publish, out: &mut Vec<Action>) {
        if let Err(reason) = self.resolve_topic_alias(&mut publish) {
            return self.protocol_error(reason, out);
        }
        // [MQTT-3.3.4-6] Subscription Identifiers only travel from server to client.
        if !publish.properties.subscription_identifiers.is_empty() {
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "a client PUBLISH with a Subscription Identifier [MQTT-3.3.4-6]",
            );
            return self.protocol_error(reason, out);
        }
        // [MQTT-3.2.2-14] a 5.0 client told Retain Available 0 must not send RETAIN 1;
        // 3.1.1 clients cannot be told, so theirs is routed but not stored.
        if publish.retain && !self.limits.retain_available && self.version == ProtocolVersion::V5 {
            let reason = Reason::explained(
                ReasonCode::RetainNotSupported,
                "RETAIN 1 after CONNACK said Retain Available 0 [MQTT-3.2.2-14]",
            );
            return self.protocol_error(reason, out);
        }
        let well_formed = payload_matches_format(&publish.properties, &publish.payload);
        // The ACL's write check (`auth.acl_file`). 5.0 can refuse the one message with 0x87;
        // 3.1.1 has no such code, so its message is acknowledged and dropped, as Mosquitto does.
        let authorized = self
            .acl
            .as_ref()
            .is_none_or(|acl| acl.can_publish(&publish.topic));
        let v5 = self.version == ProtocolVersion::V5;
        match (publish.qos, publish.packet_id) {
            // 5.0 section 3.3.2.3.2: a receiver that validates the Payload Format Indicator
            // answers a mismatch with 0x99; QoS 0 has no acknowledgement, so DISCONNECT.
            (QoS::AtMostOnce, _) if !well_formed => {
                let reason = Reason::explained(
                    ReasonCode::PayloadFormatInvalid,
                    "a QoS 0 payload that is not UTF-8 despite Payload Format Indicator 1",
                );
                self.protocol_error(reason, out);
            }
            (QoS::AtMostOnce, _) if !authorized => {}
            (QoS::AtMostOnce, _) => out.push(Action::Route(Message::from_publish(publish))),
            // A PUBACK >= 0x80 refuses this message only (section 4.13.2): nothing is routed.
            (QoS::AtLeastOnce, Some(id)) if !well_formed => {
                let refused = refusal(id, ReasonCode::PayloadFormatInvalid);
                out.push(Action::Send(Packet::PubAck(refused)));
            }
            (QoS::AtLeastOnce, Some(id)) if !authorized => {
                let ack = match v5 {
                    true => refusal(id, ReasonCode::NotAuthorized),
                    false => PubResp::new(id),
                };
                out.push(Action::Send(Packet::PubAck(ack)));
            }
            // The acknowledgement goes first: a publisher subscribed to its own topic sees its
            // PUBACK before its message comes back.
            (QoS::AtLeastOnce, Some(id)) => {
                out.push(Action::Send(Packet::PubAck(PubResp::new(id))));
                out.push(Action::Route(Message::from_publish(publish)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let refused = match (well_formed, authorized) {
                    (false, _) => Some(ReasonCode::PayloadFormatInvalid),
                    (true, false) if v5 => Some(ReasonCode::NotAuthorized),
                    _ => None,
                };
                self.on_publish_qos2(id, publish, (refused, authorized), out)
            }
            (_, None) => self.protocol_error(
                Reason::explained(
                    ReasonCode::MalformedPacket,
                    "a QoS 1 or 2 PUBLISH without a packet identifier",
                ),
                out,
            ),
        }
    }

    /// Replaces a 5.0 Topic Alias by its topic, or records a new mapping (section 3.3.2.3.4).
    fn resolve_topic_alias(&mut self, publish: &mut Publish) -> Result<(), Reason> {
        let Some(alias) = publish.properties.topic_alias else {
            return if publish.topic.is_empty() {
                Err(Reason::explained(
                    ReasonCode::ProtocolError,
                    "a PUBLISH with neither a topic name nor a topic alias [MQTT-3.3.2-1]",
                ))
            } else {
                Ok(())
            };
        };
        // [MQTT-3.3.2-8] / [MQTT-3.3.2-9] 0 and values above our maximum are invalid.
        let slot = usize::from(alias);
        let maximum = self.limits.topic_alias_maximum;
        if slot == 0 || slot > usize::from(maximum) {
            let text = format!(
                "topic alias {alias} is outside 1..={maximum}, the Topic Alias Maximum \
                 [MQTT-3.3.2-9]"
            );
            return Err(Reason::detailed(ReasonCode::TopicAliasInvalid, text));
        }
        if self.topic_aliases.len() < slot {
            self.topic_aliases
                .resize(usize::from(self.limits.topic_alias_maximum), None);
        }
        let entry = &mut self.topic_aliases[slot - 1];
        if publish.topic.is_empty() {
            // Using an alias that has no mapping yet is a Protocol Error (section 3.3.2.3.4).
            publish.topic = entry.clone().ok_or_else(|| {
                let text = format!("topic alias {alias} has no topic on this connection yet");
                Reason::detailed(ReasonCode::ProtocolError, text)
            })?;
        } else {
            *entry = Some(publish.topic.clone());
        }
        Ok(())
    }

    /// Method B of [MQTT-4.3.3-2]: store the id, route once, answer PUBREC; a duplicate before
    /// PUBREL is answered again but not routed again. A new message `refused` (its payload
    /// does not match its Payload Format Indicator, or a 5.0 client may not publish there)
    /// gets a PUBREC with that code instead; one not `authorized` for a 3.1.1 client runs the
    /// exchange but is not routed.
    fn on_publish_qos2(
        &mut self,
        id: PacketId,
        publish: Publish,
        (refused, authorized): (Option<ReasonCode>, bool),
        out: &mut Vec<Action>,
    ) {
        if !self.inbound_qos2.contains(&id.get()) {
            if let Some(code) = refused {
                // A PUBREC >= 0x80 ends the exchange (section 4.3.3): the id is not kept and
                // no PUBREL follows.
                out.push(Action::Send(Packet::PubRec(refusal(id, code))));
                return;
            }
            let maximum = self.limits.max_inbound_qos2;
            if self.inbound_qos2.len() >= usize::from(maximum) {
                // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISHes than Receive Maximum.
                let text = format!(
                    "more than {maximum} QoS 2 PUBLISHes await PUBREL, the Receive Maximum"
                );
                return self.protocol_error(
                    Reason::detailed(ReasonCode::ReceiveMaximumExceeded, text),
                    out,
                );
            }
            self.inbound_qos2.insert(id.get());
            self.log_in_qos2(id, true);
            out.push(Action::Send(Packet::PubRec(PubResp::new(id))));
            if authorized {
                out.push(Action::Route(Message::from_publish(publish)));
            }
            return;
        }
        out.push(Action::Send(Packet::PubRec(PubResp::new(id))));
    }

    pub(super) fn on_pubrel(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        let known = self.inbound_qos2.remove(&id.get());
        if known {
            self.log_in_qos2(id, false);
        }
        let mut pubcomp = PubResp::new(id);
        if !known && self.version == ProtocolVersion::V5 {
            pubcomp.reason = ReasonCode::PacketIdentifierNotFound;
            pubcomp.properties = Properties::reason_string(Some(AWAITS_NO_PUBREL));
        }
        out.push(Action::Send(Packet::PubComp(pubcomp)));
    }
}

/// Whether a payload is what its 5.0 Payload Format Indicator says: with indicator 1 it must
/// be well-formed UTF-8 (sections 3.3.2.3.2 and 3.1.3.2.3). Validation is optional in the
/// spec; it costs one pass over the payload, only when the indicator is 1, and no allocation.
pub fn payload_matches_format(properties: &Properties, payload: &[u8]) -> bool {
    properties.payload_format_indicator != Some(1) || std::str::from_utf8(payload).is_ok()
}

/// A PUBACK / PUBREC that refuses one message with `code` (0x99 payload format, 0x87 not
/// authorized).
fn refusal(id: PacketId, code: ReasonCode) -> PubResp {
    let mut resp = PubResp::new(id);
    resp.reason = code;
    resp
}
