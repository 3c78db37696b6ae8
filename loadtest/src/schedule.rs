//! The open-loop send schedule. Send `k` of a publisher is due at `start + phase + k / rate`,
//! whatever happened to earlier sends: a publisher that falls behind catches up in a burst
//! rather than sliding the schedule, and latency is measured from the intended time. That keeps
//! a stalled broker from hiding its stall (no coordinated omission).

/// The intended send times of one open-loop publisher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    first_ns: u64,
    interval_ns: f64,
}

impl Schedule {
    /// `rate` messages per second (> 0) starting at `start_ns + phase_ns`.
    pub fn new(start_ns: u64, phase_ns: u64, rate: f64) -> Self {
        Self {
            first_ns: start_ns + phase_ns,
            interval_ns: 1e9 / rate.max(f64::MIN_POSITIVE),
        }
    }

    /// When send number `k` (from 0) is due.
    pub fn intended_ns(&self, k: u64) -> u64 {
        self.first_ns + (k as f64 * self.interval_ns) as u64
    }

    /// How many sends are due at `now_ns` (the sends `0..due_count` have intended times at or
    /// before `now_ns`).
    pub fn due_count(&self, now_ns: u64) -> u64 {
        if now_ns < self.first_ns {
            return 0;
        }
        let elapsed = (now_ns - self.first_ns) as f64;
        let mut due = (elapsed / self.interval_ns) as u64 + 1;
        // Float rounding must never make a send due before its intended time or hide one.
        while due > 0 && self.intended_ns(due - 1) > now_ns {
            due -= 1;
        }
        while self.intended_ns(due) <= now_ns {
            due += 1;
        }
        due
    }
}
