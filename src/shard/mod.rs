//! One shard: its connections, the sessions whose home it is, its subscription tries, its copy
//! of the retained store, its timer wheel and its ends of the mesh. Single-threaded; the
//! shard's tasks share one `Rc<RefCell<ShardState>>` and never hold a borrow across `.await`.
//!
//! - `state`: the shard's data as owned parts and every decision (no sockets, no clock:
//!   `now` is passed in); see its module docs for the parts.
//! - `encode`: encode-once fan-out of a PUBLISH to many subscribers.
//! - `alias`: the outbound Topic Aliases of one connection (5.0).
//! - `conn`: the only socket code: accept, CONNECT, handoff, the enhanced-authentication
//!   exchange before CONNACK, reader and writer tasks.
//! - `reading`: what a reader holds back: room for a large packet within the shard's budget,
//!   and a read buffer that goes back to small after one.
//! - `persist`: recovery at start, each shard's share of it, and the log writer task (group
//!   commit, fsync policy, compaction); the only persistence code that does IO or reads
//!   clocks.
//! - `bridge`: the bridges homed on this shard: each a task that is a client of its remote
//!   broker and drives its local session's connection in place of a socket.
//! - `run`: the shard's tasks (accept loop, mesh drain, timer tick, overflow flush).
//! - `setup`: what a shard starts with (`ShardSetup`, built by the runtime) and its view of
//!   broker shutdown (`Shutdown`).

mod alias;
mod bridge;
mod conn;
mod encode;
mod persist;
mod reading;
mod run;
mod setup;
mod state;
mod writer;

pub use persist::Persistence;
pub use run::{Observe, run, run_observed, serve};
pub(crate) use setup::ShutdownShared;
pub use setup::{Endpoint, ShardListener, ShardSetup, Shutdown, ShutdownWait};
pub use state::{BridgeCounts, ConnId, Counters, Limits, Login, ShardState, Verification};

use crate::protocol::{Connect, TopicFilter};
use crate::session::Message;
use bytes::BytesMut;
use conn::{Policy, Transport};

/// What crosses the mesh between shards.
#[derive(Debug)]
pub enum MeshMsg {
    /// Deliver to the receiving shard's local subscribers (never forwarded again).
    Publish(Message),
    /// A retained PUBLISH: store (empty payload deletes) and deliver to local subscribers.
    Retain(Message),
    /// The sender's local trie gained its first (`add`) or lost its last subscriber for
    /// `filter`.
    Interest {
        filter: TopicFilter,
        add: bool,
    },
    /// The sender's members of a shared subscription group (`$share/{group}/{filter}`):
    /// how many, and how many have their client connected. Sent whenever either changes;
    /// the latest one holds (0 members: the sender has none left).
    ShareInterest {
        filter: TopicFilter,
        members: u32,
        online: u32,
    },
    /// Deliver to one local member of this shared subscription group, or pass it on to
    /// another member shard; `hops` counts how often it was passed on already (bounded).
    SharedPublish {
        filter: TopicFilter,
        msg: Message,
        hops: u8,
    },
    /// Answer with `BarrierAck` once everything sent before it has been applied: the sender
    /// holds a SUBACK until every peer has seen the subscription's interest.
    Barrier {
        token: u64,
    },
    BarrierAck {
        token: u64,
    },
    /// `fsync = "always"`: answer with `DurableAck` once everything sent before it is
    /// durable in the receiver's log; the sender holds acknowledgements until then.
    DurableBarrier {
        token: u64,
    },
    DurableAck {
        token: u64,
    },
    /// The sender's persistence log can no longer (or can again) be written: while any
    /// shard's cannot, every shard refuses new QoS 1/2 work (`state::disk`), since what it
    /// accepts may be forwarded to that shard and not kept there.
    DiskState {
        failing: bool,
    },
    /// The sender now has (or no longer has) a congested session: QoS 1/2 publishers whose
    /// messages go there are held back meanwhile (`state::flow`).
    Congestion {
        congested: bool,
    },
    /// A connection whose CONNECT arrived at a shard that is not the client id's home.
    Handoff(Box<Handoff>),
    /// The sender's numbers, for the `$SYS` topics shard 0 publishes.
    SysReport(Box<crate::obs::Snapshot>),
}

/// A connection moving to its home shard, with what the accepting shard already read.
#[derive(Debug)]
pub struct Handoff {
    pub stream: std::net::TcpStream,
    /// The connection's transport (its TLS state), which moves with the socket.
    pub transport: Transport,
    /// What its listener asks of it.
    pub policy: Policy,
    pub connect: Box<Connect>,
    /// Bytes read after the CONNECT (a client may pipeline packets behind it).
    pub leftover: BytesMut,
    /// The broker assigned the client id (5.0 then returns it in CONNACK).
    pub assigned_id: bool,
    /// When the accepting shard accepted the socket (orders takeovers).
    pub accepted_at: std::time::Instant,
}

/// The home shard of a client id: FNV-1a of its bytes, then mixed, modulo the shard count.
/// Fixed (not randomly seeded) so every shard, and the tests, compute the same home.
pub fn home_shard(client_id: &[u8], shards: usize) -> usize {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = client_id
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // The modulo of a u64 by a usize shard count fits in usize.
    (spread(hash) % shards.max(1) as u64) as usize
}

/// FNV-1a's low bits depend on few bits of the input (its low bit is the parity of the
/// bytes' low bits, so with 2 shards ids of one shape all landed on one shard): xor-shifts
/// and odd multipliers (MurmurHash3's finaliser) make every output bit depend on every
/// input bit before the modulo takes the low ones.
fn spread(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::home_shard;

    #[test]
    fn home_shard_is_stable_and_spreads_ids_of_one_shape_over_every_shard() {
        // Fixed values: a change of the rule moves every persisted session to another shard
        // at the next start (recovery rehomes them, but it should be on purpose).
        assert_eq!(home_shard(b"a", 1 << 20), 970_331);
        assert_eq!(home_shard(b"client", 1), 0);
        for shards in [2usize, 3, 4, 8] {
            let mut counts = vec![0usize; shards];
            for i in 0..4_000 {
                counts[home_shard(format!("sensor-{i}").as_bytes(), shards)] += 1;
            }
            let fair = 4_000 / shards;
            assert!(
                counts
                    .iter()
                    .all(|&c| c > fair * 9 / 10 && c < fair * 11 / 10),
                "{shards} shards: {counts:?}"
            );
        }
        // Ids whose bytes all have an even low bit: plain FNV-1a put every one of them on
        // the same one of 2 shards.
        let even = [b'b', b'd', b'f', b'h'];
        let mut homes = [0usize; 2];
        for a in even {
            for b in even {
                for c in even {
                    homes[home_shard(&[a, b, c], 2)] += 1;
                }
            }
        }
        assert!(homes[0] > 16 && homes[1] > 16, "{homes:?}");
    }
}
