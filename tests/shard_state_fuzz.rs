//! The shard state fuzzer's interpreter (`fuzz/fuzz_targets/shard_ops.rs`) on seeded random
//! inputs, so that `cargo test` runs what the `shard` fuzz target runs without libFuzzer: no
//! panic, every session within its bounds, every byte the broker writes decodes.

#[path = "../fuzz/fuzz_targets/shard_ops.rs"]
mod shard_ops;

/// xorshift64*: a fixed sequence, so a failure names its seed and reproduces.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_operation_sequences_keep_every_shard_invariant() {
    for seed in 0..1500u64 {
        let input = bytes(seed, 30 + (seed as usize * 7) % 600);
        let outcome = std::panic::catch_unwind(|| shard_ops::run(&input));
        assert!(outcome.is_ok(), "seed {seed} broke an invariant");
    }
}
