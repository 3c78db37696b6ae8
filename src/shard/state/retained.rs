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
    pub fn store(&mut self, msg: &Message) -> Change {
        if !self.enabled {
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
            let mut kept = msg.clone();
            // Sent on a later SUBSCRIBE, a copy's age is no delivery latency.
            kept.received_at = None;
            self.messages.insert(msg.topic.clone(), kept);
            Change::Stored
        } else if old.is_some() {
            Change::Removed
        } else {
            Change::None
        }
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
            .map(|m| m.with_remaining_expiry(now).unwrap_or_else(|| m.clone()))
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
