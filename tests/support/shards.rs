//! Client ids pinned to a home shard, so a test can put a publisher and a subscriber on
//! different shards (every message then crosses the mesh) or on the same one.

use super::SHARDS;

/// The home shard of a client id: FNV-1a 64-bit of its bytes, mixed by MurmurHash3's
/// 64-bit finaliser, modulo the shard count.
///
/// An independent copy of the broker's rule, so a change to it fails one test
/// (`conformance_scale::the_home_shard_of_a_client_id_matches_the_broker`) instead of
/// silently putting every "cross-shard" test on one shard.
pub fn home_shard(client_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in client_id.as_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash % shards as u64) as usize
}

/// A client id starting with `prefix` whose home is `shard` (of [`SHARDS`]).
pub fn id_on_shard(prefix: &str, shard: usize) -> String {
    (0u32..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| home_shard(id, SHARDS) == shard)
        .unwrap_or_default()
}

/// Two client ids with different home shards: `[on shard 0, on shard 1]`.
pub fn ids_on_distinct_shards(prefix: &str) -> [String; 2] {
    [
        id_on_shard(&format!("{prefix}-a"), 0),
        id_on_shard(&format!("{prefix}-b"), 1),
    ]
}
