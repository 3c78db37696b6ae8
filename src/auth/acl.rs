//! Mosquitto's `acl_file`, parsed into an [`AclFile`] and compiled once per client (at
//! CONNECT) into a [`ClientAcl`] whose checks on publish, subscribe and delivery allocate
//! nothing.
//!
//! ```text
//! # rules before the first `user` line apply to anonymous clients
//! topic read public/#
//! user alice
//! topic readwrite alice/#          # `topic <filter>` alone means readwrite
//! topic deny alice/secret
//! pattern write devices/%c/state   # every client; %c = client id, %u = user name
//! ```
//!
//! The rules, and where they differ from Mosquitto 2.1 (`plugins/acl-file`):
//!
//! - A client gets the rules of its user block (the anonymous block when it has no user
//!   name; none when its user name has no block) plus every `pattern` line.
//! - A topic is allowed when some rule with that access matches it and no `deny` rule does:
//!   a deny wins wherever it is written. (Mosquitto lets a user rule's allow win over a
//!   pattern deny, because it tries the user list first.) No match is a deny.
//! - `$`-topics are matched only by rules whose filter starts with `$` (a rule starting with
//!   a wildcard never matches them, as [MQTT-4.7.2-1] has it for subscriptions).
//! - `%c` and `%u` are substituted only where they are a whole level (as 2.1 and the man
//!   page say; 2.0 substituted them anywhere). A pattern that needs `%u` does nothing for a
//!   client without a user name, nor for an empty client id or user name.
//! - A client id or user name that is not one plain topic level (it contains `/`, `+` or
//!   `#`, or it would start a `$` first level) cannot be substituted safely: an allow
//!   pattern using it grants nothing, and a deny pattern using it denies that client
//!   everything, since the deny cannot be placed precisely. (Mosquitto denies all pattern
//!   access to ids with `+`/`#` and simply fails to match ids with `/`.)
//! - SUBSCRIBE is checked too (Mosquitto's acl-file only checks delivery): a filter is
//!   allowed when one `read` (or `readwrite`) rule filter covers it, i.e. matches every topic
//!   the filter can match, and no `deny` rule filter intersects it, i.e. shares a topic with
//!   it. Several rules that only together cover a filter do not allow it; subscribe to the
//!   narrower filters instead. A shared subscription is checked by the filter after
//!   `$share/{group}/`. Delivery should still be checked with [`ClientAcl::can_read`].
//! - `topic read` with no topic, an unknown access word, and rule filters starting with
//!   `$share/` are errors naming the line (Mosquitto reads the first as readwrite on the
//!   topic `read`).

use crate::protocol::{TopicError, TopicFilter, TopicName};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The access a rule grants, or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "readwrite" => Some(Self::ReadWrite),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// Rule filters sorted by what they do; a `readwrite` rule sits in both `read` and `write`.
/// Every filter is a valid, non-shared topic filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleSet {
    deny: Vec<Box<str>>,
    read: Vec<Box<str>>,
    write: Vec<Box<str>>,
}

impl RuleSet {
    fn add(&mut self, access: Access, filter: Box<str>) {
        match access {
            Access::Deny => self.deny.push(filter),
            Access::Read => self.read.push(filter),
            Access::Write => self.write.push(filter),
            Access::ReadWrite => {
                self.read.push(filter.clone());
                self.write.push(filter);
            }
        }
    }
}

/// A `pattern` line, kept unsubstituted until a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    access: Access,
    filter: Box<str>,
}

/// A parsed acl_file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFile {
    anonymous: Arc<RuleSet>,
    users: HashMap<Box<str>, Arc<RuleSet>>,
    patterns: Vec<Pattern>,
}

/// What is wrong with one line of an acl_file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclLineError {
    NotUtf8,
    /// The first word is not `user`, `topic` or `pattern`.
    UnknownKeyword(String),
    /// `user` with no name.
    MissingUsername,
    /// `topic` or `pattern` with nothing after it.
    MissingTopic {
        keyword: &'static str,
    },
    /// `topic read` and nothing else.
    AccessWithoutTopic {
        keyword: &'static str,
        access: String,
    },
    /// The word before the topic is not read, write, readwrite or deny.
    InvalidAccess {
        keyword: &'static str,
        access: String,
    },
    InvalidFilter {
        keyword: &'static str,
        filter: String,
        error: TopicError,
    },
    /// ACL rules name topics; `$share/{group}/` belongs to subscriptions only.
    SharedFilter {
        keyword: &'static str,
        filter: String,
    },
}

