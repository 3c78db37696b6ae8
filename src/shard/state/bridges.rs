//! The bridges' part of the shard state: each bridge's local session is an ordinary session
//! with an ordinary connection (no case in routing); what is bridge-specific here is the
//! `$SYS/broker/connection/<name>/state` notice (retained, "1" up, "0" down, as Mosquitto
//! publishes it) and the counts the metrics show.

use super::ShardState;
use crate::session::Message;
use bytes::Bytes;
use std::time::Instant;

/// What the shard's bridges have done, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BridgeCounts {
    /// Bridges of this shard connected to their remote now.
    pub up: u64,
    /// Bridges of this shard not connected now.
    pub down: u64,
    /// Connections to a remote that got a CONNACK.
    pub connects: u64,
    /// Attempts that failed (refused, unreachable, timed out) and links that ended.
    pub failures: u64,
}

impl ShardState {
    /// Bridge `name` is now up or down (`before`: what it was; `None` when it starts).
    /// With `notify`, publishes its state topic, retained, through the normal route.
    pub fn bridge_state(
        &mut self,
        name: &str,
        (before, up): (Option<bool>, bool),
        notify: bool,
        now: Instant,
    ) {
        let c = &mut self.bridge_counts;
        match before {
            Some(true) => c.up = c.up.saturating_sub(1),
            Some(false) => c.down = c.down.saturating_sub(1),
            None => {}
        }
        if up {
            c.up += 1;
            c.connects += 1;
        } else {
            c.down += 1;
        }
        if !notify {
            return;
        }
        let Some(topic) = crate::bridge::state_topic(name) else {
            return;
        };
        let msg = Message::broker_retained(topic, Bytes::from_static(if up { b"1" } else { b"0" }));
        let _: super::routing::Held = self.route(&msg, None, now);
        self.finish(now);
    }

    /// A bridge's attempt failed or its link ended.
    pub fn bridge_failed(&mut self) {
        self.bridge_counts.failures += 1;
    }

    pub fn bridge_counts(&self) -> BridgeCounts {
        self.bridge_counts
    }
}
