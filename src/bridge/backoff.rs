//! The reconnect delay of a bridge: exponential from the configured minimum, capped at the
//! maximum, with jitter so that bridges cut off together do not reconnect together. The
//! random part is passed in.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is half the exponential step plus a
/// random share of the other half.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    /// Failures since the last success.
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt, given a random `u64`; counts one failure.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        // 2^failures, without overflowing: past 2^20 the cap has long been reached.
        let step = self
            .min
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(random % spread)
    }

    /// A connection came up: the next failure starts from the minimum again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let bounds = [100, 200, 400, 800, 1000, 1000];
        for max in bounds {
            let low = b.clone().next_delay(0);
            let high = b.clone().next_delay(u64::MAX - 1);
            assert_eq!(low, Duration::from_millis(max / 2));
            assert!(
                high <= Duration::from_millis(max) && high >= low,
                "{high:?}"
            );
            b.next_delay(7);
        }
        b.reset();
        assert_eq!(b.next_delay(0), Duration::from_millis(50));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_secs(3600));
        for _ in 0..200 {
            assert!(b.next_delay(u64::MAX) <= Duration::from_secs(3600));
        }
    }
}
