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
    #[inline(always)]
    pub fn new(bytes: Bytes) -> Result<Self, TopicError> {
        if bytes.is_empty() {
            return Err(TopicError::Empty);
        }
        let scanned = MqttString::scan(bytes)?;
        if scanned.has_wildcard {
            return Err(TopicError::WildcardInName);
        }
        Ok(Self(scanned.string))
    }

    /// A topic name from an already validated MQTT string: checks only the topic rules.
    pub fn from_mqtt_string(s: MqttString) -> Result<Self, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.as_bytes().iter().any(|&b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInName);
        }
        Ok(Self(s))
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

    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
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
        Self::from_mqtt_string(MqttString::from_bytes(bytes)?)
    }

    /// A topic filter from an already validated MQTT string: checks only the filter rules.
    pub fn from_mqtt_string(s: MqttString) -> Result<Self, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        let filter = match split_shared(s.as_str()) {
            Some((group, filter)) => {
                if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                    return Err(TopicError::InvalidSharedSubscription);
                }
                filter
            }
            None if s.as_str().starts_with(SHARE_PREFIX) => {
                return Err(TopicError::InvalidSharedSubscription);
            }
            None => s.as_str(),
        };
        validate_filter_levels(filter)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
    }

    /// For `$share/{group}/{filter}`, the group name; otherwise `None`.
    pub fn share_group(&self) -> Option<&str> {
        split_shared(self.as_str()).map(|(group, _)| group)
    }

    /// The filter to match topics against: for a shared subscription, the part after the group.
    pub fn match_filter(&self) -> &str {
        match split_shared(self.as_str()) {
            Some((_, filter)) => filter,
            None => self.as_str(),
        }
    }

    /// The `/`-separated levels of `match_filter()`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.match_filter().split('/')
    }

    pub fn has_wildcards(&self) -> bool {
        self.match_filter().contains(['+', '#'])
    }

    /// Whether this filter matches `topic`, including the rule that a filter starting with a
    /// wildcard does not match a topic starting with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: &TopicName) -> bool {
        let filter = self.match_filter();
        if topic.is_empty() || (topic.is_system() && filter.starts_with(['+', '#'])) {
            return false;
        }
        let mut filter_levels = filter.split('/');
        let mut topic_levels = topic.levels();
        loop {
            match (filter_levels.next(), topic_levels.next()) {
                // `#` also matches the parent level: `sport/#` matches `sport` [MQTT-4.7.1-2].
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

const SHARE_PREFIX: &str = "$share/";

/// Splits `$share/{group}/{filter}` into group and filter; `None` when `s` is not shared or
/// lacks the `/` after the group.
fn split_shared(s: &str) -> Option<(&str, &str)> {
    s.strip_prefix(SHARE_PREFIX)?.split_once('/')
}

/// `#` only as a whole last level [MQTT-4.7.1-2]; `+` only as a whole level [MQTT-4.7.1-3].
fn validate_filter_levels(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
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

impl std::fmt::Display for TopicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<StringError> for TopicError {
    fn from(e: StringError) -> Self {
        Self::String(e)
    }
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(e) => write!(f, "{e}"),
            Self::Empty => f.write_str("[MQTT-4.7.3-1] empty topic name or filter"),
            Self::WildcardInName => f.write_str("[MQTT-3.3.2-2] wildcard in a topic name"),
            Self::MisplacedMultiLevelWildcard => {
                f.write_str("[MQTT-4.7.1-2] '#' not alone in the last level")
            }
            Self::MisplacedSingleLevelWildcard => {
                f.write_str("[MQTT-4.7.1-3] '+' not alone in its level")
            }
            Self::InvalidSharedSubscription => {
                f.write_str("[MQTT-4.8.2-1] [MQTT-4.8.2-2] invalid $share/{group}/{filter}")
            }
        }
    }
}

impl std::error::Error for TopicError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::try_from(s).expect("valid topic name in test")
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::try_from(s).expect("valid topic filter in test")
    }

    #[test]
    fn topic_name_refuses_empty_mqtt_4_7_3_1() {
        assert_eq!(TopicName::try_from(""), Err(TopicError::Empty));
    }

    #[test]
    fn topic_name_refuses_wildcards_mqtt_3_3_2_2() {
        for bad in ["a/+", "#", "a/b#", "+"] {
            assert_eq!(
                TopicName::try_from(bad),
                Err(TopicError::WildcardInName),
                "{bad}"
            );
        }
    }

    #[test]
    fn topic_name_refuses_null_character_mqtt_1_5_4_2() {
        assert_eq!(
            TopicName::try_from("a\0"),
            Err(TopicError::String(StringError::NullCharacter))
        );
    }

    #[test]
    fn topic_name_accepts_empty_levels_and_dollar() {
        for ok in ["/", "a//b", "$SYS/x", " "] {
            assert_eq!(name(ok).as_str(), ok);
        }
        assert!(name("$SYS/x").is_system());
        assert!(!name("SYS/$x").is_system());
    }

    #[test]
    fn filter_accepts_valid_wildcards() {
        for ok in [
            "#",
            "+",
            "+/+",
            "sport/#",
            "sport/+/player1",
            "/+",
            "+/",
            "a//#",
            "$SYS/#",
        ] {
            assert_eq!(filter(ok).as_str(), ok);
        }
    }

    #[test]
    fn filter_refuses_misplaced_multi_level_wildcard_mqtt_4_7_1_2() {
        for bad in ["sport/tennis#", "sport/#/ranking", "#/", "##", "a/#b"] {
            assert_eq!(
                TopicFilter::try_from(bad),
                Err(TopicError::MisplacedMultiLevelWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn filter_refuses_misplaced_single_level_wildcard_mqtt_4_7_1_3() {
        for bad in ["sport+", "a/+b", "++", "+a/b"] {
            assert_eq!(
                TopicFilter::try_from(bad),
                Err(TopicError::MisplacedSingleLevelWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn filter_refuses_empty_mqtt_4_7_3_1() {
        assert_eq!(TopicFilter::try_from(""), Err(TopicError::Empty));
    }

    #[test]
    fn shared_filter_splits_group_and_filter() {
        let f = filter("$share/g1/sport/+");
        assert_eq!(f.share_group(), Some("g1"));
        assert_eq!(f.match_filter(), "sport/+");
        assert!(f.has_wildcards());
        assert_eq!(f.levels().collect::<Vec<_>>(), ["sport", "+"]);
        assert!(f.matches(&name("sport/tennis")));
    }

    #[test]
    fn non_shared_filter_has_no_group() {
        let f = filter("a/b");
        assert_eq!(f.share_group(), None);
        assert_eq!(f.match_filter(), "a/b");
        assert!(!f.has_wildcards());
    }

    #[test]
    fn shared_filter_refuses_bad_group_or_missing_filter_mqtt_4_8_2_2() {
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(
                TopicFilter::try_from(bad),
                Err(TopicError::InvalidSharedSubscription),
                "{bad}"
            );
        }
    }

    #[test]
    fn shared_filter_validates_its_inner_filter() {
        assert_eq!(
            TopicFilter::try_from("$share/g/a#"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
    }

    #[test]
    fn exact_filter_matches_only_same_topic() {
        assert!(filter("a/b").matches(&name("a/b")));
        assert!(!filter("a/b").matches(&name("a/b/c")));
        assert!(!filter("a/b").matches(&name("a")));
        assert!(!filter("a/b").matches(&name("a/B")));
    }

    #[test]
    fn multi_level_wildcard_matches_parent_and_children_mqtt_4_7_1_2() {
        let f = filter("sport/tennis/player1/#");
        assert!(f.matches(&name("sport/tennis/player1")));
        assert!(f.matches(&name("sport/tennis/player1/ranking")));
        assert!(f.matches(&name("sport/tennis/player1/score/wimbledon")));
        assert!(!f.matches(&name("sport/tennis/player2")));
        assert!(filter("sport/#").matches(&name("sport")));
        assert!(filter("#").matches(&name("a/b/c")));
        assert!(filter("#").matches(&name("/")));
    }

    #[test]
    fn single_level_wildcard_matches_one_level_including_empty_mqtt_4_7_1_3() {
        let f = filter("sport/tennis/+");
        assert!(f.matches(&name("sport/tennis/player1")));
        assert!(!f.matches(&name("sport/tennis/player1/ranking")));
        assert!(filter("sport/+").matches(&name("sport/")));
        assert!(!filter("sport/+").matches(&name("sport")));
        assert!(filter("+/+").matches(&name("/finance")));
        assert!(filter("/+").matches(&name("/finance")));
        assert!(!filter("+").matches(&name("/finance")));
        assert!(filter("+/+/#").matches(&name("a/b")));
    }

    #[test]
    fn wildcard_first_filters_skip_dollar_topics_mqtt_4_7_2_1() {
        assert!(!filter("#").matches(&name("$SYS/monitor/Clients")));
        assert!(!filter("+/monitor/Clients").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/#").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/monitor/+").matches(&name("$SYS/monitor/Clients")));
        assert!(!filter("$share/g/#").matches(&name("$SYS/x")));
    }

    #[test]
    fn empty_alias_topic_matches_nothing() {
        assert!(!filter("#").matches(&TopicName::empty()));
    }
}
