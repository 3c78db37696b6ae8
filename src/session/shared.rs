//! The session's side of shared subscriptions (`$share/{group}/{filter}`, section 4.8.2): how
//! readily it takes another message (the shard gives each message to the readiest member),
//! and handing back, when the session ends, the messages a group gave it that the client
//! never got.

use super::{Queued, Session, Stage};
use crate::protocol::{QoS, TopicFilter};
use crate::session::Message;

/// How readily a session takes one more message now, worst first. A shared subscription group
/// gives each message to a member of the best readiness it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Readiness {
    /// No client connected: a QoS 1/2 message waits in the session until it returns.
    Offline,
    /// Connected but not keeping up: its outbound buffer is over the limit, or messages
    /// already wait behind its full in-flight window.
    Stalled,
    /// Keeping up, but its in-flight window is full: the message would wait first in line.
    Busy,
    /// The message would be written at once.
    Ready,
}

impl Session {
    /// How readily this session takes a message delivered at `qos` now.
    pub fn readiness(&self, qos: QoS) -> Readiness {
        if !self.connected {
            Readiness::Offline
        } else if !self.writable {
            Readiness::Stalled
        } else if qos == QoS::AtMostOnce {
            Readiness::Ready
        } else if !self.queue.is_empty() {
            Readiness::Stalled
        } else if self.inflight.len() < self.window {
            Readiness::Ready
        } else {
            Readiness::Busy
        }
    }

    /// The session is ending: takes out, oldest first, every message a shared subscription
    /// group gave it that the client does not have, with its group, so that the group can
    /// give it to another member. That is each queued message (never sent) and each QoS 1
    /// PUBLISH not acknowledged (section 4.8.2: the server SHOULD send it to another member).
    /// A QoS 2 PUBLISH not acknowledged must go to nobody else [MQTT-4.8.2-5]: it stays and
    /// is counted in the returned number. The copies keep the QoS and retain flag this
    /// member got; Subscription Identifiers are this member's, so they are taken off.
    pub fn take_undelivered_shared(&mut self, out: &mut Vec<(TopicFilter, Message)>) -> u64 {
        let mut lost = 0;
        self.inflight.retain_mut(|entry| {
            let (Stage::Published(msg), Some(group)) = (&entry.stage, &entry.group) else {
                return true;
            };
            if msg.qos == QoS::ExactlyOnce {
                lost += 1;
                return true;
            }
            out.push((group.clone(), msg.without_subscription_ids()));
            false
        });
        let queued = std::mem::take(&mut self.queue);
        for Queued { n, msg, group } in queued {
            match group {
                Some(group) => {
                    self.queued_bytes -= msg.queued_size();
                    out.push((group, msg.without_subscription_ids()));
                }
                None => self.queue.push_back(Queued { n, msg, group }),
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Connect, MqttString, Properties, PropertyValues, ProtocolVersion};
    use crate::session::{Delivery, Limits};
    use bytes::Bytes;

    fn session(receive_maximum: u16) -> Session {
        let connect = Connect {
            bridge: false,
            version: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 0,
            client_id: MqttString::try_from("m").expect("valid id"),
            will: None,
            username: None,
            password: None,
            properties: Properties::from(PropertyValues {
                receive_maximum: Some(receive_maximum),
                ..PropertyValues::default()
            }),
        };
        Session::new("m".into(), &connect, Limits::default())
    }

    fn message(payload: &'static [u8], qos: QoS) -> Message {
        Message {
            topic: crate::protocol::TopicName::try_from("w/1").expect("valid topic"),
            payload: Bytes::from_static(payload),
            qos,
            retain: false,
            properties: None,
            expires_at: None,
            received_at: None,
        }
    }

    fn group() -> TopicFilter {
        TopicFilter::try_from("$share/g/w/+").expect("valid filter")
    }

    #[test]
    fn readiness_follows_connection_window_queue_and_writability() {
        let mut s = session(1);
        assert_eq!(s.readiness(QoS::AtLeastOnce), Readiness::Ready);
        let msg = message(b"1", QoS::AtLeastOnce);
        assert!(matches!(
            s.deliver(&msg, QoS::AtLeastOnce, false),
            Delivery::Send { .. }
        ));
        assert_eq!(
            s.readiness(QoS::AtLeastOnce),
            Readiness::Busy,
            "window full"
        );
        assert_eq!(s.deliver(&msg, QoS::AtLeastOnce, false), Delivery::Queued);
        assert_eq!(s.readiness(QoS::AtLeastOnce), Readiness::Stalled, "a queue");
        assert_eq!(
            s.readiness(QoS::AtMostOnce),
            Readiness::Ready,
            "QoS 0 needs no window"
        );
        s.set_writable(false, &mut Vec::new());
        assert_eq!(s.readiness(QoS::AtMostOnce), Readiness::Stalled);
        s.detach(false);
        assert_eq!(s.readiness(QoS::AtMostOnce), Readiness::Offline);
    }

    #[test]
    fn an_ending_session_gives_back_queued_and_unacknowledged_qos1_shared_messages_in_order() {
        // 4.8.2: QoS 1 SHOULD go to another member; a QoS 2 PUBLISH in flight MUST NOT
        // [MQTT-4.8.2-5]; messages from ordinary subscriptions are not the group's.
        let mut s = session(2);
        let g = group();
        let deliver = |s: &mut Session, payload, qos, group: Option<&TopicFilter>| {
            s.deliver_via(&message(payload, qos), qos, false, group)
        };
        assert!(matches!(
            deliver(&mut s, b"q1-sent", QoS::AtLeastOnce, Some(&g)),
            Delivery::Send { .. }
        ));
        assert!(matches!(
            deliver(&mut s, b"q2-sent", QoS::ExactlyOnce, Some(&g)),
            Delivery::Send { .. }
        ));
        for (payload, qos, via) in [
            (&b"q1-queued"[..], QoS::AtLeastOnce, Some(&g)),
            (b"plain", QoS::AtLeastOnce, None),
            (b"q2-queued", QoS::ExactlyOnce, Some(&g)),
        ] {
            assert_eq!(deliver(&mut s, payload, qos, via), Delivery::Queued);
        }
        let mut out = Vec::new();
        let lost = s.take_undelivered_shared(&mut out);
        let payloads: Vec<&[u8]> = out.iter().map(|(_, m)| &m.payload[..]).collect();
        assert_eq!(
            payloads,
            [&b"q1-sent"[..], b"q1-queued", b"q2-queued"],
            "oldest first"
        );
        assert!(out.iter().all(|(f, _)| *f == g));
        assert_eq!(lost, 1, "the QoS 2 PUBLISH in flight");
        assert_eq!((s.inflight_len(), s.queued_len()), (1, 1));
    }

    #[test]
    fn a_given_back_message_loses_the_members_subscription_identifier() {
        let mut s = session(1);
        let tagged = message(b"x", QoS::AtLeastOnce).with_subscription_ids(&[7]);
        s.deliver_via(&tagged, QoS::AtLeastOnce, false, Some(&group()));
        let mut out = Vec::new();
        s.take_undelivered_shared(&mut out);
        let ids = out
            .first()
            .and_then(|(_, m)| m.properties.as_ref())
            .map(|p| p.subscription_identifiers.clone());
        assert!(ids.as_ref().is_none_or(Vec::is_empty), "{ids:?}");
    }
}
