//! One `topics` entry of a bridge, Mosquitto's rule syntax parsed into a typed rule
//! (`pattern [[[out|in|both] qos] local-prefix remote-prefix]`), and the topic rewriting it
//! implies in each direction. Pure: no IO, no config types.

use crate::protocol::{QoS, TopicFilter, TopicName};
use std::fmt;

/// Which way a rule carries messages, as Mosquitto names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local messages go to the remote broker.
    Out,
    /// The remote broker's messages come here.
    In,
    Both,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Out => "out",
            Self::In => "in",
            Self::Both => "both",
        }
    }

    pub fn carries_out(self) -> bool {
        matches!(self, Self::Out | Self::Both)
    }

    pub fn carries_in(self) -> bool {
        matches!(self, Self::In | Self::Both)
    }
}

/// A validated topic rule. The local side subscribes to (and publishes under)
/// `local_prefix + pattern`, the remote side to `remote_prefix + pattern`; a message crossing
/// loses one prefix and gains the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    pub pattern: String,
    pub direction: Direction,
    /// The most a message crosses with (a message keeps a lower QoS of its own).
    pub qos: QoS,
    pub local_prefix: String,
    pub remote_prefix: String,
    local_filter: TopicFilter,
    remote_filter: TopicFilter,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    Empty,
    /// More than five words.
    TooManyWords(usize),
    BadDirection(String),
    BadQos(String),
    /// Mosquitto: "topic prefixes may not contain wildcards".
    WildcardInPrefix(String),
    /// An empty pattern is only a topic remapping: it needs a prefix to name the topic.
    EmptyPatternWithoutPrefix,
    /// `prefix + pattern` is not a topic filter (or, with an empty pattern, not a topic).
    BadFilter {
        filter: String,
        reason: String,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("an empty rule (expected `pattern [[[out|in|both] qos] local-prefix remote-prefix]`)"),
            Self::TooManyWords(n) => write!(
                f,
                "{n} words, at most 5: `pattern [[[out|in|both] qos] local-prefix remote-prefix]`"
            ),
            Self::BadDirection(d) => write!(f, "{d:?} is not one of out, in, both"),
            Self::BadQos(q) => write!(f, "QoS {q:?} is not 0, 1 or 2"),
            Self::WildcardInPrefix(p) => write!(f, "the prefix {p:?} contains a wildcard"),
            Self::EmptyPatternWithoutPrefix => {
                f.write_str("an empty pattern (\"\") needs a local or remote prefix")
            }
            Self::BadFilter { filter, reason } => {
                write!(f, "{filter:?} is not a valid topic filter: {reason}")
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// One word of a rule: `""` is Mosquitto's way to write an empty one.
fn word(w: &str) -> &str {
    if w == "\"\"" { "" } else { w }
}

impl TopicRule {
    /// Parses a rule as Mosquitto's `topic` line takes it (without the `topic` keyword).
    /// Defaults: `out`, QoS 0, no prefixes.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let words: Vec<&str> = text.split_whitespace().map(word).collect();
        let (pattern, rest) = words.split_first().ok_or(RuleError::Empty)?;
        if words.len() > 5 {
            return Err(RuleError::TooManyWords(words.len()));
        }
        let direction = match rest.first().copied() {
            None | Some("out") => Direction::Out,
            Some("in") => Direction::In,
            Some("both") => Direction::Both,
            Some(other) => return Err(RuleError::BadDirection(other.into())),
        };
        let qos = match rest.get(1).copied() {
            None | Some("0") => QoS::AtMostOnce,
            Some("1") => QoS::AtLeastOnce,
            Some("2") => QoS::ExactlyOnce,
            Some(other) => return Err(RuleError::BadQos(other.into())),
        };
        let local_prefix = rest.get(2).copied().unwrap_or_default();
        let remote_prefix = rest.get(3).copied().unwrap_or_default();
        Self::new(pattern, direction, qos, (local_prefix, remote_prefix))
    }

    /// A rule from its parts, checked as `parse` checks them.
    pub fn new(
        pattern: &str,
        direction: Direction,
        qos: QoS,
        (local_prefix, remote_prefix): (&str, &str),
    ) -> Result<Self, RuleError> {
        for prefix in [local_prefix, remote_prefix] {
            if prefix.contains(['+', '#']) {
                return Err(RuleError::WildcardInPrefix(prefix.into()));
            }
        }
        if pattern.is_empty() && local_prefix.is_empty() && remote_prefix.is_empty() {
            return Err(RuleError::EmptyPatternWithoutPrefix);
        }
        let filter = |prefix: &str| {
            let text = format!("{prefix}{pattern}");
            TopicFilter::try_from(text.as_str()).map_err(|e| RuleError::BadFilter {
                filter: text.clone(),
                reason: e.to_string(),
            })
        };
        Ok(Self {
            pattern: pattern.into(),
            direction,
            qos,
            local_filter: filter(local_prefix)?,
            remote_filter: filter(remote_prefix)?,
            local_prefix: local_prefix.into(),
            remote_prefix: remote_prefix.into(),
        })
    }

    /// The rule as Mosquitto writes it (what `parse` reads back).
    pub fn to_text(&self) -> String {
        let quoted = |s: &str| {
            if s.is_empty() {
                "\"\"".to_owned()
            } else {
                s.to_owned()
            }
        };
        let mut text = format!(
            "{} {} {}",
            quoted(&self.pattern),
            self.direction.name(),
            self.qos as u8
        );
        if !self.local_prefix.is_empty() || !self.remote_prefix.is_empty() {
            text.push_str(&format!(
                " {} {}",
                quoted(&self.local_prefix),
                quoted(&self.remote_prefix)
            ));
        }
        text
    }

    /// What the bridge subscribes to on this broker (for `out` and `both`).
    pub fn local_filter(&self) -> &TopicFilter {
        &self.local_filter
    }

    /// What the bridge subscribes to on the remote broker (for `in` and `both`).
    pub fn remote_filter(&self) -> &TopicFilter {
        &self.remote_filter
    }

    /// The remote topic of a local message this rule carries out, `None` if it does not.
    pub fn to_remote(&self, local: &TopicName) -> Option<TopicName> {
        if !self.direction.carries_out() || !self.local_filter.matches(local) {
            return None;
        }
        swap_prefix(local, &self.local_prefix, &self.remote_prefix)
    }

    /// The local topic of a remote message this rule carries in, `None` if it does not.
    pub fn to_local(&self, remote: &TopicName) -> Option<TopicName> {
        if !self.direction.carries_in() || !self.remote_filter.matches(remote) {
            return None;
        }
        swap_prefix(remote, &self.remote_prefix, &self.local_prefix)
    }
}

/// `topic` with `from` at its start replaced by `to`; the topic itself when both are empty
/// (no copy: its bytes stay shared).
fn swap_prefix(topic: &TopicName, from: &str, to: &str) -> Option<TopicName> {
    if from.is_empty() && to.is_empty() {
        return Some(topic.clone());
    }
    let rest = topic.as_str().strip_prefix(from)?;
    TopicName::try_from(format!("{to}{rest}").as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &str) -> TopicName {
        TopicName::try_from(t).expect("a topic")
    }

    #[test]
    fn a_bare_pattern_is_out_at_qos_0_without_prefixes() {
        let rule = TopicRule::parse("sensors/#").expect("valid");
        assert_eq!(rule.direction, Direction::Out);
        assert_eq!(rule.qos, QoS::AtMostOnce);
        assert_eq!(rule.local_filter().as_str(), "sensors/#");
        assert_eq!(rule.remote_filter().as_str(), "sensors/#");
        assert_eq!(
            rule.to_remote(&topic("sensors/a")),
            Some(topic("sensors/a"))
        );
        assert_eq!(rule.to_local(&topic("sensors/a")), None, "out only");
    }

    #[test]
    fn the_issue_example_swaps_prefixes_each_way() {
        let out = TopicRule::parse("sensors/# out 1 site1/ cloud/site1/").expect("valid");
        assert_eq!(out.qos, QoS::AtLeastOnce);
        assert_eq!(out.local_filter().as_str(), "site1/sensors/#");
        assert_eq!(out.remote_filter().as_str(), "cloud/site1/sensors/#");
        assert_eq!(
            out.to_remote(&topic("site1/sensors/t")),
            Some(topic("cloud/site1/sensors/t"))
        );
        assert_eq!(out.to_remote(&topic("other/sensors/t")), None);
        let inward = TopicRule::parse("cmd/# in 2 site1/ cloud/site1/").expect("valid");
        assert_eq!(inward.qos, QoS::ExactlyOnce);
        assert_eq!(
            inward.to_local(&topic("cloud/site1/cmd/reboot")),
            Some(topic("site1/cmd/reboot"))
        );
        assert_eq!(inward.to_remote(&topic("site1/cmd/reboot")), None);
    }

    #[test]
    fn quotes_write_an_empty_prefix_or_pattern() {
        let rule = TopicRule::parse("# both 0 \"\" remote/").expect("valid");
        assert_eq!(rule.local_filter().as_str(), "#");
        assert_eq!(rule.to_remote(&topic("a/b")), Some(topic("remote/a/b")));
        assert_eq!(rule.to_local(&topic("remote/a/b")), Some(topic("a/b")));
        // Mosquitto: an empty pattern remaps one topic to another.
        let remap = TopicRule::parse("\"\" out 1 local/topic remote/topic").expect("valid");
        assert_eq!(
            remap.to_remote(&topic("local/topic")),
            Some(topic("remote/topic"))
        );
    }

    #[test]
    fn rules_print_back_as_they_parse() {
        for text in [
            "a/# out 0",
            "# both 1 \"\" r/",
            "x in 2 l/ r/",
            "\"\" out 1 l/t r/t",
        ] {
            let rule = TopicRule::parse(text).expect("valid");
            assert_eq!(TopicRule::parse(&rule.to_text()), Ok(rule), "{text}");
        }
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (text, error) in [
            ("", RuleError::Empty),
            ("a out 1 l/ r/ extra", RuleError::TooManyWords(6)),
            ("a sideways", RuleError::BadDirection("sideways".into())),
            ("a out 3", RuleError::BadQos("3".into())),
            (
                "a out 1 l/+/ r/",
                RuleError::WildcardInPrefix("l/+/".into()),
            ),
            ("a out 1 l/ r/#", RuleError::WildcardInPrefix("r/#".into())),
            ("\"\"", RuleError::EmptyPatternWithoutPrefix),
        ] {
            assert_eq!(TopicRule::parse(text), Err(error), "{text:?}");
        }
        assert!(matches!(
            TopicRule::parse("a/#/b"),
            Err(RuleError::BadFilter { .. })
        ));
    }
}
