//! MQTT 5.0 shared subscriptions (`$share/{group}/{filter}`, section 4.8.2): each message
//! goes to one member of each matching group, wherever the members live.
//!
//! Every shard knows, per group, how many members each shard has (`ShareInterest` broadcasts
//! on every local join and leave). The shard that receives the PUBLISH picks a member shard
//! round robin weighted by those counts and, if it is a peer, sends it `SharedPublish`; that
//! shard picks one of its local members round robin. So each message reaches each group once,
//! with one mesh hop, and the members share the messages evenly wherever they live.

use super::*;

/// One shared subscription group (`$share/{group}/{filter}` as a whole is its key).
#[derive(Debug, Default)]
pub(super) struct Group {
    /// Shards with members and how many, by ascending shard id.
    shards: Vec<(usize, u32)>,
    next_shard: usize,
    /// This shard's members.
    local: Vec<LocalSub>,
    next_local: usize,
}

impl ShardState {
    /// A session joins a group (or changes its options in it). Retained messages are not
    /// sent for shared subscriptions (section 4.8.2).
    pub(super) fn join_shared(&mut self, filter: TopicFilter, sub: LocalSub) {
        let group = self.group_entry(&filter);
        if let Some(existing) = group.local.iter_mut().find(|s| s.session == sub.session) {
            *existing = sub;
            return;
        }
        group.local.push(sub);
        self.add_group_member(&filter, self.id);
        self.broadcast_share_interest(&filter, true);
    }

    pub(super) fn leave_shared(&mut self, session_key: usize, filter: &TopicFilter) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let before = group.local.len();
        group.local.retain(|s| s.session != session_key);
        if group.local.len() < before {
            self.remove_group_member(filter, self.id);
            self.broadcast_share_interest(filter, false);
        }
    }

    /// A member of a group joined (`add`) or left on a peer.
    pub(super) fn on_share_interest(&mut self, from: usize, filter: TopicFilter, add: bool) {
        if add {
            self.group_entry(&filter);
            self.add_group_member(&filter, from);
        } else {
            self.remove_group_member(&filter, from);
        }
    }

    fn group_entry(&mut self, filter: &TopicFilter) -> &mut Group {
        if !self.groups.contains_key(filter) {
            // The session refused filters the trie cannot take, and peers only announce
            // groups their own trie accepted.
            let _ = self.shared.insert(filter, filter.clone());
        }
        self.groups.entry(filter.clone()).or_default()
    }

    fn add_group_member(&mut self, filter: &TopicFilter, shard: usize) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        match group.shards.binary_search_by_key(&shard, |&(s, _)| s) {
            Ok(at) => group.shards[at].1 += 1,
            Err(at) => group.shards.insert(at, (shard, 1)),
        }
    }

    fn remove_group_member(&mut self, filter: &TopicFilter, shard: usize) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        if let Ok(at) = group.shards.binary_search_by_key(&shard, |&(s, _)| s) {
            group.shards[at].1 -= 1;
            if group.shards[at].1 == 0 {
                group.shards.remove(at);
            }
        }
        if group.shards.is_empty() && group.local.is_empty() {
            self.groups.remove(filter);
            self.shared.remove(filter, |f| f == filter);
        }
    }

    fn broadcast_share_interest(&mut self, filter: &TopicFilter, add: bool) {
        for peer in 0..self.shards {
            if peer != self.id {
                let msg = MeshMsg::ShareInterest {
                    filter: filter.clone(),
                    add,
                };
                self.send_to_peer(peer, msg);
            }
        }
    }

    /// At the shard that received the PUBLISH: one member shard per matching group.
    pub(super) fn route_shared(&mut self, msg: &Message) {
        if self.groups.is_empty() {
            return;
        }
        let matches = &mut self.shared_matches;
        matches.clear();
        self.shared
            .for_each_match(&msg.topic, |f| matches.push(f.clone()));
        for i in 0..self.shared_matches.len() {
            let filter = self.shared_matches[i].clone();
            let Some(group) = self.groups.get_mut(&filter) else {
                continue;
            };
            let Some(shard) = pick_member_shard(group) else {
                continue;
            };
            if shard == self.id {
                self.deliver_shared_local(&filter, msg);
            } else {
                let forward = MeshMsg::SharedPublish {
                    filter,
                    msg: msg.clone(),
                };
                self.send_to_peer(shard, forward);
            }
        }
    }

    /// Delivers to one local member of the group, round robin. A group that lost its last
    /// local member while the message was in flight has nobody left here to take it.
    pub(super) fn deliver_shared_local(&mut self, filter: &TopicFilter, msg: &Message) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let members = group.local.len();
        if members == 0 {
            return;
        }
        // Round robin, skipping members whose client is offline while any is online.
        let sessions = &self.sessions;
        let online = |sub: &LocalSub| sessions.get(sub.session).is_some_and(|e| e.conn.is_some());
        let start = group.next_local;
        let pick = (0..members)
            .map(|k| start.wrapping_add(k) % members)
            .find(|&i| online(&group.local[i]))
            .unwrap_or(start % members);
        let member = group.local[pick];
        group.next_local = pick.wrapping_add(1);
        let retain = msg.retain && member.options.retain_as_published;
        let qos = msg.qos.min(member.options.qos);
        if member.id == 0 {
            self.encoder.begin();
            self.deliver_to(member.session, msg, qos, retain);
        } else {
            let tagged = msg.with_subscription_ids(&[member.id]);
            self.deliver_tagged(member.session, &tagged, qos, retain);
        }
    }
}

/// Round robin over the group's members: member k of the total lives on the shard whose
/// cumulative member count first exceeds k.
fn pick_member_shard(group: &mut Group) -> Option<usize> {
    let total: u64 = group.shards.iter().map(|&(_, n)| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let mut k = (group.next_shard as u64) % total;
    group.next_shard = group.next_shard.wrapping_add(1);
    for &(shard, members) in &group.shards {
        if k < u64::from(members) {
            return Some(shard);
        }
        k -= u64::from(members);
    }
    None
}
