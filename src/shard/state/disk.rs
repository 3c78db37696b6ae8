//! A log that cannot be written (a full disk, an IO error): while the writer fails, the
//! shard refuses new QoS 1/2 work rather than acknowledge what it cannot keep, serves QoS 0
//! as ever, and takes QoS 1/2 again once a write succeeds (`docs/persistence.md`).
//!
//! - 5.0: the PUBLISH is answered with PUBACK / PUBREC 0x97 Quota exceeded (section 3.4.2.1:
//!   "an implementation or administrative imposed limit has been exceeded"), which refuses
//!   that message only [MQTT-4.13.2]; nothing is routed and no state is kept.
//! - 3.1.1 has no negative acknowledgement: the connection is closed (the message is not
//!   acknowledged, so a client with Clean Session 0 sends it again after reconnecting
//!   [MQTT-4.4.0-1]). Holding the acknowledgement instead would stall the client without
//!   telling it why, and with `interval` / `never` acknowledgements are not held at all.
//!
//! A QoS 2 PUBLISH whose id already awaits PUBREL is not new work and goes through.
//!
//! Every shard tells its peers when its log starts and stops failing (`MeshMsg::DiskState`),
//! and a shard refuses while any peer's fails too: a message it accepts may be forwarded to
//! that peer (a subscriber's session, the owner of a retained topic) and not kept there,
//! and with `fsync = "interval"` or `"never"` the acknowledgement does not wait for the
//! peer. Refusing on any failing peer, not only those the message would reach, keeps the
//! check one branch before routing; the shards share one directory, so a full disk is
//! rarely one shard's alone.

use super::ShardState;
use super::connections::ConnId;
use crate::protocol::{MqttString, Packet, Properties, ProtocolVersion, PubResp, QoS};
use crate::protocol::{Reason, ReasonCode};
use crate::shard::MeshMsg;
use std::path::Path;
use std::time::Instant;

const DISK_FULL: MqttString = MqttString::from_static(
    "the server cannot write its persistence log; QoS 1 and 2 are refused until it can",
);

impl ShardState {
    /// The writer's side: whether the log's writes fail. Returns true when this changes it
    /// to failing (the writer logs the error then, once); the change back is logged here.
    pub fn set_log_failing(&mut self, failing: bool, path: &Path) -> bool {
        let Some(journal) = &mut self.journal else {
            return false;
        };
        if journal.failing == failing {
            return false;
        }
        journal.failing = failing;
        let _ = self.broadcast(|| MeshMsg::DiskState { failing });
        self.mesh.flush_wakes();
        if failing {
            log::error!(
                file:% = path.display(), shard = self.id();
                "persistence: {} cannot be written: refusing QoS 1 and 2 PUBLISHes (5.0: 0x97 \
                 Quota exceeded, 3.1.1: disconnect) until it can; QoS 0 is served",
                path.display()
            );
        } else {
            log::info!(
                file:% = path.display(), shard = self.id();
                "persistence: {} is written again: QoS 1 and 2 are accepted", path.display()
            );
        }
        failing
    }

    /// A peer's log started or stopped failing.
    pub(super) fn on_peer_disk_state(&mut self, from: usize, failing: bool) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let Some(peer) = journal.peers_failing.get_mut(from) else {
            return;
        };
        if *peer == failing {
            return;
        }
        *peer = failing;
        match failing {
            true => journal.peers_failing_count += 1,
            false => journal.peers_failing_count -= 1,
        }
        log::debug!(
            shard = self.id(), peer = from, failing;
            "persistence: shard {from}'s log {}", match failing {
                true => "cannot be written: refusing QoS 1 and 2 here too",
                false => "is written again",
            }
        );
    }

    /// Whether `packet` is new QoS 1/2 work refused because this shard's log, or a peer's,
    /// cannot be written; if so it was answered (5.0) or the connection closed (3.1.1).
    pub(super) fn refused_for_log(
        &mut self,
        conn: ConnId,
        session_key: usize,
        packet: &Packet,
        now: Instant,
    ) -> bool {
        let refusing = |j: &super::journal::Journal| j.failing || j.peers_failing_count > 0;
        if !self.journal.as_ref().is_some_and(refusing) {
            return false;
        }
        let Packet::Publish(publish) = packet else {
            return false;
        };
        let Some(id) = publish.packet_id.filter(|_| publish.qos != QoS::AtMostOnce) else {
            return false;
        };
        let resend = publish.qos == QoS::ExactlyOnce
            && (self.sessions.get(session_key)).is_some_and(|e| e.session.awaits_pubrel(id));
        if resend {
            return false;
        }
        let Some(version) = self.conns.get(conn).map(|c| c.version) else {
            return false;
        };
        self.counters.refused_log_failing += 1;
        if version != ProtocolVersion::V5 {
            let reason = Reason {
                code: ReasonCode::QuotaExceeded,
                string: Some(DISK_FULL),
            };
            self.close(conn, Some(reason), true, now);
            return true;
        }
        let mut resp = PubResp::new(id);
        resp.reason = ReasonCode::QuotaExceeded;
        resp.properties = Properties::reason_string(Some(DISK_FULL));
        let refusal = match publish.qos {
            QoS::ExactlyOnce => Packet::PubRec(resp),
            _ => Packet::PubAck(resp),
        };
        // Past the holds: this acknowledgement acknowledges nothing kept.
        self.send_packet(conn, &refusal, now);
        true
    }
}
