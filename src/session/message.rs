//! `Message`: one routed application message, shared by every subscriber it fans out to.

use super::store::PayloadStore;
use crate::protocol::{LastWill, Properties, Publish, QoS, TopicName};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One application message on its way from a publisher to subscribers (local or on another
/// shard). Cloning shares the topic and payload `Bytes` (a refcount, no copy). `Properties` is
/// a large struct, so a message holds it behind an `Arc` only when there are any: 3.1.1
/// traffic and property-less 5.0 traffic cost no allocation, and a clone stays small.
/// The memory a queued message takes besides its topic and payload: the `Message` and its
/// queue slot.
pub const QUEUED_OVERHEAD: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5.0 properties forwarded to subscribers (topic alias and subscription identifiers
    /// are per connection and never stored here).
    pub properties: Option<Arc<Properties>>,
    /// When a 5.0 Message Expiry Interval runs out; stamped by the shard on arrival.
    pub expires_at: Option<Instant>,
    /// When the read that brought the PUBLISH began, for the broker's latency histogram;
    /// `None` for wills, stored retained copies and `$SYS`.
    pub received_at: Option<Instant>,
}

impl Message {
    /// Takes the topic, payload and forwardable properties of an inbound PUBLISH.
    pub fn from_publish(publish: Publish) -> Self {
        let mut properties = publish.properties;
        // Writing through `Properties` allocates its values: touch them only when present.
        if !properties.is_empty() {
            properties.topic_alias = None;
            properties.subscription_identifiers.clear();
        }
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: shared(properties),
            expires_at: None,
            received_at: None,
        }
    }

    /// The will of a CONNECT as the message it becomes when published.
    pub fn from_will(will: LastWill) -> Self {
        let mut properties = will.properties;
        // The Will Delay Interval governs when the will is sent; it is not a PUBLISH property.
        if properties.will_delay_interval.is_some() {
            properties.will_delay_interval = None;
        }
        Self {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: shared(properties),
            expires_at: None,
            received_at: None,
        }
    }

    /// A message the broker itself publishes (`$SYS` topics, a bridge's state): retained,
    /// QoS 0, no properties.
    pub fn broker_retained(topic: TopicName, payload: Bytes) -> Self {
        Self {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: true,
            properties: None,
            expires_at: None,
            received_at: None,
        }
    }

    /// Starts the Message Expiry Interval clock, if the message has one.
    pub fn stamp_expiry(&mut self, now: Instant) {
        let interval = self
            .properties
            .as_ref()
            .and_then(|p| p.message_expiry_interval);
        self.expires_at = interval.map(|secs| now + Duration::from_secs(u64::from(secs)));
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The copy to send after waiting: its Message Expiry Interval lowered by the time spent
    /// in the broker [MQTT-3.3.2-6]. `None` when the message has no expiry (send it as is).
    pub fn with_remaining_expiry(&self, now: Instant) -> Option<Self> {
        let at = self.expires_at?;
        let remaining = at.saturating_duration_since(now);
        // Round up so an unexpired message never goes out with an interval of 0.
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        let mut properties = self.properties.as_deref().cloned().unwrap_or_default();
        properties.message_expiry_interval = Some(u32::try_from(secs).unwrap_or(u32::MAX));
        let mut out = self.clone();
        out.properties = Some(Arc::new(properties));
        Some(out)
    }

    /// The copy for a subscriber whose matching subscriptions carry Subscription
    /// Identifiers: the PUBLISH lists them [MQTT-3.3.4-3].
    pub fn with_subscription_ids(&self, ids: &[u32]) -> Self {
        let mut properties = self.properties.as_deref().cloned().unwrap_or_default();
        properties.subscription_identifiers = ids.to_vec();
        let mut out = self.clone();
        out.properties = Some(Arc::new(properties));
        out
    }

    /// The copy without Subscription Identifiers (they belong to one subscriber); the
    /// message itself when it has none.
    pub fn without_subscription_ids(&self) -> Self {
        let tagged = self
            .properties
            .as_ref()
            .is_some_and(|p| !p.subscription_identifiers.is_empty());
        if !tagged {
            return self.clone();
        }
        let mut properties = self.properties.as_deref().cloned().unwrap_or_default();
        properties.subscription_identifiers.clear();
        let mut out = self.clone();
        out.properties = shared(properties);
        out
    }

    /// The bytes this message pins in memory, for the queue's byte bound.
    pub fn size(&self) -> usize {
        self.topic.as_bytes().len() + self.payload.len()
    }

    /// What a queued message costs the broker: its bytes plus the queue entry itself, so that
    /// a byte bound of small messages bounds the memory they take.
    pub fn queued_size(&self) -> usize {
        self.size() + QUEUED_OVERHEAD
    }

    /// A copy to keep for later (a session queue): topic and payload that pin none of the
    /// read buffer they arrived in (received bytes are slices of it, and one message kept
    /// for minutes would otherwise keep that whole buffer alive). The payload goes into the
    /// session's `store`.
    pub(super) fn into_stored(mut self, store: &mut PayloadStore) -> Self {
        if !self.topic.is_inline()
            && let Ok(topic) = TopicName::try_from(self.topic.as_str())
        {
            self.topic = topic;
        }
        self.payload = store.keep(&self.payload);
        self
    }

    /// The copy a subscriber gets: QoS lowered to `qos`, retain flag set to `retain`.
    pub fn for_subscriber(&self, qos: QoS, retain: bool) -> Self {
        let mut out = self.clone();
        out.qos = qos;
        out.retain = retain;
        out
    }

    /// The PUBLISH packet that carries this message to one subscriber.
    pub fn to_publish(&self, packet_id: Option<crate::protocol::PacketId>, dup: bool) -> Publish {
        Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.clone(),
            packet_id,
            properties: self.properties.as_deref().cloned().unwrap_or_default(),
            payload: self.payload.clone(),
        }
    }
}

fn shared(properties: Properties) -> Option<Arc<Properties>> {
    (!properties.is_empty()).then(|| Arc::new(properties))
}
