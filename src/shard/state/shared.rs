//! MQTT 5.0 shared subscriptions (`$share/{group}/{filter}`, section 4.8.2): each message
//! goes to one member of each matching group, wherever the members live, and a member that
//! leaves, goes offline or stalls does not take QoS 1/2 messages down with it.
//!
//! - **Who has members.** Every shard knows, per group, how many members each shard has and
//!   how many of them are online: a shard broadcasts `ShareInterest { members, online }` (its
//!   absolute counts) whenever one changes: a join, a leave, a member's client connecting or
//!   going away. Each ring is FIFO, so the latest announcement wins.
//! - **Which shard.** The shard that receives the PUBLISH picks a member shard round robin,
//!   weighted by online members, or by members while no member is online anywhere (then the
//!   message waits in an offline member's session). A peer gets one `SharedPublish`.
//! - **Which member.** That shard gives the message to its readiest local member
//!   (`session::Readiness`: ready, busy, stalled, offline), round robin among equals.
//! - **Bounces.** A shard that has no member left (it left while the message was on its way)
//!   passes the message on to another member shard; so does one whose members are all
//!   offline while another shard has one online, and, once, one whose members are all
//!   stalled while another shard has one online. `hops` bounds the bounces (`max_hops`), so
//!   a message cannot circle; one no shard has a member for is dropped and counted (there is
//!   no subscriber).
//! - **A member's session ends** (clean start, expiry 0, expiry, takeover by a clean start):
//!   its queued messages and unacknowledged QoS 1 messages from groups go to another member
//!   (`Session::take_undelivered_shared`); an unacknowledged QoS 2 one goes to nobody else
//!   [MQTT-4.8.2-5]. A member that only goes offline keeps its messages: they are resent when
//!   it returns [MQTT-4.8.2-4], or go to another member when its session expires.
//!
//! Stalls are not announced: readiness changes with every acknowledgement, and the shard that
//! has the stalled member can bounce the message itself.

use super::ShardState;
use super::flow::GateCause;
use super::mesh_out::Sent;
use super::routing::{Held, Offer};
use super::subscriptions::LocalSub;
use crate::protocol::{TopicFilter, TopicName};
use crate::session::{Message, Readiness};
use crate::shard::MeshMsg;
use crate::trie::Trie;
use hashbrown::HashMap;
use std::time::Instant;

/// One shared subscription group (`$share/{group}/{filter}` as a whole is its key).
#[derive(Debug, Default)]
struct Group {
    /// Every shard with members (this one included), by ascending shard id.
    shards: Vec<MemberShard>,
    next_shard: usize,
    /// Bounces keep their own rotation, so that they do not skew the one above.
    next_bounce: usize,
    /// This shard's members.
    local: Vec<LocalSub>,
    next_local: usize,
}

/// One shard's members of a group, as it last announced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MemberShard {
    shard: usize,
    pub members: u32,
    /// Members whose client is connected.
    pub online: u32,
}

/// Whether shards other than this one have members of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Elsewhere {
    members: bool,
    online: bool,
}

/// What the shard holding a shared message does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Give it to this local member.
    Deliver(LocalSub),
    /// Pass it on to another member shard.
    Bounce,
    /// No shard has a member: the message has no subscriber in this group.
    Drop,
}

/// The shared subscription groups this shard knows of (any shard's members), by filter.
#[derive(Debug, Default)]
pub(super) struct SharedGroups {
    /// The groups' match filters, to find the groups of a topic.
    trie: Trie<TopicFilter>,
    groups: HashMap<TopicFilter, Group>,
    /// Scratch: the groups matching the message being routed.
    matches: Vec<TopicFilter>,
}

impl SharedGroups {
    fn entry(&mut self, filter: &TopicFilter) -> &mut Group {
        if !self.groups.contains_key(filter) {
            // The session refused filters the trie cannot take, and peers only announce
            // groups their own trie accepted.
            let _ = self.trie.insert(filter, filter.clone());
        }
        self.groups.entry(filter.clone()).or_default()
    }

    /// A session joins a group, or changes its options in it; true if it is a new member.
    pub fn join(&mut self, filter: &TopicFilter, sub: LocalSub) -> bool {
        let group = self.entry(filter);
        if let Some(existing) = group.local.iter_mut().find(|s| s.session == sub.session) {
            *existing = sub;
            return false;
        }
        group.local.push(sub);
        true
    }