impl fmt::Display for AclLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8"),
            Self::UnknownKeyword(word) => {
                write!(f, "unknown keyword '{word}' (want user, topic or pattern)")
            }
            Self::MissingUsername => f.write_str("user: no user name"),
            Self::MissingTopic { keyword } => write!(f, "{keyword}: no topic"),
            Self::AccessWithoutTopic { keyword, access } => {
                write!(f, "{keyword}: access '{access}' but no topic")
            }
            Self::InvalidAccess { keyword, access } => write!(
                f,
                "{keyword}: access '{access}' is not read, write, readwrite or deny"
            ),
            Self::InvalidFilter {
                keyword,
                filter,
                error,
            } => write!(f, "{keyword}: invalid topic filter '{filter}': {error}"),
            Self::SharedFilter { keyword, filter } => write!(
                f,
                "{keyword}: '{filter}' is a shared subscription; write the topic filter \
                 without $share/{{group}}/"
            ),
        }
    }
}

/// A line of an acl_file that cannot be used, by 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclParseError {
    pub line: usize,
    pub error: AclLineError,
}

impl fmt::Display for AclParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for AclParseError {}

/// Why an acl_file could not be loaded; names the file.
#[derive(Debug)]
pub enum AclLoadError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Parse {
        path: PathBuf,
        error: AclParseError,
    },
}

impl fmt::Display for AclLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "acl file {}: {error}", path.display()),
            Self::Parse { path, error } => write!(f, "acl file {}, {error}", path.display()),
        }
    }
}

impl std::error::Error for AclLoadError {}

/// One non-blank, non-comment line.
enum Line<'a> {
    User(&'a str),
    Rule {
        pattern: bool,
        access: Access,
        filter: &'a str,
    },
}

fn is_blank(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// Splits a line the way Mosquitto does: a keyword, then for rules an optional access word
/// and the topic, which is the rest of the line (it may contain spaces).
fn parse_line(text: &str) -> Result<Option<Line<'_>>, AclLineError> {
    let text = text.trim_matches(is_blank);
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (keyword, rest) = text.split_once(is_blank).unwrap_or((text, ""));
    let rest = rest.trim_start_matches(is_blank);
    let keyword: &'static str = match keyword {
        "user" if rest.is_empty() => return Err(AclLineError::MissingUsername),
        "user" => return Ok(Some(Line::User(rest))),
        "topic" => "topic",
        "pattern" => "pattern",
        other => return Err(AclLineError::UnknownKeyword(other.to_owned())),
    };
    if rest.is_empty() {
        return Err(AclLineError::MissingTopic { keyword });
    }
    let (access, filter) = match rest.split_once(is_blank) {
        Some((word, filter)) => {
            let access = Access::parse(word).ok_or_else(|| AclLineError::InvalidAccess {
                keyword,
                access: word.to_owned(),
            })?;
            (access, filter.trim_start_matches(is_blank))
        }
        None if Access::parse(rest).is_some() => {
            return Err(AclLineError::AccessWithoutTopic {
                keyword,
                access: rest.to_owned(),
            });
        }
        None => (Access::ReadWrite, rest),
    };
    let invalid = |error| AclLineError::InvalidFilter {
        keyword,
        filter: filter.to_owned(),
        error,
    };
    let parsed = TopicFilter::try_from(filter).map_err(invalid)?;
    if parsed.share_group().is_some() {
        return Err(AclLineError::SharedFilter {
            keyword,
            filter: filter.to_owned(),
        });
    }
    Ok(Some(Line::Rule {
        pattern: keyword == "pattern",
        access,
        filter,
    }))
}

