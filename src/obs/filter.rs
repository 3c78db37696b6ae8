//! `LogFilter`: which log records are written, as a `RUST_LOG`-style list: a default level
//! and per-module levels, e.g. `info` or `warn,ringmq::shard=debug`.

use log::{Level, LevelFilter};
use std::fmt;
use std::str::FromStr;

/// A default level plus per-target levels; the longest target prefix that matches wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    default: LevelFilter,
    /// `(target prefix, level)`, longest prefix first.
    modules: Vec<(String, LevelFilter)>,
}

impl Default for LogFilter {
    fn default() -> Self {
        Self::level(LevelFilter::Info)
    }
}

/// Why a filter string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFilter(pub String);

impl fmt::Display for BadFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a log level (off, error, warn, info, debug, trace) or \
             module=level",
            self.0
        )
    }
}

impl std::error::Error for BadFilter {}

impl LogFilter {
    /// Every target at `level`.
    pub fn level(level: LevelFilter) -> Self {
        Self {
            default: level,
            modules: Vec::new(),
        }
    }

    /// Whether a record of `level` from `target` is written.
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        level <= self.level_of(target)
    }

    fn level_of(&self, target: &str) -> LevelFilter {
        self.modules
            .iter()
            .find(|(prefix, _)| is_within(target, prefix))
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level any target gets: `log`'s global cut-off, checked before a
    /// record is even built.
    pub fn max_level(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, Ord::max)
    }
}

/// `target` is `prefix` or a module inside it (`ringmq::shard` covers `ringmq::shard::conn`,
/// not `ringmq::sharding`).
fn is_within(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    LevelFilter::from_str(text.trim()).ok()
}

impl FromStr for LogFilter {
    type Err = BadFilter;

    fn from_str(text: &str) -> Result<Self, BadFilter> {
        let bad = || BadFilter(text.to_owned());
        let mut filter = Self::level(LevelFilter::Info);
        let mut saw_default = false;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => {
                    filter.default = parse_level(part).ok_or_else(bad)?;
                    saw_default = true;
                }
                Some((module, level)) => {
                    let module = module.trim();
                    let valid = !module.is_empty()
                        && module
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                    if !valid {
                        return Err(bad());
                    }
                    let level = parse_level(level).ok_or_else(bad)?;
                    filter.modules.retain(|(m, _)| m != module);
                    filter.modules.push((module.to_owned(), level));
                }
            }
        }
        if !saw_default && filter.modules.is_empty() {
            return Err(bad());
        }
        filter
            .modules
            .sort_by_key(|(module, _)| std::cmp::Reverse(module.len()));
        Ok(filter)
    }
}

impl fmt::Display for LogFilter {
    /// The form `from_str` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = |l: LevelFilter| l.as_str().to_ascii_lowercase();
        f.write_str(&level(self.default))?;
        for (module, l) in &self.modules {
            write!(f, ",{module}={}", level(*l))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> LogFilter {
        match text.parse() {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_bare_level_applies_to_every_target() {
        let f = filter("warn");
        assert!(f.enabled("ringmq::shard", Level::Warn));
        assert!(!f.enabled("ringmq::shard", Level::Info));
        assert_eq!(f.max_level(), LevelFilter::Warn);
        assert_eq!(LogFilter::default(), filter("info"));
    }

    #[test]
    fn the_longest_matching_module_wins_at_module_boundaries() {
        let f = filter("warn, ringmq::shard=debug,ringmq::shard::state=error");
        assert!(f.enabled("ringmq::shard::conn", Level::Debug));
        assert!(!f.enabled("ringmq::shard::state::closing", Level::Warn));
        assert!(
            !f.enabled("ringmq::sharding", Level::Info),
            "not a module of it"
        );
        assert!(f.enabled("ringmq::runtime", Level::Warn));
        assert_eq!(f.max_level(), LevelFilter::Debug);
    }

    #[test]
    fn a_filter_prints_back_to_itself() {
        for text in ["info", "off", "warn,ringmq::shard=debug", "DEBUG"] {
            let f = filter(text);
            assert_eq!(filter(&f.to_string()), f, "{text}");
        }
    }

    #[test]
    fn nonsense_is_refused() {
        for text in ["", "loud", "ringmq=loud", "=info", "a b=info", ","] {
            assert!(text.parse::<LogFilter>().is_err(), "{text:?}");
        }
    }
}
