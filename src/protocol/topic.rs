//! Validated topic names and topic filters (section 4.7) and the rule that matches one to the other.

use super::string::{MqttString, StringError};
use bytes::Bytes;

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    String(StringError),
    /// [MQTT-4.7.3-1] topic names and filters are at least one character long.
    Empty,
    /// [MQTT-3.3.2-2] a topic name contains a wildcard character.
    WildcardInName,
    /// [MQTT-4.7.1-2] `#` must be last and alone in its level.
    MisplacedMultiLevelWildcard,
    /// [MQTT-4.7.1-3] `+` must occupy a whole level.
    MisplacedSingleLevelWildcard,
    /// [MQTT-4.8.2-1] / [MQTT-4.8.2-2] a `$share/{group}/{filter}` with a bad group or no filter.
    InvalidSharedSubscription,
}

/// A topic name as carried by PUBLISH: valid UTF-8, no wildcards. May be empty only in an
/// MQTT 5.0 PUBLISH that uses a topic alias; `TopicName::new` refuses empty names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicName(MqttString);

impl TopicName {
    pub fn new(bytes: Bytes) -> Result<Self, TopicError> {
        todo!("codec issue {bytes:?}")
    }

    /// The zero-length topic of an MQTT 5.0 PUBLISH that relies on a topic alias.
    pub fn empty() -> Self {
        Self(MqttString::default())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Topics starting with `$` are not matched by filters starting with a wildcard.
    pub fn is_system(&self) -> bool {
        self.0.as_bytes().first() == Some(&b'$')
    }

    /// The `/`-separated levels of the name.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.as_str().split('/')
    }
}

impl std::fmt::Debug for TopicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// A topic filter as carried by SUBSCRIBE and UNSUBSCRIBE, validated once on decode.
/// `$share/{group}/{filter}` (MQTT 5.0 shared subscriptions) is accepted; see `share_group`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(MqttString);

impl TopicFilter {
    pub fn new(bytes: Bytes) -> Result<Self, TopicError> {
        todo!("codec issue {bytes:?}")
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// For `$share/{group}/{filter}`, the group name; otherwise `None`.
    pub fn share_group(&self) -> Option<&str> {
        todo!()
    }

    /// The filter to match topics against: for a shared subscription, the part after the group.
    pub fn match_filter(&self) -> &str {
        todo!()
    }

    /// The `/`-separated levels of `match_filter()`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.match_filter().split('/')
    }

    pub fn has_wildcards(&self) -> bool {
        todo!()
    }

    /// Whether this filter matches `topic`, including the rule that a filter starting with a
    /// wildcard does not match a topic starting with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: &TopicName) -> bool {
        todo!("{topic:?}")
    }
}

impl std::fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}