impl AclFile {
    /// Parses a whole acl_file. Blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &[u8]) -> Result<Self, AclParseError> {
        let mut anonymous = RuleSet::default();
        let mut users: HashMap<Box<str>, RuleSet> = HashMap::new();
        let mut patterns = Vec::new();
        // `None` until the first `user` line: rules go to the anonymous block.
        let mut current: Option<Box<str>> = None;
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
            let at = |error| AclParseError {
                line: index + 1,
                error,
            };
            let line = std::str::from_utf8(raw).map_err(|_| at(AclLineError::NotUtf8))?;
            match parse_line(line).map_err(at)? {
                None => {}
                Some(Line::User(name)) => {
                    users.entry(name.into()).or_default();
                    current = Some(name.into());
                }
                Some(Line::Rule {
                    pattern: true,
                    access,
                    filter,
                }) => patterns.push(Pattern {
                    access,
                    filter: filter.into(),
                }),
                Some(Line::Rule {
                    pattern: false,
                    access,
                    filter,
                }) => {
                    let set = match &current {
                        None => &mut anonymous,
                        Some(user) => users.entry(user.clone()).or_default(),
                    };
                    set.add(access, filter.into());
                }
            }
        }
        Ok(Self {
            anonymous: Arc::new(anonymous),
            users: users.into_iter().map(|(u, r)| (u, Arc::new(r))).collect(),
            patterns,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, AclLoadError> {
        let text = std::fs::read(path).map_err(|error| AclLoadError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text).map_err(|error| AclLoadError::Parse {
            path: path.to_owned(),
            error,
        })
    }

    /// A copy whose rule sets are its own (`clone` shares them by `Arc`): each shard gets
    /// one, so that compiling a client's ACL touches no reference count another core uses.
    pub fn deep_copy(&self) -> Self {
        let own = |set: &Arc<RuleSet>| Arc::new(RuleSet::clone(set));
        Self {
            anonymous: own(&self.anonymous),
            users: self
                .users
                .iter()
                .map(|(u, r)| (u.clone(), own(r)))
                .collect(),
            patterns: self.patterns.clone(),
        }
    }

    /// No rule set of `self` is one of `other`'s.
    #[cfg(test)]
    pub(crate) fn shares_nothing_with(&self, other: &Self) -> bool {
        let sets = |f: &Self| -> Vec<*const RuleSet> {
            let users = f.users.values().map(Arc::as_ptr);
            users.chain([Arc::as_ptr(&f.anonymous)]).collect()
        };
        let theirs = sets(other);
        sets(self).iter().all(|p| !theirs.contains(p))
    }

    /// The checks for one client, built at CONNECT: its user block (or the anonymous one)
    /// and every pattern with `%c` and `%u` substituted. `client_id` is the identifier the
    /// session runs under (the assigned one when the client sent none).
    pub fn compile(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        let fixed = match username {
            None => Some(self.anonymous.clone()),
            Some(user) => self.users.get(user).cloned(),
        };
        let mut own = RuleSet::default();
        let mut deny_all = false;
        for pattern in &self.patterns {
            match substitute(&pattern.filter, client_id, username) {
                Substituted::Filter(filter) => own.add(pattern.access, filter),
                Substituted::NotApplicable => {}
                Substituted::Unsafe if pattern.access == Access::Deny => deny_all = true,
                Substituted::Unsafe => {}
            }
        }
        ClientAcl {
            fixed,
            own,
            deny_all,
        }
    }
}

enum Substituted {
    Filter(Box<str>),
    /// The pattern needs a user name the client lacks, or a value is empty.
    NotApplicable,
    /// A value is not one plain level, so the result would not mean what the pattern says.
    Unsafe,
}

/// `%c` / `%u` levels of `pattern` replaced by the client's values.
fn substitute(pattern: &str, client_id: &str, username: Option<&str>) -> Substituted {
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    for (depth, level) in pattern.split('/').enumerate() {
        let value = match level {
            "%c" => client_id,
            "%u" => match username {
                Some(user) => user,
                None => return Substituted::NotApplicable,
            },
            literal => {
                push_level(&mut out, depth, literal);
                continue;
            }
        };
        if value.is_empty() {
            return Substituted::NotApplicable;
        }
        // A `$` first level would reach the `$`-topics that a pattern not starting with `$`
        // must never match.
        if value.contains(['/', '+', '#', '\0']) || (depth == 0 && value.starts_with('$')) {
            return Substituted::Unsafe;
        }
        push_level(&mut out, depth, value);
    }
    match TopicFilter::try_from(out.as_str()) {
        Ok(filter) if filter.share_group().is_none() => Substituted::Filter(out.into()),
        _ => Substituted::Unsafe,
    }
}

fn push_level(out: &mut String, depth: usize, level: &str) {
    if depth > 0 {
        out.push('/');
    }
    out.push_str(level);
}

/// One client's compiled ACL. Checks walk the client's rule filters level by level and
/// allocate nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAcl {
    /// The user's (or the anonymous) block, shared with the `AclFile`.
    fixed: Option<Arc<RuleSet>>,
    /// The patterns, substituted for this client.
    own: RuleSet,
    /// A deny pattern could not be substituted for this client: fail closed.
    deny_all: bool,
}

