//! `Message`: one routed application message, shared by every subscriber it fans out to.

use crate::protocol::{LastWill, Properties, Publish, QoS, TopicName};
use bytes::Bytes;
use std::sync::Arc;

/// One application message on its way from a publisher to subscribers (local or on another
/// shard). Cloning shares the topic and payload `Bytes` (a refcount, no copy). `Properties` is
/// a large struct, so a message holds it behind an `Arc` only when there are any: 3.1.1
/// traffic and property-less 5.0 traffic cost no allocation, and a clone stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5.0 properties forwarded to subscribers (topic alias and subscription identifiers
    /// are per connection and never stored here).
    pub properties: Option<Arc<Properties>>,
}

impl Message {
    /// Takes the topic, payload and forwardable properties of an inbound PUBLISH.
    pub fn from_publish(publish: Publish) -> Self {
        let mut properties = publish.properties;
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: shared(properties),
        }
    }

    /// The will of a CONNECT as the message it becomes when published.
    pub fn from_will(will: LastWill) -> Self {
        let mut properties = will.properties;
        // The Will Delay Interval governs when the will is sent; it is not a PUBLISH property.
        properties.will_delay_interval = None;
        Self {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: shared(properties),
        }
    }

    /// The bytes this message pins in memory, for the queue's byte bound.
    pub fn size(&self) -> usize {
        self.topic.as_bytes().len() + self.payload.len()
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
    (properties != Properties::default()).then(|| Arc::new(properties))
}
