//! SUBSCRIBE and UNSUBSCRIBE: what each filter is granted, the SUBACK / UNSUBACK that
//! answers, the trie changes the shard applies, and the subscriptions the session keeps.

use super::{Action, Session};
use crate::protocol::{
    MqttString, Packet, Properties, ProtocolVersion, QoS, Reason, ReasonCode, SubAck, Subscribe,
    SubscriptionOptions, TopicFilter, UnsubAck, Unsubscribe,
};

// A Reason String of a failure acknowledgement: a constant, so building one never allocates.
pub(super) const FILTER_TOO_DEEP: MqttString =
    MqttString::from_static("a topic filter has more levels than this server supports (128)");
const _: () = assert!(
    crate::trie::MAX_LEVELS == 128,
    "FILTER_TOO_DEEP names the limit"
);

impl Session {
    /// The subscription options granted for `filter`, if subscribed.
    pub fn subscription(&self, filter: &TopicFilter) -> Option<SubscriptionOptions> {
        self.subscriptions.get(filter).map(|&(options, _)| options)
    }

    pub(super) fn on_subscribe(&mut self, subscribe: Subscribe, out: &mut Vec<Action>) {
        // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
        let shared_no_local = subscribe
            .subscriptions
            .iter()
            .any(|s| s.options.no_local && s.filter.share_group().is_some());
        if shared_no_local {
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "No Local on a shared subscription [MQTT-3.8.3-4]",
            );
            return self.protocol_error(reason, out);
        }
        // SUBSCRIBE carries at most one Subscription Identifier, for all its filters.
        let id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied()
            .unwrap_or(0);
        let mut reasons = Vec::with_capacity(subscribe.subscriptions.len());
        let mut granted = Vec::with_capacity(subscribe.subscriptions.len());
        for mut sub in subscribe.subscriptions {
            if self.bridge && sub.filter.share_group().is_none() {
                // A 3.1.1 bridge cannot ask for these; Mosquitto gives them to bridges too.
                sub.options.no_local = true;
                sub.options.retain_as_published = true;
            }
            let reason = self.grant(&sub.filter, sub.options.qos);
            reasons.push(reason);
            if !reason.is_error() {
                let is_new = self
                    .subscriptions
                    .insert(sub.filter.clone(), (sub.options, id))
                    .is_none();
                granted.push(Action::Subscribe {
                    filter: sub.filter,
                    options: sub.options,
                    is_new,
                    id,
                });
            }
        }
        let too_deep = reasons.contains(&ReasonCode::TopicFilterInvalid);
        let properties = Properties::reason_string(too_deep.then_some(FILTER_TOO_DEEP));
        out.push(Action::Send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties,
            reasons,
        })));
        out.append(&mut granted);
    }

    /// The SUBACK reason for one filter: the requested QoS is always granted (section 3.9.3)
    /// when the filter is one the trie and the ACL allow.
    fn grant(&self, filter: &TopicFilter, qos: QoS) -> ReasonCode {
        let v5 = self.version == ProtocolVersion::V5;
        if filter.levels().nth(crate::trie::MAX_LEVELS).is_some() {
            return if v5 {
                ReasonCode::TopicFilterInvalid
            } else {
                ReasonCode::UnspecifiedError
            };
        }
        // The ACL's subscribe check (`auth.acl_file`): 5.0 0x87 Not authorized, 3.1.1 0x80.
        if self
            .acl
            .as_ref()
            .is_some_and(|acl| !acl.can_subscribe(filter))
        {
            return if v5 {
                ReasonCode::NotAuthorized
            } else {
                ReasonCode::UnspecifiedError
            };
        }
        match qos {
            QoS::AtMostOnce => ReasonCode::GRANTED_QOS0,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    pub(super) fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe, out: &mut Vec<Action>) {
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if self.subscriptions.remove(&filter).is_some() {
                reasons.push(ReasonCode::Success);
                out.push(Action::Unsubscribe(filter));
            } else {
                reasons.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        if self.version != ProtocolVersion::V5 {
            reasons.clear();
        }
        out.push(Action::Send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reasons,
        })));
    }
}