impl ClientAcl {
    /// May the client PUBLISH to `topic`?
    pub fn can_publish(&self, topic: &TopicName) -> bool {
        self.allows(topic.as_str(), |set| &set.write)
    }

    /// May a message on `topic` be delivered to the client?
    pub fn can_read(&self, topic: &TopicName) -> bool {
        self.allows(topic.as_str(), |set| &set.read)
    }

    /// May the client SUBSCRIBE to `filter`? Only when every topic it can match is readable,
    /// checked conservatively: one read rule must cover the filter and no deny rule may
    /// intersect it (see the module doc).
    pub fn can_subscribe(&self, filter: &TopicFilter) -> bool {
        let filter = filter.match_filter();
        if self.deny_all
            || self
                .sets()
                .any(|set| any(&set.deny, |d| intersects(d, filter)))
        {
            return false;
        }
        self.sets().any(|set| any(&set.read, |r| covers(r, filter)))
    }

    fn allows(&self, topic: &str, granted: impl Fn(&RuleSet) -> &Vec<Box<str>>) -> bool {
        if self.deny_all || topic.is_empty() {
            return false;
        }
        if self.sets().any(|set| any(&set.deny, |d| matches(d, topic))) {
            return false;
        }
        self.sets()
            .any(|set| any(granted(set), |g| matches(g, topic)))
    }

    fn sets(&self) -> impl Iterator<Item = &RuleSet> {
        self.fixed.as_deref().into_iter().chain([&self.own])
    }
}

fn any(filters: &[Box<str>], test: impl Fn(&str) -> bool) -> bool {
    filters.iter().any(|f| test(f))
}

fn starts_with_wildcard(filter: &str) -> bool {
    filter.starts_with(['+', '#'])
}

/// The first level of a filter is a literal naming `$`-topics.
fn starts_with_dollar(filter: &str) -> bool {
    filter.starts_with('$')
}

/// Does `filter` match `topic`? The MQTT rule, with [MQTT-4.7.2-1]: a filter starting with a
/// wildcard does not match a topic starting with `$`.
fn matches(filter: &str, topic: &str) -> bool {
    if starts_with_dollar(topic) && starts_with_wildcard(filter) {
        return false;
    }
    let (mut f, mut t) = (filter.split('/'), topic.split('/'));
    loop {
        match (f.next(), t.next()) {
            // `#` also matches the parent level [MQTT-4.7.1-2].
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The filter with the same topics whose `#` never stands for the empty topic: `#` and
/// `/#` would match the empty topic as their parent level, but no topic is empty
/// [MQTT-4.7.3-1]. Written out, the level walks of `covers` and `intersects` are exact.
fn without_empty_parent(filter: &str) -> &str {
    match filter {
        "#" => "+/#",
        "/#" => "/+/#",
        other => other,
    }
}

/// Does `rule` match every topic `filter` matches?
fn covers(rule: &str, filter: &str) -> bool {
    let (rule, filter) = (without_empty_parent(rule), without_empty_parent(filter));
    // `filter` reaches `$`-topics that a wildcard-first rule never matches.
    if starts_with_dollar(filter) && starts_with_wildcard(rule) {
        return false;
    }
    let (mut r, mut f) = (rule.split('/'), filter.split('/'));
    loop {
        match (r.next(), f.next()) {
            // `#` covers the rest, including the parent the filter ends at.
            (Some("#"), _) => return true,
            // Only `#` covers the filter's `#` (which also matches the parent level).
            (_, Some("#")) => return false,
            // `+` covers a filter level of `+` or of any literal.
            (Some("+"), Some(_)) => {}
            // A literal rule level covers only the same literal, never a `+`.
            (Some(a), Some(b)) if a == b && b != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Is there a topic both filters match?
fn intersects(a: &str, b: &str) -> bool {
    let (a, b) = (without_empty_parent(a), without_empty_parent(b));
    if (starts_with_wildcard(a) && starts_with_dollar(b))
        || (starts_with_wildcard(b) && starts_with_dollar(a))
    {
        return false;
    }
    let (mut x, mut y) = (a.split('/'), b.split('/'));
    loop {
        match (x.next(), y.next()) {
            // `#` matches whatever the other filter asks of the remaining levels, and the
            // parent level when the other filter ends here.
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
