//! Validated topic names and topic filters (section 4.7) and the rule that matches one to the other.

use super::string::{MqttString, StringError, scan_slice};
use bytes::Bytes;
use std::ops::Range;

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

/// Topic names up to this many bytes are stored inside the `TopicName` itself, which keeps
/// `TopicName` at 40 bytes and covers most real topics.
pub const INLINE_TOPIC_LEN: usize = 38;

/// A topic name as carried by PUBLISH: valid UTF-8, no wildcards. May be empty only in an
/// MQTT 5.0 PUBLISH that uses a topic alias; `TopicName::new` refuses empty names.
///
/// A name of at most `INLINE_TOPIC_LEN` bytes is copied inline: decoding it slices no `Bytes`
/// and cloning it is a plain copy, so neither touches a shared reference count. Longer names
/// share their bytes. Equality, ordering and hashing look only at the text, whichever storage
/// two names use.
#[derive(Clone)]
pub struct TopicName(Repr);

#[derive(Clone)]
enum Repr {
    /// `buf[..len]` holds the validated name.
    Inline {
        len: u8,
        buf: [u8; INLINE_TOPIC_LEN],
    },
    Shared(MqttString),
}

impl TopicName {
    #[inline(always)]
    pub fn new(bytes: Bytes) -> Result<Self, TopicError> {
        if bytes.len() <= INLINE_TOPIC_LEN {
            check_name(&bytes)?;
            return Ok(Self::inline(&bytes));
        }
        let scanned = MqttString::scan(bytes)?;
        if scanned.has_wildcard {
            return Err(TopicError::WildcardInName);
        }
        Ok(Self(Repr::Shared(scanned.string)))
    }

    /// A topic name from an already validated MQTT string: checks only the topic rules.
    pub fn from_mqtt_string(s: MqttString) -> Result<Self, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.as_bytes().iter().any(|&b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInName);
        }
        if s.len() <= INLINE_TOPIC_LEN {
            return Ok(Self::inline(s.as_bytes()));
        }
        Ok(Self(Repr::Shared(s)))
    }

    /// The topic field at `range` of a decoded `frame`: copied inline when short, otherwise a
    /// slice of the frame. An empty field gives `empty()`; the caller decides whether that is
    /// allowed (a 5.0 PUBLISH with a Topic Alias).
    #[inline(always)]
    pub(crate) fn decode(frame: &Bytes, range: Range<usize>) -> Result<Self, TopicError> {
        let field = &frame[range.clone()];
        if field.len() > INLINE_TOPIC_LEN {
            return Self::new(frame.slice(range));
        }
        if scan_slice(field)? {
            return Err(TopicError::WildcardInName);
        }
        // A copy of fixed size is a few vector moves where a copy of `len` bytes calls
        // memcpy; the bytes past the name's length are never read as part of it.
        let mut buf = [0; INLINE_TOPIC_LEN];
        match frame.get(range.start..range.start + INLINE_TOPIC_LEN) {
            Some(window) => buf.copy_from_slice(window),
            None => buf[..field.len()].copy_from_slice(field),
        }
        Ok(Self(Repr::Inline {
            len: field.len() as u8,
            buf,
        }))
    }

    /// Copies `name`, which the caller has validated and which fits inline.
    #[inline(always)]
    fn inline(name: &[u8]) -> Self {
        let mut buf = [0; INLINE_TOPIC_LEN];
        buf[..name.len()].copy_from_slice(name);
        Self(Repr::Inline {
            len: name.len() as u8,
            buf,
        })
    }

    /// The zero-length topic of an MQTT 5.0 PUBLISH that relies on a topic alias.
    pub fn empty() -> Self {
        Self::inline(&[])
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: both representations hold bytes that `scan_slice` or `MqttString` validated
        // as well-formed UTF-8, and neither is mutated afterwards.
        unsafe { std::str::from_utf8_unchecked(self.as_bytes()) }
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Shared(s) => s.as_bytes(),
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Whether the name is stored inside the value rather than sharing a buffer.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// Topics starting with `$` are not matched by filters starting with a wildcard.
    pub fn is_system(&self) -> bool {
        self.as_bytes().first() == Some(&b'$')
    }

    /// The `/`-separated levels of the name.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.as_str().split('/')
    }
}

/// The topic-name rules on bytes not yet validated: not empty [MQTT-4.7.3-1], a valid string,
/// no wildcard [MQTT-3.3.2-2].
#[inline(always)]
fn check_name(bytes: &[u8]) -> Result<(), TopicError> {
    if bytes.is_empty() {
        return Err(TopicError::Empty);
    }
    if scan_slice(bytes)? {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

impl Default for TopicName {
    fn default() -> Self {
        Self::empty()
    }
}

impl PartialEq for TopicName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for TopicName {}

impl PartialOrd for TopicName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for TopicName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
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
        if s.len() <= INLINE_TOPIC_LEN {
            check_name(s.as_bytes())?;
            return Ok(Self::inline(s.as_bytes()));
        }
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

// The rule-by-rule tests outweigh the code they check, so they have a file of their own.
#[cfg(test)]
mod tests;
