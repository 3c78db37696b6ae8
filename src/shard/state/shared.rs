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

use super::*;
use crate::session::Readiness;

/// One shared subscription group (`$share/{group}/{filter}` as a whole is its key).
#[derive(Debug, Default)]
pub(super) struct Group {
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
    members: u32,
    /// Members whose client is connected.
    online: u32,
}

/// Whether shards other than this one have members of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Elsewhere {
    members: bool,
    online: bool,
}

/// What the shard holding a shared message does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Give it to this local member (an index into `Group::local`).
    Deliver(usize),
    /// Pass it on to another member shard.
    Bounce,
    /// No shard has a member: the message has no subscriber in this group.
    Drop,
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
        self.announce_members(&filter);
    }

    pub(super) fn leave_shared(&mut self, session_key: usize, filter: &TopicFilter) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let before = group.local.len();
        group.local.retain(|s| s.session != session_key);
        if group.local.len() < before {
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

    /// A peer's members of a group changed.
    pub(super) fn on_share_interest(
        &mut self,
        from: usize,
        filter: TopicFilter,
        members: u32,
        online: u32,
    ) {
        if members > 0 {
            self.group_entry(&filter);
        }
        let Some(group) = self.groups.get_mut(&filter) else {
            return;
        };
        let counts = MemberShard {
            shard: from,
            members,
            online,
        };
        set_member_shard(&mut group.shards, counts);
        self.forget_if_empty(&filter);
    }

    fn group_entry(&mut self, filter: &TopicFilter) -> &mut Group {
        if !self.groups.contains_key(filter) {
            // The session refused filters the trie cannot take, and peers only announce
            // groups their own trie accepted.
            let _ = self.shared.insert(filter, filter.clone());
        }
        self.groups.entry(filter.clone()).or_default()
    }

    /// Recounts this shard's members of the group and, if the counts changed, tells every
    /// peer.
    fn announce_members(&mut self, filter: &TopicFilter) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let sessions = &self.sessions;
        let online = group
            .local
            .iter()
            .filter(|s| sessions.get(s.session).is_some_and(|e| e.conn.is_some()))
            .count();
        let counts = MemberShard {
            shard: self.id,
            members: u32::try_from(group.local.len()).unwrap_or(u32::MAX),
            online: u32::try_from(online).unwrap_or(u32::MAX),
        };
        if !set_member_shard(&mut group.shards, counts) {
            return;
        }
        for peer in 0..self.shards {
            if peer != self.id {
                let msg = MeshMsg::ShareInterest {
                    filter: filter.clone(),
                    members: counts.members,
                    online: counts.online,
                };
                self.send_to_peer(peer, msg);
            }
        }
        self.forget_if_empty(filter);
    }

    fn forget_if_empty(&mut self, filter: &TopicFilter) {
        let empty = self
            .groups
            .get(filter)
            .is_some_and(|g| g.shards.is_empty() && g.local.is_empty());
        if empty {
            self.groups.remove(filter);
            self.shared.remove(filter, |f| f == filter);
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
            self.send_to_member_shard(&filter, msg, 0, None);
        }
    }

    /// Gives back to their groups the messages of a member whose session ended (section
    /// 4.8.2: they SHOULD go to another member). One that expired meanwhile is dropped
    /// [MQTT-3.3.2-5]; one whose group has no member left has no subscriber and is counted.
    pub(super) fn return_to_groups(&mut self, messages: Vec<(TopicFilter, Message)>) {
        for (filter, msg) in messages {
            let Some(msg) = peers::still_fresh(msg) else {
                continue;
            };
            if !self.send_to_member_shard(&filter, &msg, 0, None) {
                self.counters.dropped_shared += 1;
            }
        }
    }

    /// Sends `msg` to a member shard of the group other than `exclude`, picked round robin
    /// (weighted by online members while any is online, else by members), this shard
    /// included. False if the group has no such shard.
    fn send_to_member_shard(
        &mut self,
        filter: &TopicFilter,
        msg: &Message,
        hops: u8,
        exclude: Option<usize>,
    ) -> bool {
        let Some(group) = self.groups.get_mut(filter) else {
            return false;
        };
        let next = match exclude {
            None => &mut group.next_shard,
            Some(_) => &mut group.next_bounce,
        };
        let Some(shard) = pick_member_shard(&group.shards, next, exclude) else {
            return false;
        };
        if shard == self.id {
            self.deliver_shared_here(filter, msg, hops);
        } else {
            let forward = MeshMsg::SharedPublish {
                filter: filter.clone(),
                msg: msg.clone(),
                hops,
            };
            self.send_to_peer(shard, forward);
        }
        true
    }

    /// A message for the group reached this shard, `hops` bounces after the shard that
    /// picked it: deliver it to the readiest local member, or bounce it on (module docs).
    pub(super) fn deliver_shared_here(&mut self, filter: &TopicFilter, msg: &Message, hops: u8) {
        let max_hops = self.max_hops();
        let step = match self.groups.get(filter) {
            None => Step::Drop,
            Some(group) => {
                let sessions = &self.sessions;
                let readiness = |sub: &LocalSub| {
                    let qos = msg.qos.min(sub.options.qos);
                    sessions
                        .get(sub.session)
                        .map_or(Readiness::Offline, |e| e.session.readiness(qos))
                };
                let local = pick_local(&group.local, group.next_local, readiness);
                let elsewhere = elsewhere(&group.shards, self.id);
                next_step(local, hops, max_hops, elsewhere)
            }
        };
        match step {
            Step::Deliver(i) => self.deliver_to_member(filter, i, msg),
            Step::Bounce => {
                let me = Some(self.id);
                if !self.send_to_member_shard(filter, msg, hops.saturating_add(1), me) {
                    self.counters.dropped_shared += 1;
                }
            }
            Step::Drop => self.counters.dropped_shared += 1,
        }
    }

    /// Bounces a message may take: one for a stall, then enough to try every other shard.
    fn max_hops(&self) -> u8 {
        u8::try_from(self.shards).unwrap_or(u8::MAX)
    }

    fn deliver_to_member(&mut self, filter: &TopicFilter, index: usize, msg: &Message) {
        let Some(group) = self.groups.get_mut(filter) else {
            return;
        };
        let Some(&member) = group.local.get(index) else {
            return;
        };
        group.next_local = index.wrapping_add(1);
        let retain = msg.retain && member.options.retain_as_published;
        let qos = msg.qos.min(member.options.qos);
        self.encoder.begin();
        if member.id == 0 {
            self.deliver_to_via(member.session, msg, qos, retain, Some(filter));
        } else {
            // A copy of its own (Subscription Identifier): encoded on its own.
            let tagged = msg.with_subscription_ids(&[member.id]);
            self.deliver_to_via(member.session, &tagged, qos, retain, Some(filter));
            self.encoder.begin();
        }
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
) -> Step {
    match local {
        Some((i, Readiness::Ready | Readiness::Busy)) => Step::Deliver(i),
        Some((_, Readiness::Stalled)) if hops == 0 && elsewhere.online => Step::Bounce,
        Some((_, Readiness::Offline)) if hops < max_hops && elsewhere.online => Step::Bounce,
        Some((i, _)) => Step::Deliver(i),
        None if hops < max_hops && elsewhere.members => Step::Bounce,
        None => Step::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(shard: usize, members: u32, online: u32) -> MemberShard {
        MemberShard {
            shard,
            members,
            online,
        }
    }

    fn picks(shards: &[MemberShard], exclude: Option<usize>, n: usize) -> Vec<Option<usize>> {
        let mut next = 0;
        (0..n)
            .map(|_| pick_member_shard(shards, &mut next, exclude))
            .collect()
    }

    #[test]
    fn member_shards_are_picked_round_robin_weighted_by_online_members() {
        let shards = [shard(0, 1, 1), shard(1, 3, 2)];
        assert_eq!(
            picks(&shards, None, 6),
            [Some(0), Some(1), Some(1), Some(0), Some(1), Some(1)]
        );
    }

    #[test]
    fn a_shard_whose_members_are_all_offline_is_skipped_while_one_is_online_elsewhere() {
        // 4.8.2: the server chooses the member; an offline one would only queue the message.
        let shards = [shard(0, 5, 0), shard(1, 1, 1)];
        assert_eq!(picks(&shards, None, 3), [Some(1); 3]);
    }

    #[test]
    fn with_no_member_online_anywhere_offline_members_share_by_member_count() {
        let shards = [shard(0, 1, 0), shard(1, 2, 0)];
        assert_eq!(picks(&shards, None, 3), [Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn a_bounce_never_picks_the_excluded_shard() {
        let shards = [shard(0, 3, 3), shard(1, 1, 0), shard(2, 1, 1)];
        assert_eq!(picks(&shards, Some(0), 3), [Some(2); 3]);
        assert_eq!(picks(&[shard(0, 1, 1)], Some(0), 1), [None]);
        assert_eq!(picks(&[], None, 1), [None]);
    }

    #[test]
    fn member_counts_are_set_absolutely_and_a_shard_without_members_is_removed() {
        let mut shards = Vec::new();
        assert!(set_member_shard(&mut shards, shard(1, 2, 1)));
        assert!(set_member_shard(&mut shards, shard(0, 1, 1)));
        assert!(!set_member_shard(&mut shards, shard(1, 2, 1)), "unchanged");
        assert!(set_member_shard(&mut shards, shard(1, 2, 0)));
        assert_eq!(shards, [shard(0, 1, 1), shard(1, 2, 0)]);
        assert!(set_member_shard(&mut shards, shard(0, 0, 0)));
        assert!(!set_member_shard(&mut shards, shard(3, 0, 0)));
        assert_eq!(shards, [shard(1, 2, 0)]);
    }

    #[test]
    fn the_readiest_local_member_is_picked_round_robin_among_equals() {
        use Readiness::*;
        let members = [Stalled, Ready, Offline, Ready];
        let pick = |start| pick_local(&members, start, |&r| r);
        assert_eq!(pick(0), Some((1, Ready)));
        assert_eq!(pick(2), Some((3, Ready)));
        assert_eq!(pick(4), Some((1, Ready)));
        let members = [Offline, Stalled, Busy, Stalled];
        assert_eq!(pick_local(&members, 3, |&r| r), Some((2, Busy)));
        let members = [Offline, Stalled, Offline, Stalled];
        assert_eq!(pick_local(&members, 2, |&r| r), Some((3, Stalled)));
        assert_eq!(pick_local(&[] as &[Readiness], 0, |&r| r), None);
    }

    #[test]
    fn a_ready_or_busy_member_takes_the_message_here() {
        let everywhere = Elsewhere {
            members: true,
            online: true,
        };
        for r in [Readiness::Ready, Readiness::Busy] {
            assert_eq!(next_step(Some((2, r)), 0, 1, everywhere), Step::Deliver(2));
        }
    }

    #[test]
    fn stalled_members_let_the_message_go_once_to_a_shard_with_an_online_member() {
        let stalled = Some((0, Readiness::Stalled));
        let online = Elsewhere {
            members: true,
            online: true,
        };
        let offline = Elsewhere {
            members: true,
            online: false,
        };
        assert_eq!(next_step(stalled, 0, 3, online), Step::Bounce);
        assert_eq!(next_step(stalled, 1, 3, online), Step::Deliver(0));
        assert_eq!(next_step(stalled, 0, 3, offline), Step::Deliver(0));
    }

    #[test]
    fn offline_members_keep_the_message_only_when_nobody_is_online_or_bounces_ran_out() {
        let offline_here = Some((1, Readiness::Offline));
        let online = Elsewhere {
            members: true,
            online: true,
        };
        assert_eq!(next_step(offline_here, 0, 1, online), Step::Bounce);
        assert_eq!(next_step(offline_here, 1, 1, online), Step::Deliver(1));
        let nobody_online = Elsewhere {
            members: true,
            online: false,
        };
        assert_eq!(
            next_step(offline_here, 0, 1, nobody_online),
            Step::Deliver(1)
        );
    }

    #[test]
    fn a_shard_without_members_bounces_while_it_may_and_drops_when_nobody_is_left() {
        let members = Elsewhere {
            members: true,
            online: false,
        };
        assert_eq!(next_step(None, 0, 1, members), Step::Bounce);
        assert_eq!(next_step(None, 1, 1, members), Step::Drop, "hop bound");
        assert_eq!(next_step(None, 0, 1, Elsewhere::default()), Step::Drop);
    }
}
