//! How long tests wait, and waiting on a condition instead of a fixed sleep.

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen promptly on a local broker.
pub const PROMPT: Duration = Duration::from_secs(3);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(400);

/// Runs `attempt` until it returns `Ok`, for up to [`PROMPT`]; then fails the test with the
/// last error. For state that settles across shards (a retained message reaching every
/// shard's store): each attempt should look afresh, e.g. with a new subscriber.
pub fn eventually<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PROMPT;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still {e} after {PROMPT:?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
