//! `Subscriptions`: the shard's non-shared subscriptions (the local trie, with a count per
//! filter that tells the first and last subscriber apart) and the interest of peer shards
//! (the remote trie: which peers have subscribers for which filters). Shared subscription
//! groups are `shared::SharedGroups`.

use crate::protocol::{SubscriptionOptions, TopicFilter, TopicName};
use crate::trie::Trie;
use hashbrown::HashMap;

/// A local subscription as the trie stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSub {
    pub(super) session: usize,
    pub(super) options: SubscriptionOptions,
    /// 5.0 Subscription Identifier, 0 for none.
    pub(super) id: u32,
}

/// A change of this shard's interest in a filter, which every peer must hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interest {
    /// The filter has its first local subscriber.
    First,
    /// The filter lost its last local subscriber.
    Last,
    Unchanged,
}

/// Scratch of one routed message, kept for its capacity.
#[derive(Debug, Default)]
pub(super) struct Matches {
    /// The local subscriptions matching the topic, grouped by session.
    pub subs: Vec<LocalSub>,
    /// The Subscription Identifiers of one subscriber's matching subscriptions.
    pub ids: Vec<u32>,
}

#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    local: Trie<LocalSub>,
    /// Local subscribers per filter, to tell first/last for interest messages.
    local_refs: HashMap<TopicFilter, u32>,
    /// Filters peers have subscribers for; the value is the peer's shard id.
    remote: Trie<usize>,
    matches: Matches,
    /// Scratch: which peers have interest in the message being routed, by shard id.
    peers: Vec<bool>,
}

impl Subscriptions {
    pub fn new(shards: usize) -> Self {
        Self {
            peers: vec![false; shards],
            ..Self::default()
        }
    }

    /// Adds (or, when not `is_new`, replaces [MQTT-3.8.4-3]) a session's subscription;
    /// `None` if the trie refused the filter (the session already refused filters deeper than
    /// the trie takes, so this does not happen).
    pub fn add(&mut self, filter: &TopicFilter, sub: LocalSub, is_new: bool) -> Option<Interest> {
        if !is_new {
            self.local.remove(filter, |s| s.session == sub.session);
        }
        self.local.insert(filter, sub).ok()?;
        if !is_new {
            return Some(Interest::Unchanged);
        }
        let count = self.local_refs.entry(filter.clone()).or_insert(0);
        *count += 1;
        Some(if *count == 1 {
            Interest::First
        } else {
            Interest::Unchanged
        })
    }

    pub fn remove(&mut self, session: usize, filter: &TopicFilter) -> Interest {
        self.local.remove(filter, |s| s.session == session);
        let Some(count) = self.local_refs.get_mut(filter) else {
            return Interest::Unchanged;
        };
        *count -= 1;
        if *count > 0 {
            return Interest::Unchanged;
        }
        self.local_refs.remove(filter);
        Interest::Last
    }

    /// The local subscriptions matching `topic`, grouped by session. The caller hands the
    /// vector back with `restore_matches` so its capacity is reused.
    pub fn take_matches(&mut self, topic: &TopicName) -> Matches {
        let mut matches = std::mem::take(&mut self.matches);
        matches.subs.clear();
        self.local
            .for_each_match(topic, |sub| matches.subs.push(*sub));
        matches.subs.sort_unstable_by_key(|s| s.session);
        matches
    }

    pub fn restore_matches(&mut self, matches: Matches) {
        self.matches = matches;
    }

    /// Which peers have interest in `topic`, indexed by shard id.
    pub fn interested_peers(&mut self, topic: &TopicName) -> &[bool] {
        let peers = &mut self.peers;
        peers.iter_mut().for_each(|m| *m = false);
        self.remote.for_each_match(topic, |&peer| {
            if let Some(m) = peers.get_mut(peer) {
                *m = true;
            }
        });
        &self.peers
    }

    /// A peer announced its first subscriber (`add`) or lost its last one for `filter`.
    pub fn on_peer_interest(&mut self, peer: usize, filter: &TopicFilter, add: bool) {
        if add {
            // Peers only announce filters their own trie accepted.
            let _ = self.remote.insert(filter, peer);
        } else {
            self.remote.remove(filter, |&p| p == peer);
        }
    }
}
