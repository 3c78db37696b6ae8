//! The per-shard subscription trie: topic filter levels -> the values (subscriptions) stored
//! under each filter, and allocation-free matching of a topic name against all of them.
//!
//! A node has literal children keyed by level, one optional `+` child, the values of filters
//! that end at the node, and the values of filters that end with `/#` right after it (so
//! `a/#` lives on node `a` and matches `a` itself as well as everything below it). Shared
//! subscriptions are filed under their match filter (the part after `$share/{group}/`); the
//! values tell them apart.
//!
//! Filters without wildcards, most of them in practice, are not in the nodes at all but in one
//! hash map from filter to values: matching a topic against them is one lookup of the whole
//! topic instead of one per level, and the walk of the nodes, which then hold only wildcard
//! filters, stops at once when there are none.

use crate::protocol::{TopicFilter, TopicName};
use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;
use std::str::Split;

/// The most levels a stored filter may have (a client-controlled recursion depth otherwise).
pub const MAX_LEVELS: usize = 128;

/// `Trie::insert` refused a filter with more than `MAX_LEVELS` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterTooDeep;

impl std::fmt::Display for FilterTooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "topic filter has more than {MAX_LEVELS} levels")
    }
}

impl std::error::Error for FilterTooDeep {}

/// Subscriptions of type `V` organised by topic filter.
#[derive(Debug)]
pub struct Trie<V> {
    /// Filters with a `+` or `#` level.
    root: Node<V>,
    /// Filters without wildcards, by their match filter (which is the topic they match).
    literal: HashMap<Box<str>, Vec<V>>,
    len: usize,
}

#[derive(Debug)]
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    plus: Option<Box<Node<V>>>,
    /// Values of filters ending at this node.
    exact: Vec<V>,
    /// Values of filters ending with `#` as this node's next level.
    multi: Vec<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            plus: None,
            exact: Vec::new(),
            multi: Vec::new(),
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.multi.is_empty()
            && self.plus.is_none()
            && self.children.is_empty()
    }

    /// The node a filter's levels lead to, and whether the filter ends in `#` there.
    fn find(&self, levels: Split<'_, char>) -> Option<(&Node<V>, bool)> {
        let mut node = self;
        for level in levels {
            match level {
                "#" => return Some((node, true)),
                "+" => node = node.plus.as_deref()?,
                _ => node = node.children.get(level)?,
            }
        }
        Some((node, false))
    }

    fn find_mut(&mut self, levels: Split<'_, char>) -> Option<&mut Vec<V>> {
        let mut node = self;
        for level in levels {
            match level {
                "#" => return Some(&mut node.multi),
                "+" => node = node.plus.as_deref_mut()?,
                _ => node = node.children.get_mut(level)?,
            }
        }
        Some(&mut node.exact)
    }

    fn values_at_or_create(&mut self, levels: Split<'_, char>) -> &mut Vec<V> {
        let mut node = self;
        for level in levels {
            match level {
                "#" => return &mut node.multi,
                "+" => node = node.plus.get_or_insert_with(Box::default),
                _ => {
                    node = match node.children.entry_ref(level) {
                        EntryRef::Occupied(child) => child.into_mut(),
                        EntryRef::Vacant(slot) => {
                            slot.insert_with_key(level.into(), Node::default())
                        }
                    }
                }
            }
        }
        &mut node.exact
    }

    /// Removes the first value accepted by `pred` under the filter, pruning nodes left empty.
    fn remove(
        &mut self,
        mut levels: Split<'_, char>,
        pred: &mut impl FnMut(&V) -> bool,
    ) -> Option<V> {
        let Some(level) = levels.next() else {
            return take_first(&mut self.exact, pred);
        };
        match level {
            "#" => take_first(&mut self.multi, pred),
            "+" => {
                let child = self.plus.as_deref_mut()?;
                let removed = child.remove(levels, pred);
                if child.is_empty() {
                    self.plus = None;
                }
                removed
            }
            _ => {
                let child = self.children.get_mut(level)?;
                let removed = child.remove(levels, pred);
                if child.is_empty() {
                    self.children.remove(level);
                }
                removed
            }
        }
    }

    /// Calls `f` with every value whose filter matches the rest of the topic, `levels`.
    fn for_each_match(&self, mut levels: Split<'_, char>, f: &mut impl FnMut(&V)) {
        self.multi.iter().for_each(&mut *f);
        match levels.next() {
            None => self.exact.iter().for_each(f),
            Some(level) => {
                if let Some(child) = self.children.get(level) {
                    child.for_each_match(levels.clone(), f);
                }
                if let Some(plus) = &self.plus {
                    plus.for_each_match(levels, f);
                }
            }
        }
    }
}

