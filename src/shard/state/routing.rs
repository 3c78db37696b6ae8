//! Subscriptions, interest announcements to peers, the retained store and routing: how a
//! message finds its local subscribers and the peer shards that have some.

use super::*;

impl ShardState {
    pub(super) fn subscribe(&mut self, filter: TopicFilter, sub: LocalSub, is_new: bool) {
        if filter.share_group().is_some() {
            return self.join_shared(filter, sub);
        }
        if !is_new {
            // A repeated SUBSCRIBE replaces the options [MQTT-3.8.4-3].
            self.local.remove(&filter, |s| s.session == sub.session);
        }
        // The session already refused filters deeper than the trie takes.
        if self.local.insert(&filter, sub).is_err() {
            return;
        }
        if is_new {
            self.add_local_ref(&filter);
        }
        let send_retained = match sub.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => is_new,
            RetainHandling::DoNotSend => false,
        };
        if send_retained {
            match self.barrier_token {
                Some(token) => self.defer_retained(token, &filter, sub),
                None => self.send_retained(&filter, sub),
            }
        }
    }

    pub(super) fn unsubscribe(&mut self, session_key: usize, filter: &TopicFilter) {
        if filter.share_group().is_some() {
            return self.leave_shared(session_key, filter);
        }
        self.local.remove(filter, |s| s.session == session_key);
        self.drop_local_ref(filter);
    }

    fn add_local_ref(&mut self, filter: &TopicFilter) {
        let count = self.local_refs.entry(filter.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.broadcast_interest(filter, true);
        }
    }

    fn drop_local_ref(&mut self, filter: &TopicFilter) {
        let Some(count) = self.local_refs.get_mut(filter) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.local_refs.remove(filter);
            self.broadcast_interest(filter, false);
        }
    }

    fn broadcast_interest(&mut self, filter: &TopicFilter, add: bool) {
        for peer in 0..self.shards {
            if peer != self.id {
                let msg = MeshMsg::Interest {
                    filter: filter.clone(),
                    add,
                };
                self.send_to_peer(peer, msg);
            }
        }
    }

    /// Retained messages matching a new subscription go out with RETAIN=1 [MQTT-3.3.1-6].
    pub(super) fn send_retained(&mut self, filter: &TopicFilter, sub: LocalSub) {
        let now = Instant::now();
        let matching: Vec<Message> = self
            .retained
            .values()
            .filter(|m| filter.matches(&m.topic) && !m.is_expired(now))
            .map(|m| m.with_remaining_expiry(now).unwrap_or_else(|| m.clone()))
            .collect();
        for msg in matching {
            let granted = msg.qos.min(sub.options.qos);
            let msg = if sub.id == 0 {
                msg
            } else {
                msg.with_subscription_ids(&[sub.id])
            };
            self.encoder.begin();
            self.deliver_to(sub.session, &msg, granted, true);
        }
    }

    // ----- routing ------------------------------------------------------------------------

    /// Routes a PUBLISH from a local client: retained store, local subscribers, and once to
    /// each peer shard that has interest (retained messages go to every peer).
    pub(super) fn route(&mut self, msg: &Message, origin: Option<usize>) {
        if msg.retain {
            self.store_retained(msg);
            for peer in 0..self.shards {
                if peer != self.id {
                    self.send_to_peer(peer, MeshMsg::Retain(msg.clone()));
                }
            }
        } else {
            self.forward_to_interested_peers(msg);
        }
        self.route_shared(msg);
        self.deliver_local(msg, origin);
    }

    fn forward_to_interested_peers(&mut self, msg: &Message) {
        if self.shards < 2 {
            return;
        }
        let marks = &mut self.peer_marks;
        marks.iter_mut().for_each(|m| *m = false);
        self.remote.for_each_match(&msg.topic, |&peer| {
            if let Some(m) = marks.get_mut(peer) {
                *m = true;
            }
        });
        for peer in 0..self.shards {
            if self.peer_marks[peer] {
                self.send_to_peer(peer, MeshMsg::Publish(msg.clone()));
            }
        }
    }

    /// [MQTT-3.3.4-1..] delivers to each local subscriber once, at the highest QoS of its
    /// matching subscriptions, capped by the publish QoS.
    pub(super) fn deliver_local(&mut self, msg: &Message, origin: Option<usize>) {
        let matches = &mut self.matches;
        matches.clear();
        self.local
            .for_each_match(&msg.topic, |sub| matches.push(*sub));
        if self.matches.is_empty() {
            return;
        }
        self.matches.sort_unstable_by_key(|s| s.session);
        self.encoder.begin();
        let mut i = 0;
        while i < self.matches.len() {
            let first = self.matches[i];
            let mut qos = first.options.qos;
            let mut retain_as_published = first.options.retain_as_published;
            let mut no_local = first.options.no_local;
            self.sub_ids.clear();
            while i < self.matches.len() && self.matches[i].session == first.session {
                let sub = self.matches[i];
                qos = qos.max(sub.options.qos);
                retain_as_published |= sub.options.retain_as_published;
                no_local &= sub.options.no_local;
                if sub.id != 0 {
                    self.sub_ids.push(sub.id);
                }
                i += 1;
            }
            // [MQTT-3.8.3-3] No Local: not back to the publishing client.
            if no_local && origin == Some(first.session) {
                continue;
            }
            // [MQTT-3.3.1-9] / 5.0 Retain As Published.
            let retain = msg.retain && retain_as_published;
            let qos = msg.qos.min(qos);
            if self.sub_ids.is_empty() {
                self.deliver_to(first.session, msg, qos, retain);
            } else {
                let tagged = msg.with_subscription_ids(&self.sub_ids);
                self.deliver_tagged(first.session, &tagged, qos, retain);
            }
        }
    }

    /// Delivers a copy that differs per subscriber (Subscription Identifiers): encoded on its
    /// own, so the shared encodings are invalidated before and after it.
    pub(super) fn deliver_tagged(&mut self, session: usize, msg: &Message, qos: QoS, retain: bool) {
        self.encoder.begin();
        self.deliver_to(session, msg, qos, retain);
        self.encoder.begin();
    }

    /// Offers one message to one session and writes it to its connection if it goes out now.
    pub(super) fn deliver_to(&mut self, session_key: usize, msg: &Message, qos: QoS, retain: bool) {
        self.deliver_to_via(session_key, msg, qos, retain, None);
    }

    /// `deliver_to` for a message that came through the shared subscription `group` (the
    /// session remembers it, see `Session::deliver_via`).
    pub(super) fn deliver_to_via(
        &mut self,
        session_key: usize,
        msg: &Message,
        qos: QoS,
        retain: bool,
        group: Option<&TopicFilter>,
    ) {
        let Some(entry) = self.sessions.get_mut(session_key) else {
            return;
        };
        let conn_id = entry.conn;
        let version = entry.session.version();
        let (qos, packet_id) = match entry.session.deliver_via(msg, qos, retain, group) {
            Delivery::Send { qos, packet_id } => (qos, packet_id),
            Delivery::Queued => return self.note_queued(session_key),
            Delivery::Dropped if qos == QoS::AtMostOnce => {
                self.counters.dropped_qos0 += 1;
                return;
            }
            Delivery::Dropped => {
                self.counters.dropped_queue_full += 1;
                return;
            }
        };
        let limit = entry
            .session
            .max_packet_size()
            .map_or(usize::MAX, |max| max as usize);
        let live = conn_id.and_then(|id| {
            self.conns
                .get_mut(id.key)
                .filter(|c| c.generation == id.generation)
                .map(|c| (id, c))
        });
        let planned = live
            .as_ref()
            .map_or(AliasUse::None, |(_, c)| c.aliases.plan(&msg.topic));
        let form = |alias| Form {
            version,
            qos,
            retain,
            alias,
        };
        // [MQTT-3.1.2-25] the size that counts is the packet's as written, alias included.
        let encoder = &mut self.encoder;
        let fits = fitting(planned, limit, |alias| {
            encoder.encoded_len(msg, form(alias))
        });
        let Some(alias) = fits else {
            let mut actions = Vec::new();
            entry
                .session
                .discard(packet_id, Discard::TooLarge, &mut actions);
            if let Some(conn) = conn_id {
                self.apply(conn, &mut actions);
            }
            return;
        };
        let Some((conn_id, c)) = live else {
            return;
        };
        let was_empty = c.outbound.is_empty();
        if self
            .encoder
            .append(msg, form(alias), packet_id, &mut c.outbound)
            > 0
        {
            c.aliases.sent(&msg.topic, alias);
        }
        if was_empty {
            wake(&mut c.writer);
        }
        if c.outbound.len() > self.limits.max_outbound_bytes && c.over_cap_since.is_none() {
            self.mark_over_cap(session_key, conn_id);
        }
    }

    /// The client is not reading fast enough: QoS 0 gets dropped and QoS 1/2 queued from now
    /// on; the stall timer disconnects it if this lasts.
    fn mark_over_cap(&mut self, session_key: usize, conn: ConnId) {
        let now = Instant::now();
        if let Some(c) = self.conn_mut(conn) {
            c.over_cap_since = Some(now);
        }
        let mut actions = Vec::new();
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.session.set_writable(false, &mut actions);
        }
        self.timers
            .arm(now + self.limits.stall_timeout, TimerKey::Stalled(conn));
    }

    /// Updates this shard's copy of the retained store; a store over its bounds keeps its
    /// existing messages and refuses new topics.
    pub(super) fn store_retained(&mut self, msg: &Message) {
        if !self.limits.retain_available {
            return;
        }
        if let Some(old) = self.retained.remove(&msg.topic) {
            self.retained_bytes -= old.size();
        }
        // [MQTT-3.3.1-10] an empty retained payload only deletes.
        let fits = self.retained.len() < self.limits.max_retained_messages
            && self.retained_bytes + msg.size() <= self.limits.max_retained_bytes;
        if !msg.payload.is_empty() && fits {
            self.retained_bytes += msg.size();
            self.retained.insert(msg.topic.clone(), msg.clone());
        }
    }
}
