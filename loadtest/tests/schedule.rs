//! The open-loop schedule: sends are due at start + phase + k/rate regardless of how late
//! earlier sends went out, so latency measured from the intended time includes any stall.

use ringmq_load::schedule::Schedule;

#[test]
fn intended_times_are_evenly_spaced_from_the_start() {
    let s = Schedule::new(1_000, 0, 1000.0);
    assert_eq!(s.intended_ns(0), 1_000);
    assert_eq!(s.intended_ns(1), 1_000 + 1_000_000);
    assert_eq!(s.intended_ns(1000), 1_000 + 1_000_000_000);
}

#[test]
fn intended_times_do_not_drift_over_a_long_run() {
    // 3 per second does not divide a second evenly; the k-th time must still be k/3 s.
    let s = Schedule::new(0, 0, 3.0);
    let k = 3 * 3600;
    assert_eq!(s.intended_ns(k), 3600 * 1_000_000_000);
}

#[test]
fn nothing_is_due_before_the_first_send() {
    let s = Schedule::new(5_000, 1_000, 10.0);
    assert_eq!(s.due_count(0), 0);
    assert_eq!(s.due_count(5_999), 0);
    assert_eq!(s.due_count(6_000), 1);
}

#[test]
fn due_count_counts_every_send_whose_time_has_come() {
    let s = Schedule::new(0, 0, 100.0); // every 10 ms
    assert_eq!(s.due_count(0), 1);
    assert_eq!(s.due_count(9_999_999), 1);
    assert_eq!(s.due_count(10_000_000), 2);
    assert_eq!(s.due_count(95_000_000), 10);
}

#[test]
fn a_stalled_publisher_catches_up_instead_of_skipping_sends() {
    // After a 1 s stall at 1000/s, the 1000 missed sends are all due at once, and each keeps
    // its own intended time: the stall shows up in their latency (no coordinated omission).
    let s = Schedule::new(0, 0, 1000.0);
    let sent_before_stall = s.due_count(0);
    let due_after_stall = s.due_count(1_000_000_000);
    assert_eq!(due_after_stall - sent_before_stall, 1000);
    assert_eq!(s.intended_ns(500), 500_000_000);
}

#[test]
fn due_count_agrees_with_intended_times_at_every_boundary() {
    for rate in [1.0, 7.0, 333.0, 1e6, 0.5] {
        let s = Schedule::new(123, 77, rate);
        for k in 0..200 {
            let t = s.intended_ns(k);
            assert_eq!(s.due_count(t), k + 1, "rate {rate} k {k}");
            if t > 0 && s.intended_ns(k.saturating_sub(1)) < t {
                assert_eq!(s.due_count(t - 1), k, "rate {rate} k {k}");
            }
        }
    }
}

#[test]
fn phases_spread_publishers_over_one_interval() {
    let plan = ringmq_load::plan::iot(4, 1, 1.0);
    let phases: Vec<u64> = plan.publishers.iter().map(|p| p.phase_ns).collect();
    assert_eq!(phases, vec![0, 250_000_000, 500_000_000, 750_000_000]);
}
