//! `Sys`: the `$SYS/broker/...` topics at the shard. Each interval every shard but 0 sends
//! its snapshot to shard 0 over the mesh (no counter is shared between threads); shard 0
//! keeps the latest of each, has `obs::SysTopics` sum them, and publishes the topics as
//! retained QoS 0 messages through the normal routing path, so they reach every shard's
//! retained store and every subscriber like any other publish.

use super::ShardState;
use crate::obs::{Snapshot, SysTopics};
use crate::protocol::TopicName;
use crate::session::Message;
use crate::shard::MeshMsg;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The shard that publishes `$SYS`.
pub const SYS_SHARD: usize = 0;

#[derive(Debug)]
pub(super) struct Sys {
    topics: SysTopics,
    /// The latest snapshot of every shard, by id (kept on `SYS_SHARD` only).
    latest: Vec<Snapshot>,
    last_publish: Option<Instant>,
    started: Instant,
}

impl Sys {
    pub fn new(shards: usize, now: Instant) -> Self {
        Self {
            topics: SysTopics::default(),
            latest: (0..shards).map(|_| Snapshot::new(shards)).collect(),
            last_publish: None,
            started: now,
        }
    }
}

impl ShardState {
    /// Once per `[metrics] sys_interval`: a shard other than `SYS_SHARD` reports its numbers
    /// to it; `SYS_SHARD` publishes the `$SYS` topics from the latest reports and its own.
    pub fn sys_tick(&mut self, now: Instant) {
        let snapshot = self.snapshot().clone();
        if self.id() != SYS_SHARD {
            // A report that waits in the overflow is still the latest one when it arrives.
            let _ = self
                .mesh
                .send(SYS_SHARD, MeshMsg::SysReport(Box::new(snapshot)));
            self.finish(now);
            return;
        }
        self.sys.latest[SYS_SHARD] = snapshot;
        let elapsed = self
            .sys
            .last_publish
            .map_or(Duration::ZERO, |at| now.duration_since(at));
        self.sys.last_publish = Some(now);
        let uptime = now.duration_since(self.sys.started);
        let topics = self.sys.topics.publish(&self.sys.latest, uptime, elapsed);
        for (topic, payload) in topics {
            let Ok(topic) = TopicName::try_from(topic.as_str()) else {
                continue;
            };
            let msg = Message::broker_retained(topic, Bytes::from(payload));
            let _: super::routing::Held = self.route(&msg, None, now);
        }
        self.finish(now);
    }

    /// Shard `from`'s numbers for `$SYS`.
    pub(super) fn on_sys_report(&mut self, from: usize, snapshot: Snapshot) {
        if let Some(slot) = self.sys.latest.get_mut(from) {
            *slot = snapshot;
        }
    }
}
