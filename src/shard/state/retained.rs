//! `Retained`: this shard's copy of the retained store (every shard holds all retained
//! messages, so a new subscription finds them without asking a peer), within its bounds.

use crate::protocol::{TopicFilter, TopicName};
use crate::session::Message;
use hashbrown::HashMap;
use std::time::Instant;

/// What `Retained::store` did to the stored message of the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// The message is now the topic's retained message (new or replacing one).
    Stored,
    /// The topic's retained message was deleted (an empty payload, or a replacement over
    /// the bounds).
    Removed,
    /// Nothing changed (nothing to delete, a new topic over the bounds, retain disabled).
    None,
}

#[derive(Debug)]
pub(super) struct Retained {
    messages: HashMap<TopicName, Message>,
    bytes: usize,
    /// Retained messages are stored at all (5.0 Retain Available).
    enabled: bool,
    max_messages: usize,
    max_bytes: usize,
}

impl Retained {
    pub fn new(enabled: bool, max_messages: usize, max_bytes: usize) -> Self {
        Self {
            messages: HashMap::new(),
            bytes: 0,
            enabled,
            max_messages,
            max_bytes,
        }
    }

    /// Stores or replaces the retained message of its topic; an empty payload only deletes
    /// [MQTT-3.3.1-10]. A store over its bounds keeps its messages and refuses new topics.
    ///
    /// A message read before the stored one is stale and changes nothing: a peer's copy
    /// travels through the mesh, so it can reach this shard after a newer message a client
    /// published here once the peer had acknowledged the older one [MQTT-3.3.1-5].
    pub fn store(&mut self, msg: &Message) -> Change {
        if !self.enabled || self.is_stale(msg) {
            return Change::None;
        }
        let old = self.messages.remove(&msg.topic);
        if let Some(old) = &old {
            self.bytes -= old.size();
        }
        let fits =
            self.messages.len() < self.max_messages && self.bytes + msg.size() <= self.max_bytes;
        if !msg.payload.is_empty() && fits {
            self.bytes += msg.size();
            // Its `received_at` orders it against later copies (`is_stale`); `matching`
            // hands out copies without it.
            self.messages.insert(msg.topic.clone(), msg.clone());
            Change::Stored
        } else if old.is_some() {
            Change::Removed
        } else {
            Change::None
        }
    }

    /// Whether the topic's stored message was read after `msg` (both read from clients;
    /// the monotonic clock is one for every core). Wills, `$SYS` and recovered messages
    /// carry no read time and always replace.
    fn is_stale(&self, msg: &Message) -> bool {
        let stored = self.messages.get(&msg.topic).and_then(|m| m.received_at);
        matches!((stored, msg.received_at), (Some(stored), Some(read)) if read < stored)
    }

    /// Every stored message, expired or not, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// The unexpired retained messages matching `filter`, each with its remaining expiry
    /// [MQTT-3.3.2-6].
    pub fn matching(&self, filter: &TopicFilter, now: Instant) -> Vec<Message> {
        self.messages
            .values()
            .filter(|m| filter.matches(&m.topic) && !m.is_expired(now))
            .map(|m| {
                let mut copy = m.with_remaining_expiry(now).unwrap_or_else(|| m.clone());
                // Sent on a later SUBSCRIBE, a copy's age is no delivery latency.
                copy.received_at = None;
                copy
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Topic and payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn read_at(payload: &'static str, at: Option<Instant>) -> Message {
        let Ok(topic) = TopicName::try_from("t") else {
            panic!("a valid topic");
        };
        let mut msg = Message::broker_retained(topic, Bytes::from_static(payload.as_bytes()));
        msg.received_at = at;
        msg
    }

    fn stored(store: &Retained) -> Vec<Bytes> {
        store.iter().map(|m| m.payload.clone()).collect()
    }

    #[test]
    fn a_copy_read_before_the_stored_message_changes_nothing_mqtt_3_3_1_5() {
        // [MQTT-3.3.1-5] (3.1.1) the newest retained message replaces the old one: a
        // peer's older copy that arrives late through the mesh must not win.
        let mut store = Retained::new(true, 10, 1 << 20);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(store.store(&read_at("new", Some(t1))), Change::Stored);
        assert_eq!(store.store(&read_at("old", Some(t0))), Change::None);
        assert_eq!(store.store(&read_at("", Some(t0))), Change::None);
        assert_eq!(stored(&store), [Bytes::from_static(b"new")]);
        // A will or `$SYS` message carries no read time: it replaces as before.
        assert_eq!(store.store(&read_at("will", None)), Change::Stored);
        assert_eq!(stored(&store), [Bytes::from_static(b"will")]);
    }

    #[test]
    fn a_retained_copy_handed_to_a_subscriber_carries_no_read_time() {
        let mut store = Retained::new(true, 10, 1 << 20);
        let _ = store.store(&read_at("v", Some(Instant::now())));
        let Ok(filter) = TopicFilter::try_from("#") else {
            panic!("a valid filter");
        };
        let copies = store.matching(&filter, Instant::now());
        assert!(copies.iter().all(|m| m.received_at.is_none()));
    }
}