    /// A session leaves a group; true if it was a member.
    pub fn leave(&mut self, session: usize, filter: &TopicFilter) -> bool {
        let Some(group) = self.groups.get_mut(filter) else {
            return false;
        };
        let before = group.local.len();
        group.local.retain(|s| s.session != session);
        group.local.len() < before
    }

    /// A peer's members of a group changed.
    pub fn set_peer_counts(
        &mut self,
        from: usize,
        filter: &TopicFilter,
        members: u32,
        online: u32,
    ) {
        if members > 0 {
            self.entry(filter);
        }
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let counts = MemberShard {
            shard: from,
            members,
            online,
        };
        set_member_shard(&mut group.shards, counts);
        self.forget_if_empty(filter);
    }

    /// Recounts shard `me`'s members of the group; the new counts if they changed (every
    /// peer must then hear of them).
    pub fn recount(
        &mut self,
        filter: &TopicFilter,
        me: usize,
        is_online: impl Fn(usize) -> bool,
    ) -> Option<MemberShard> {
        let group = self.groups.get_mut(filter)?;
        let online = group.local.iter().filter(|s| is_online(s.session)).count();
        let counts = MemberShard {
            shard: me,
            members: u32::try_from(group.local.len()).unwrap_or(u32::MAX),
            online: u32::try_from(online).unwrap_or(u32::MAX),
        };
        let changed = set_member_shard(&mut group.shards, counts);
        self.forget_if_empty(filter);
        changed.then_some(counts)
    }

    fn forget_if_empty(&mut self, filter: &TopicFilter) {
        let empty = self
            .groups
            .get(filter)
            .is_some_and(|g| g.shards.is_empty() && g.local.is_empty());
        if empty {
            self.groups.remove(filter);
            self.trie.remove(filter, |f| f == filter);
        }
    }

    /// The groups matching `topic`; hand the vector back with `restore_matches`.
    /// No shared subscription on any shard: the common case, checked before any matching.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn take_matches(&mut self, topic: &TopicName) -> Vec<TopicFilter> {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        if !self.groups.is_empty() {
            self.trie.for_each_match(topic, |f| matches.push(f.clone()));
        }
        matches
    }

    pub fn restore_matches(&mut self, mut matches: Vec<TopicFilter>) {
        matches.clear();
        self.matches = matches;
    }

    /// A member shard of the group other than `exclude`, picked round robin (weighted by
    /// online members while any is online, else by members), with a rotation of its own for
    /// bounces.
    pub fn pick_shard(&mut self, filter: &TopicFilter, exclude: Option<usize>) -> Option<usize> {
        let group = self.groups.get_mut(filter)?;
        let next = match exclude {
            None => &mut group.next_shard,
            Some(_) => &mut group.next_bounce,
        };
        pick_member_shard(&group.shards, next, exclude)
    }

    /// What shard `me` does with a message for the group that bounced `hops` times: give it
    /// to the readiest local member (round robin among equals), or bounce it on (module docs).
    pub fn step(
        &mut self,
        filter: &TopicFilter,
        me: usize,
        (hops, max_hops): (u8, u8),
        readiness: impl Fn(&LocalSub) -> Readiness,
    ) -> Step {
        let Some(group) = self.groups.get_mut(filter) else {
            return Step::Drop;
        };
        let local = pick_local(&group.local, group.next_local, readiness);
        match next_step(local, hops, max_hops, elsewhere(&group.shards, me)) {
            LocalStep::Deliver(i) => {
                group.next_local = i.wrapping_add(1);
                group.local.get(i).map_or(Step::Drop, |&m| Step::Deliver(m))
            }
            LocalStep::Bounce => Step::Bounce,
            LocalStep::Drop => Step::Drop,
        }
    }
}

impl ShardState {
    /// A session joins a group (or changes its options in it). Retained messages are not
    /// sent for shared subscriptions (section 4.8.2).
    pub(super) fn join_shared(&mut self, filter: &TopicFilter, sub: LocalSub) {
        if self.shared.join(filter, sub) {
            self.announce_members(filter);
        }
    }

    pub(super) fn leave_shared(&mut self, session_key: usize, filter: &TopicFilter) {
        if self.shared.leave(session_key, filter) {
            self.announce_members(filter);
        }
    }

