//! Fuzz target `shard`: arbitrary sequences of client operations, mesh exchanges and clock
//! ticks on two shards with a virtual clock; no panic, bounds held, output decodes
//! (`shard_ops.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

mod shard_ops;

fuzz_target!(|data: &[u8]| shard_ops::run(data));