fn take_first<V>(values: &mut Vec<V>, pred: &mut impl FnMut(&V) -> bool) -> Option<V> {
    let at = values.iter().position(&mut *pred)?;
    Some(values.swap_remove(at))
}

impl<V> Default for Trie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Trie<V> {
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            literal: HashMap::new(),
            len: 0,
        }
    }

    /// How many values are stored, over all filters.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `v` under `filter`'s match filter. Returns `Ok(true)` if it is the filter's
    /// first value (the shard just gained interest in it). Filters deeper than `MAX_LEVELS`
    /// are refused: matching recurses once per level, so depth must stay bounded.
    pub fn insert(&mut self, filter: &TopicFilter, v: V) -> Result<bool, FilterTooDeep> {
        if filter.levels().nth(MAX_LEVELS).is_some() {
            return Err(FilterTooDeep);
        }
        let values = if filter.has_wildcards() {
            self.root.values_at_or_create(filter.levels())
        } else {
            match self.literal.entry_ref(filter.match_filter()) {
                EntryRef::Occupied(values) => values.into_mut(),
                EntryRef::Vacant(slot) => {
                    slot.insert_with_key(filter.match_filter().into(), Vec::new())
                }
            }
        };
        values.push(v);
        self.len += 1;
        Ok(values.len() == 1)
    }

    /// Removes and returns the first value under `filter` accepted by `pred`; nodes left
    /// without values or children are freed.
    pub fn remove(&mut self, filter: &TopicFilter, mut pred: impl FnMut(&V) -> bool) -> Option<V> {
        let removed = if filter.has_wildcards() {
            self.root.remove(filter.levels(), &mut pred)
        } else {
            self.remove_literal(filter.match_filter(), &mut pred)
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn remove_literal(&mut self, filter: &str, pred: &mut impl FnMut(&V) -> bool) -> Option<V> {
        let values = self.literal.get_mut(filter)?;
        let removed = take_first(values, pred);
        if values.is_empty() {
            self.literal.remove(filter);
        }
        removed
    }

    /// The values stored under exactly `filter` (not the filters it matches).
    pub fn values(&self, filter: &TopicFilter) -> &[V] {
        if !filter.has_wildcards() {
            return self
                .literal
                .get(filter.match_filter())
                .map_or(&[], Vec::as_slice);
        }
        match self.root.find(filter.levels()) {
            Some((node, true)) => &node.multi,
            Some((node, false)) => &node.exact,
            None => &[],
        }
    }

    /// Mutable access to the first value under `filter` accepted by `pred`.
    pub fn find_mut(
        &mut self,
        filter: &TopicFilter,
        mut pred: impl FnMut(&V) -> bool,
    ) -> Option<&mut V> {
        let values = if filter.has_wildcards() {
            self.root.find_mut(filter.levels())?
        } else {
            self.literal.get_mut(filter.match_filter())?
        };
        values.iter_mut().find(|v| pred(v))
    }

    /// Whether no value is left under `filter` (the shard may tell peers it lost interest).
    pub fn is_filter_empty(&self, filter: &TopicFilter) -> bool {
        self.values(filter).is_empty()
    }

    /// Calls `f` once for every value whose filter matches `topic`, without allocating.
    /// Filters starting with `+` or `#` do not match topics starting with `$` [MQTT-4.7.2-1].
    pub fn for_each_match(&self, topic: &TopicName, mut f: impl FnMut(&V)) {
        if topic.is_empty() {
            return;
        }
        if let Some(values) = self.literal.get(topic.as_str()) {
            values.iter().for_each(&mut f);
        }
        if self.root.is_empty() {
            return;
        }
        let mut levels = topic.levels();
        if topic.is_system() {
            let first = levels.next().unwrap_or_default();
            if let Some(child) = self.root.children.get(first) {
                child.for_each_match(levels, &mut f);
            }
            return;
        }
        self.root.for_each_match(levels, &mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(s: &str) -> TopicFilter {
        match TopicFilter::try_from(s) {
            Ok(f) => f,
            Err(e) => panic!("bad test filter {s:?}: {e:?}"),
        }
    }

    fn topic(s: &str) -> TopicName {
        match TopicName::try_from(s) {
            Ok(t) => t,
            Err(e) => panic!("bad test topic {s:?}: {e:?}"),
        }
    }

    fn matches<V: Copy + Ord>(trie: &Trie<V>, t: &str) -> Vec<V> {
        let mut got = Vec::new();
        trie.for_each_match(&topic(t), |v| got.push(*v));
        got.sort_unstable();
        got
    }

    fn trie_of(filters: &[&str]) -> Trie<usize> {
        let mut trie = Trie::new();
        for (i, f) in filters.iter().enumerate() {
            assert_eq!(trie.insert(&filter(f), i).map(|_| ()), Ok(()));
        }
        trie
    }

    #[test]
    fn literal_filters_match_only_their_topic() {
        let trie = trie_of(&["a/b", "a", "a/b/c", "a//b"]);
        assert_eq!(matches(&trie, "a/b"), [0]);
        assert_eq!(matches(&trie, "a"), [1]);
        assert_eq!(matches(&trie, "a//b"), [3]);
        assert!(matches(&trie, "a/c").is_empty());
        assert!(matches(&trie, "a/b/c/d").is_empty());
    }

    #[test]
    fn plus_matches_exactly_one_level_including_an_empty_one() {
        let trie = trie_of(&["a/+", "+/b", "+", "a/+/c"]);
        assert_eq!(matches(&trie, "a/x"), [0]);
        assert_eq!(matches(&trie, "a/b"), [0, 1]);
        assert_eq!(matches(&trie, "a/"), [0]);
        assert_eq!(matches(&trie, "x"), [2]);
        assert_eq!(matches(&trie, "a/zz/c"), [3]);
        assert!(matches(&trie, "a/b/d").is_empty());
    }

    #[test]
    fn hash_matches_the_parent_and_every_level_below() {
        // [MQTT-4.7.1-2]: `sport/#` also matches `sport`.
        let trie = trie_of(&["a/#", "#", "a/b/#", "+/#"]);
        assert_eq!(matches(&trie, "a"), [0, 1, 3]);
        assert_eq!(matches(&trie, "a/b"), [0, 1, 2, 3]);
        assert_eq!(matches(&trie, "a/b/c/d"), [0, 1, 2, 3]);
        assert_eq!(matches(&trie, "b"), [1, 3]);
    }

    #[test]
    fn wildcard_first_filters_skip_dollar_topics() {
        // [MQTT-4.7.2-1]
        let trie = trie_of(&["#", "+/info", "$SYS/#", "$SYS/+", "$SYS/info"]);
        assert_eq!(matches(&trie, "$SYS/info"), [2, 3, 4]);
        assert_eq!(matches(&trie, "x/info"), [0, 1]);
    }

    #[test]
    fn shared_subscriptions_are_filed_under_their_match_filter() {
        let mut trie = Trie::new();
        assert_eq!(trie.insert(&filter("$share/g1/a/+"), 1), Ok(true));
        assert_eq!(trie.insert(&filter("a/+"), 2), Ok(false));
        assert_eq!(matches(&trie, "a/b"), [1, 2]);
        assert_eq!(trie.values(&filter("a/+")).len(), 2);
    }

    #[test]
    fn insert_reports_the_first_value_of_a_filter() {
        let mut trie = Trie::new();
        assert_eq!(trie.insert(&filter("a/#"), 1), Ok(true));
        assert_eq!(trie.insert(&filter("a/#"), 2), Ok(false));
        assert_eq!(trie.insert(&filter("a"), 3), Ok(true));
        assert_eq!(trie.len(), 3);
    }

    #[test]
    fn remove_takes_the_chosen_value_and_reports_lost_interest() {
        let mut trie = trie_of(&["a/+", "a/+", "a/#"]);
        assert_eq!(trie.remove(&filter("a/+"), |&v| v == 1), Some(1));
        assert_eq!(trie.remove(&filter("a/+"), |&v| v == 1), None);
        assert!(!trie.is_filter_empty(&filter("a/+")));
        assert_eq!(trie.remove(&filter("a/+"), |_| true), Some(0));
        assert!(trie.is_filter_empty(&filter("a/+")));
        assert!(!trie.is_filter_empty(&filter("a/#")));
        assert_eq!(matches(&trie, "a/b"), [2]);
        assert_eq!(trie.remove(&filter("x/y"), |_| true), None);
        assert_eq!(trie.len(), 1);
    }

    #[test]
    fn removing_the_last_values_prunes_every_node() {
        let filters = ["a/b/c", "a/+/c", "+/#", "a/b/#", "$SYS/x", "a//b"];
        let mut trie = trie_of(&filters);
        for (i, f) in filters.iter().enumerate() {
            assert_eq!(trie.remove(&filter(f), |&v| v == i), Some(i));
        }
        assert!(trie.is_empty());
        assert!(trie.root.is_empty());
    }

    #[test]
    fn filters_without_wildcards_are_matched_by_one_lookup_not_the_nodes() {
        let mut trie = trie_of(&["a/b", "$SYS/x", "a//b", "$share/g/a/b"]);
        assert!(
            trie.root.is_empty(),
            "no node was made for a literal filter"
        );
        assert_eq!(matches(&trie, "a/b"), [0, 3]);
        assert_eq!(matches(&trie, "$SYS/x"), [1]);
        assert_eq!(trie.values(&filter("a/b")), [0, 3]);
        assert_eq!(trie.remove(&filter("a/b"), |&v| v == 0), Some(0));
        assert_eq!(trie.remove(&filter("$share/g/a/b"), |&v| v == 3), Some(3));
        assert!(trie.is_filter_empty(&filter("a/b")));
        assert!(
            !trie.literal.contains_key("a/b"),
            "an emptied filter is freed"
        );
    }

    #[test]
    fn find_mut_updates_a_stored_value() {
        let mut trie = trie_of(&["a/b", "a/b"]);
        if let Some(v) = trie.find_mut(&filter("a/b"), |&v| v == 1) {
            *v = 10;
        }
        assert_eq!(matches(&trie, "a/b"), [0, 10]);
        assert!(trie.find_mut(&filter("a/c"), |_| true).is_none());
    }

    #[test]
    fn filters_deeper_than_the_limit_are_refused() {
        let mut trie = Trie::new();
        let deepest = vec!["+"; MAX_LEVELS].join("/");
        assert_eq!(trie.insert(&filter(&deepest), 1), Ok(true));
        let too_deep = format!("{deepest}/#");
        assert_eq!(trie.insert(&filter(&too_deep), 2), Err(FilterTooDeep));
        assert_eq!(trie.len(), 1);
        let topic_name = vec!["x"; MAX_LEVELS].join("/");
        assert_eq!(matches(&trie, &topic_name), [1]);
    }

    #[test]
    fn empty_topic_matches_nothing() {
        let trie = trie_of(&["#", "+"]);
        let mut hits = 0;
        trie.for_each_match(&TopicName::empty(), |_| hits += 1);
        assert_eq!(hits, 0);
    }

    #[test]
    fn agrees_with_topic_filter_matches_on_random_filters_and_topics() {
        const LEVELS: [&str; 6] = ["a", "b", "$SYS", "", "c", "dd"];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut filters = Vec::new();
        for _ in 0..400 {
            let depth = 1 + next(4);
            let mut levels: Vec<&str> = (0..depth)
                .map(|_| match next(8) {
                    0 => "+",
                    i => LEVELS[i % LEVELS.len()],
                })
                .collect();
            if next(4) == 0 {
                levels.push("#");
            }
            let mut s = levels.join("/");
            if next(10) == 0 {
                s = format!("$share/g/{s}");
            }
            // A lone empty level is not a valid filter; skip it.
            filters.extend(TopicFilter::try_from(s.as_str()).ok());
        }
        let mut trie = Trie::new();
        for (i, f) in filters.iter().enumerate() {
            assert_eq!(trie.insert(f, i).map(|_| ()), Ok(()));
        }
        for i in (0..filters.len()).step_by(3) {
            assert_eq!(trie.remove(&filters[i], |&v| v == i), Some(i));
        }
        let mut total_hits = 0;
        for _ in 0..2_000 {
            let depth = 1 + next(5);
            let levels: Vec<&str> = (0..depth).map(|_| LEVELS[next(LEVELS.len())]).collect();
            let Ok(t) = TopicName::try_from(levels.join("/").as_str()) else {
                continue;
            };
            let mut got = Vec::new();
            trie.for_each_match(&t, |&v| got.push(v));
            got.sort_unstable();
            let want: Vec<usize> = (0..filters.len())
                .filter(|i| i % 3 != 0 && filters[*i].matches(&t))
                .collect();
            assert_eq!(got, want, "topic {t:?}");
            total_hits += got.len();
        }
        assert!(
            total_hits > 2_000,
            "the random cases barely match: {total_hits}"
        );
    }
}