    /// A session's client connected or went away while the session stays: its groups count
    /// it online or offline from now on.
    pub(super) fn announce_presence(&mut self, session_key: usize) {
        let Some(entry) = self.sessions.get(session_key) else {
            return;
        };
        let groups: Vec<TopicFilter> = entry
            .session
            .subscriptions()
            .filter(|(f, _)| f.share_group().is_some())
            .map(|(f, _)| f.clone())
            .collect();
        for filter in &groups {
            self.announce_members(filter);
        }
    }

    /// Recounts this shard's members of the group and, if the counts changed, tells every
    /// peer.
    fn announce_members(&mut self, filter: &TopicFilter) {
        let sessions = &self.sessions;
        let me = self.id();
        let Some(counts) = self.shared.recount(filter, me, |s| sessions.is_online(s)) else {
            return;
        };
        let _: Held = self.broadcast(|| MeshMsg::ShareInterest {
            filter: filter.clone(),
            members: counts.members,
            online: counts.online,
        });
    }

    /// At the shard that received the PUBLISH: one member shard per matching group.
    pub(super) fn route_shared(&mut self, msg: &Message, now: Instant) -> Held {
        if self.shared.is_empty() {
            return None;
        }
        let matches = self.shared.take_matches(&msg.topic);
        self.stats.routed += matches.len() as u64;
        let mut held = None;
        for filter in &matches {
            held = self
                .send_to_member_shard(filter, msg, 0, None, now)
                .flatten()
                .or(held);
        }
        self.shared.restore_matches(matches);
        held
    }

    /// Gives back to their groups the messages of a member whose session ended (section
    /// 4.8.2: they SHOULD go to another member). One that expired meanwhile is dropped
    /// [MQTT-3.3.2-5]; one whose group has no member left has no subscriber and is counted.
    pub(super) fn return_to_groups(&mut self, messages: Vec<(TopicFilter, Message)>, now: Instant) {
        for (filter, msg) in messages {
            let Some(msg) = self.fresh(msg, now) else {
                continue;
            };
            if self
                .send_to_member_shard(&filter, &msg, 0, None, now)
                .is_none()
            {
                self.counters.dropped_shared += 1;
            }
        }
    }

    /// Sends `msg` to a member shard of the group other than `exclude`, this shard included;
    /// what that held up. `None` if the group has no such shard.
    fn send_to_member_shard(
        &mut self,
        filter: &TopicFilter,
        msg: &Message,
        hops: u8,
        exclude: Option<usize>,
        now: Instant,
    ) -> Option<Held> {
        let shard = self.shared.pick_shard(filter, exclude)?;
        if shard == self.id() {
            return Some(self.deliver_shared_here(filter, msg, hops, now));
        }
        let forward = MeshMsg::SharedPublish {
            filter: filter.clone(),
            msg: msg.clone(),
            hops,
        };
        let sent = self.mesh.send(shard, forward);
        Some((sent == Sent::Overflowed).then_some(GateCause::Peer(shard)))
    }

    /// A message for the group reached this shard, `hops` bounces after the shard that
    /// picked it: deliver it to the readiest local member, or bounce it on (module docs).
    pub(super) fn deliver_shared_here(
        &mut self,
        filter: &TopicFilter,
        msg: &Message,
        hops: u8,
        now: Instant,
    ) -> Held {
        // Bounces a message may take: one for a stall, then enough to try every other shard.
        let max_hops = u8::try_from(self.shards()).unwrap_or(u8::MAX);
        let sessions = &self.sessions;
        let readiness = |sub: &LocalSub| {
            let qos = msg.qos.min(sub.options.qos);
            sessions
                .get(sub.session)
                .map_or(Readiness::Offline, |e| e.session.readiness(qos))
        };
        let me = self.id();
        match self.shared.step(filter, me, (hops, max_hops), readiness) {
            Step::Deliver(member) => self.deliver_to_member(filter, member, msg, now),
            Step::Bounce => {
                let bounced = hops.saturating_add(1);
                let held = self.send_to_member_shard(filter, msg, bounced, Some(me), now);
                if held.is_none() {
                    self.counters.dropped_shared += 1;
                }
                held.flatten()
            }
            Step::Drop => {
                self.counters.dropped_shared += 1;
                None
            }
        }
    }

