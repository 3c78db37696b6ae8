//! Outbound Topic Aliases (MQTT 5.0 section 3.3.2.3.4): which alias the broker has given each
//! topic on one network connection. Sans-IO; the shard keeps one table per connection, so a
//! new connection (a resumed session included) starts with none [MQTT-3.3.2-7].
//!
//! Policy: the first `limit` distinct topics sent on the connection get aliases 1, 2, ...
//! and keep them for the connection's life; once the table is full, other topics go out
//! with their full name and no alias. Replacing a mapping (round robin or LRU) would help a
//! connection whose topics drift, but when a connection cycles through more topics than it
//! has aliases, every message would re-send its full topic plus the 3 alias bytes and churn
//! the table. Without knowing which topics repeat, the first ones are as good a guess as any,
//! and a fixed table never changes once full, so the lookup is the only per-message cost.

use crate::protocol::TopicName;
use hashbrown::HashMap;

/// How a PUBLISH to this connection names its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// The full topic and no Topic Alias.
    None,
    /// The full topic plus this new alias: the client records the mapping.
    Set(u16),
    /// An empty topic plus this alias, which an earlier PUBLISH on this connection set.
    Use(u16),
}

/// The outbound aliases of one connection.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    /// Highest alias to hand out: min(the client's Topic Alias Maximum, our cap); 0 for a
    /// 3.1.1 client or a 5.0 client that announced none [MQTT-3.1.2-27].
    limit: u16,
    /// Topic -> alias; aliases are 1..=len, given in order.
    by_topic: HashMap<TopicName, u16>,
}

impl OutboundAliases {
    pub fn new(limit: u16) -> Self {
        Self {
            limit,
            by_topic: HashMap::new(),
        }
    }

    /// How the next PUBLISH of `topic` should name it. Only looks: nothing is recorded until
    /// [`Self::sent`] confirms that the packet went out.
    #[inline]
    pub fn plan(&self, topic: &TopicName) -> AliasUse {
        if self.limit == 0 || topic.is_empty() {
            return AliasUse::None;
        }
        if let Some(&alias) = self.by_topic.get(topic) {
            return AliasUse::Use(alias);
        }
        // [MQTT-3.1.2-26] [MQTT-3.3.2-11] never above the client's Topic Alias Maximum.
        match u16::try_from(self.by_topic.len() + 1) {
            Ok(next) if next <= self.limit => AliasUse::Set(next),
            _ => AliasUse::None,
        }
    }

    /// Records that a PUBLISH of `topic` planned as `used` was written to the connection.
    #[inline]
    pub fn sent(&mut self, topic: &TopicName, used: AliasUse) {
        if let AliasUse::Set(alias) = used {
            self.remember(topic, alias);
        }
    }

    fn remember(&mut self, topic: &TopicName, alias: u16) {
        if self.by_topic.is_empty() {
            // One allocation per connection, sized so later topics never grow the table.
            self.by_topic.reserve(usize::from(self.limit));
        }
        self.by_topic.insert(owned(topic), alias);
    }
}

/// The form to send within `limit` bytes, given the packet size of each form: the planned
/// one if it fits, else the full topic without an alias (setting an alias adds 3 bytes, and
/// using one can be longer than a 1 or 2 byte topic), else none: the packet cannot be sent
/// [MQTT-3.1.2-25].
#[inline]
pub fn fitting(
    planned: AliasUse,
    limit: usize,
    mut size: impl FnMut(AliasUse) -> usize,
) -> Option<AliasUse> {
    // No limit (the client set no Maximum Packet Size): nothing to measure per subscriber.
    if limit == usize::MAX || size(planned) <= limit {
        return Some(planned);
    }
    (planned != AliasUse::None && size(AliasUse::None) <= limit).then_some(AliasUse::None)
}

/// A long topic shares the publisher's read buffer; the table may keep it for the life of the
/// connection, so it gets its own copy rather than pinning that whole buffer.
fn owned(topic: &TopicName) -> TopicName {
    if topic.is_inline() {
        return topic.clone();
    }
    TopicName::try_from(topic.as_str()).unwrap_or_else(|_| topic.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TopicName {
        TopicName::try_from(name).expect("valid topic")
    }

    fn send(table: &mut OutboundAliases, name: &str) -> AliasUse {
        let used = table.plan(&t(name));
        table.sent(&t(name), used);
        used
    }

    #[test]
    fn a_topic_gets_an_alias_once_then_uses_it() {
        let mut table = OutboundAliases::new(2);
        assert_eq!(send(&mut table, "a"), AliasUse::Set(1));
        assert_eq!(send(&mut table, "b"), AliasUse::Set(2));
        assert_eq!(send(&mut table, "a"), AliasUse::Use(1));
        assert_eq!(send(&mut table, "b"), AliasUse::Use(2));
    }

    #[test]
    fn a_full_table_sends_new_topics_without_an_alias_mqtt_3_3_2_11() {
        let mut table = OutboundAliases::new(1);
        assert_eq!(send(&mut table, "a"), AliasUse::Set(1));
        assert_eq!(send(&mut table, "b"), AliasUse::None);
        assert_eq!(send(&mut table, "b"), AliasUse::None);
        assert_eq!(send(&mut table, "a"), AliasUse::Use(1));
    }

    #[test]
    fn a_limit_of_zero_never_aliases_mqtt_3_1_2_27() {
        let mut table = OutboundAliases::new(0);
        assert_eq!(send(&mut table, "a"), AliasUse::None);
        assert_eq!(send(&mut table, "a"), AliasUse::None);
    }

    #[test]
    fn a_planned_alias_is_not_recorded_until_sent() {
        let mut table = OutboundAliases::new(4);
        assert_eq!(table.plan(&t("a")), AliasUse::Set(1));
        // Not written (too large, say): the next PUBLISH must still set the mapping.
        assert_eq!(table.plan(&t("a")), AliasUse::Set(1));
        table.sent(&t("a"), AliasUse::None);
        assert_eq!(table.plan(&t("a")), AliasUse::Set(1));
    }

    #[test]
    fn the_form_that_fits_is_sent_mqtt_3_1_2_25() {
        let size = |used| match used {
            AliasUse::None => 20,
            AliasUse::Set(_) => 23,
            AliasUse::Use(_) => 19,
        };
        assert_eq!(fitting(AliasUse::Set(1), 23, size), Some(AliasUse::Set(1)));
        assert_eq!(fitting(AliasUse::Set(1), 22, size), Some(AliasUse::None));
        assert_eq!(fitting(AliasUse::Use(1), 19, size), Some(AliasUse::Use(1)));
        assert_eq!(fitting(AliasUse::Set(1), 19, size), None);
        assert_eq!(fitting(AliasUse::None, 19, size), None);
    }

    #[test]
    fn a_long_topic_is_copied_out_of_the_shared_buffer() {
        let long = "x/".repeat(40);
        let shared = TopicName::new(bytes::Bytes::from(long.clone())).expect("valid");
        assert!(!shared.is_inline());
        let mut table = OutboundAliases::new(1);
        let used = table.plan(&shared);
        table.sent(&shared, used);
        assert_eq!(table.plan(&t(&long)), AliasUse::Use(1));
    }
}