    fn deliver_to_member(
        &mut self,
        filter: &TopicFilter,
        member: LocalSub,
        msg: &Message,
        now: Instant,
    ) -> Held {
        let retain = msg.retain && member.options.retain_as_published;
        let qos = msg.qos.min(member.options.qos);
        let tagged;
        let msg = if member.id == 0 {
            msg
        } else {
            // A copy of its own (Subscription Identifier): encoded on its own.
            tagged = msg.with_subscription_ids(&[member.id]);
            &tagged
        };
        let offer = Offer {
            qos,
            retain,
            group: Some(filter),
        };
        self.conns.begin_message();
        let held = self.deliver_to(member.session, msg, offer, now);
        self.conns.begin_message();
        held
    }
}

/// Sets one shard's counts (removing the shard when it has no member); true if they changed.
fn set_member_shard(shards: &mut Vec<MemberShard>, counts: MemberShard) -> bool {
    match shards.binary_search_by_key(&counts.shard, |s| s.shard) {
        Ok(at) if counts.members == 0 => {
            shards.remove(at);
            true
        }
        Ok(at) if shards[at] == counts => false,
        Ok(at) => {
            shards[at] = counts;
            true
        }
        Err(_) if counts.members == 0 => false,
        Err(at) => {
            shards.insert(at, counts);
            true
        }
    }
}

/// Round robin over the members of the shards other than `exclude`: member k of the total
/// lives on the shard whose cumulative count first exceeds k. Only online members count
/// while there is one; offline ones count when none is online (their sessions queue).
fn pick_member_shard(
    shards: &[MemberShard],
    next: &mut usize,
    exclude: Option<usize>,
) -> Option<usize> {
    let candidates = || shards.iter().filter(move |s| Some(s.shard) != exclude);
    let any_online = candidates().any(|s| s.online > 0);
    let weight = |s: &MemberShard| u64::from(if any_online { s.online } else { s.members });
    let total: u64 = candidates().map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut k = (*next as u64) % total;
    *next = next.wrapping_add(1);
    for s in candidates() {
        if k < weight(s) {
            return Some(s.shard);
        }
        k -= weight(s);
    }
    None
}

fn elsewhere(shards: &[MemberShard], me: usize) -> Elsewhere {
    let others = || shards.iter().filter(|s| s.shard != me);
    Elsewhere {
        members: others().any(|s| s.members > 0),
        online: others().any(|s| s.online > 0),
    }
}

/// The readiest member, round robin from `start` among the equally ready: the first ready
/// one, or else the first of the best readiness found.
fn pick_local<T>(
    members: &[T],
    start: usize,
    readiness: impl Fn(&T) -> Readiness,
) -> Option<(usize, Readiness)> {
    let n = members.len();
    let mut best: Option<(usize, Readiness)> = None;
    for k in 0..n {
        let i = start.wrapping_add(k) % n;
        let r = readiness(&members[i]);
        if r == Readiness::Ready {
            return Some((i, r));
        }
        if best.is_none_or(|(_, b)| r > b) {
            best = Some((i, r));
        }
    }
    best
}

/// `Step` before the member is looked up: by its index in `Group::local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalStep {
    Deliver(usize),
    Bounce,
    Drop,
}

/// The rule for a shared message at a member shard, given its readiest local member.
/// - A ready or busy member takes it.
/// - Stalled members only: it goes once to another shard with an online member, if any (a
///   message already bounced stays: the other shards had their chance).
/// - Offline members only: it goes to a shard with an online member while bounces are left;
///   with none online anywhere it waits in the offline member's session.
/// - No member: on to any member shard while bounces are left, else dropped.
fn next_step(
    local: Option<(usize, Readiness)>,
    hops: u8,
    max_hops: u8,
    elsewhere: Elsewhere,
) -> LocalStep {
    match local {
        Some((i, Readiness::Ready | Readiness::Busy)) => LocalStep::Deliver(i),
        Some((_, Readiness::Stalled)) if hops == 0 && elsewhere.online => LocalStep::Bounce,
        Some((_, Readiness::Offline)) if hops < max_hops && elsewhere.online => LocalStep::Bounce,
        Some((i, _)) => LocalStep::Deliver(i),
        None if hops < max_hops && elsewhere.members => LocalStep::Bounce,
        None => LocalStep::Drop,
    }
}

#[cfg(test)]
mod tests;
