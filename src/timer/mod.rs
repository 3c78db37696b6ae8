//! A hashed timer wheel driven by an explicit `now`: O(1) arm and cancel, expiry in ticks.
//!
//! Time is cut into ticks of fixed length counted from the wheel's creation instant. A timer
//! is filed under the first tick that starts at or after its deadline, in slot
//! `tick % slots`; a slot holds timers of every rotation, each remembering its absolute tick,
//! so deadlines beyond one rotation simply stay in their slot until their own turn comes.
//! Timers live in a slab with a generation per entry: a `TimerId` whose timer has fired or
//! been cancelled no longer matches, so cancelling it is a harmless no-op.
//!
//! A timer fires no earlier than its deadline, and no later than one tick after it provided
//! `expire` is called at least once per tick. The wheel never reads the clock.

use std::time::{Duration, Instant};

const NIL: u32 = u32::MAX;

/// Names one armed timer. Stale ids (fired or cancelled timers) are recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Node<K> {
    generation: u32,
    /// `Some` while armed.
    key: Option<K>,
    tick: u64,
    prev: u32,
    /// Next in the slot's list while armed; next free node while free.
    next: u32,
}

/// A timer wheel holding keys of type `K`, handed back by `expire` when due.
#[derive(Debug)]
pub struct TimerWheel<K> {
    origin: Instant,
    tick_nanos: u128,
    /// Head node of each slot's doubly linked list.
    slots: Box<[u32]>,
    nodes: Vec<Node<K>>,
    free: u32,
    /// The first tick not yet processed by `expire`.
    current: u64,
    armed: usize,
}

impl<K: Copy> TimerWheel<K> {
    /// A wheel of `slots` slots of `tick` each (both at least 1 unit), with tick 0 at `now`.
    pub fn new(tick: Duration, slots: usize, now: Instant) -> Self {
        Self {
            origin: now,
            tick_nanos: tick.as_nanos().max(1),
            slots: vec![NIL; slots.max(1)].into_boxed_slice(),
            nodes: Vec::new(),
            free: NIL,
            current: 0,
            armed: 0,
        }
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.armed
    }

    pub fn is_empty(&self) -> bool {
        self.armed == 0
    }

    /// Arms a timer that `expire` hands back as `key` once `deadline` has passed. A deadline
    /// in the past fires at the next tick boundary.
    pub fn arm(&mut self, deadline: Instant, key: K) -> TimerId {
        let tick = self.tick_at_or_after(deadline).max(self.current);
        let index = self.allocate(key, tick);
        self.link(index);
        self.armed += 1;
        TimerId {
            index,
            generation: self.nodes[index as usize].generation,
        }
    }

    /// Disarms the timer; `false` if it already fired or was cancelled (the id is stale).
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let live = self
            .nodes
            .get(id.index as usize)
            .is_some_and(|n| n.generation == id.generation && n.key.is_some());
        if live {
            self.unlink(id.index);
            self.release(id.index);
        }
        live
    }

    /// Appends to `out` the key of every timer due at `now` and disarms them.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<K>) {
        let Some(due) = self.last_tick_started_by(now) else {
            return;
        };
        if due < self.current {
            return;
        }
        // After a long pause every slot needs one visit at most: each visit fires all of
        // that slot's timers due by `due`, whatever their rotation.
        let visits = (due - self.current + 1).min(self.slots.len() as u64);
        for t in self.current..self.current + visits {
            self.fire_slot(self.slot_of(t), due, out);
        }
        self.current = due + 1;
    }

    /// The earliest instant at which `expire` may fire something, or `None` when nothing is
    /// armed. Never later than the true next firing; may be earlier when the nearest filled
    /// slot only holds timers of a later rotation (a harmless early wake-up). Scans up to one
    /// rotation of slots: call it once per event-loop turn, not per timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.armed == 0 {
            return None;
        }
        let slots = self.slots.len() as u64;
        let tick =
            (self.current..self.current + slots).find(|&t| self.slots[self.slot_of(t)] != NIL)?;
        Some(self.instant_of(tick))
    }

    /// How long from `now` until `next_deadline`, zero if already due; `None` if idle.
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|d| d.saturating_duration_since(now))
    }

    fn tick_at_or_after(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos.div_ceil(self.tick_nanos)).unwrap_or(u64::MAX)
    }

    fn last_tick_started_by(&self, now: Instant) -> Option<u64> {
        let nanos = now.checked_duration_since(self.origin)?.as_nanos();
        Some(u64::try_from(nanos / self.tick_nanos).unwrap_or(u64::MAX - 1))
    }

    fn instant_of(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick).saturating_mul(self.tick_nanos);
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.origin + offset
    }

    fn slot_of(&self, tick: u64) -> usize {
        (tick % self.slots.len() as u64) as usize
    }

    fn fire_slot(&mut self, slot: usize, due: u64, out: &mut Vec<K>) {
        let mut index = self.slots[slot];
        while index != NIL {
            let node = &self.nodes[index as usize];
            let next = node.next;
            if node.tick <= due {
                if let Some(key) = node.key {
                    out.push(key);
                }
                self.unlink(index);
                self.release(index);
            }
            index = next;
        }
    }

    fn allocate(&mut self, key: K, tick: u64) -> u32 {
        if self.free != NIL {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            self.free = node.next;
            node.key = Some(key);
            node.tick = tick;
            return index;
        }
        let index = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i != NIL)
            .unwrap_or_else(|| panic!("more than {NIL} timers armed at once"));
        self.nodes.push(Node {
            generation: 0,
            key: Some(key),
            tick,
            prev: NIL,
            next: NIL,
        });
        index
    }

    fn release(&mut self, index: u32) {
        let node = &mut self.nodes[index as usize];
        node.key = None;
        node.generation = node.generation.wrapping_add(1);
        node.prev = NIL;
        node.next = self.free;
        self.free = index;
        self.armed -= 1;
    }

    fn link(&mut self, index: u32) {
        let slot = self.slot_of(self.nodes[index as usize].tick);
        let head = self.slots[slot];
        if head != NIL {
            self.nodes[head as usize].prev = index;
        }
        let node = &mut self.nodes[index as usize];
        node.prev = NIL;
        node.next = head;
        self.slots[slot] = index;
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next, tick) = {
            let n = &self.nodes[index as usize];
            (n.prev, n.next, n.tick)
        };
        if prev == NIL {
            let slot = self.slot_of(tick);
            self.slots[slot] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }
}

/// A virtual clock for tests of code that takes `now`: the real clock is read once per
/// thread, and every read after that is 1 ms later than the one before, so tests are
/// deterministic and what they read in order is ordered.
#[cfg(test)]
pub(crate) fn test_clock() -> Instant {
    use std::cell::Cell;
    thread_local! {
        static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    NOW.with(|now| {
        let next = match now.get() {
            None => Instant::now(),
            Some(t) => t + Duration::from_millis(1),
        };
        now.set(Some(next));
        next
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn expired(wheel: &mut TimerWheel<u32>, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        wheel.expire(now, &mut out);
        out.sort_unstable();
        out
    }

    /// Steps a fake clock by `step` from `t0` until `key` fires; returns when it fired.
    fn fired_at(wheel: &mut TimerWheel<u32>, t0: Instant, step: Duration, key: u32) -> Duration {
        let mut now = t0;
        loop {
            if expired(wheel, now).contains(&key) {
                return now - t0;
            }
            now += step;
            assert!(now - t0 < Duration::from_secs(3600), "never fired");
        }
    }

    #[test]
    fn fires_no_earlier_than_the_deadline_and_within_one_tick_after() {
        for deadline_ms in [0, 1, 99, 100, 101, 250, 999, 1000, 12_345] {
            let t0 = Instant::now();
            let mut wheel = TimerWheel::new(TICK, 8, t0);
            wheel.arm(t0 + ms(deadline_ms), 1);
            let fired = fired_at(&mut wheel, t0, ms(1), 1);
            assert!(
                fired >= ms(deadline_ms),
                "{deadline_ms}: early at {fired:?}"
            );
            assert!(
                fired < ms(deadline_ms) + TICK,
                "{deadline_ms}: late at {fired:?}"
            );
            assert!(wheel.is_empty());
        }
    }

    #[test]
    fn deadlines_beyond_one_rotation_wait_for_their_own_turn() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 4, t0);
        wheel.arm(t0 + ms(200), 1);
        wheel.arm(t0 + ms(600), 2); // same slot, next rotation
        wheel.arm(t0 + ms(1000), 3); // same slot, two rotations on
        assert_eq!(fired_at(&mut wheel, t0, ms(100), 1), ms(200));
        assert_eq!(fired_at(&mut wheel, t0 + ms(300), ms(100), 2), ms(300));
        assert_eq!(fired_at(&mut wheel, t0 + ms(700), ms(100), 3), ms(300));
    }

    #[test]
    fn a_late_expire_fires_everything_due_and_nothing_else() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 4, t0);
        for k in 0..20u32 {
            wheel.arm(t0 + ms(u64::from(k) * 150), k);
        }
        assert_eq!(
            expired(&mut wheel, t0 + ms(1500)),
            (0..=10).collect::<Vec<_>>()
        );
        assert_eq!(wheel.len(), 9);
        assert_eq!(
            expired(&mut wheel, t0 + ms(10_000)),
            (11..20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_the_next_expire_after_the_current_tick() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        assert!(expired(&mut wheel, t0 + ms(550)).is_empty());
        wheel.arm(t0, 7);
        assert!(expired(&mut wheel, t0 + ms(560)).is_empty());
        assert_eq!(expired(&mut wheel, t0 + ms(600)), [7]);
    }

    #[test]
    fn cancelled_timers_never_fire() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        let a = wheel.arm(t0 + ms(300), 1);
        let _b = wheel.arm(t0 + ms(300), 2);
        let c = wheel.arm(t0 + ms(300), 3);
        assert!(wheel.cancel(a));
        assert!(wheel.cancel(c));
        assert_eq!(wheel.len(), 1);
        assert_eq!(expired(&mut wheel, t0 + ms(5000)), [2]);
    }

    #[test]
    fn cancelling_a_stale_id_is_a_no_op() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 8, t0);
        let fired = wheel.arm(t0 + ms(100), 1);
        assert_eq!(expired(&mut wheel, t0 + ms(100)), [1]);
        assert!(!wheel.cancel(fired));
        // The slab entry is reused; the old id must not cancel the new timer.
        let reused = wheel.arm(t0 + ms(300), 2);
        assert!(!wheel.cancel(fired));
        assert!(wheel.cancel(reused));
        assert!(!wheel.cancel(reused));
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_deadline_is_never_after_the_next_firing() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 4, t0);
        assert_eq!(wheel.next_deadline(), None);
        wheel.arm(t0 + ms(250), 1);
        assert_eq!(wheel.next_deadline(), Some(t0 + ms(300)));
        assert_eq!(wheel.poll_timeout(t0 + ms(100)), Some(ms(200)));
        assert_eq!(wheel.poll_timeout(t0 + ms(400)), Some(Duration::ZERO));
        wheel.arm(t0 + ms(120), 2);
        assert_eq!(wheel.next_deadline(), Some(t0 + ms(200)));
        assert_eq!(expired(&mut wheel, t0 + ms(300)), [1, 2]);
        wheel.arm(t0 + ms(5000), 3);
        let next = wheel.next_deadline();
        assert!(next.is_some_and(|d| d <= t0 + ms(5000)));
    }

    #[test]
    fn matches_a_naive_model_under_random_arms_cancels_and_expiries() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(TICK, 16, t0);
        let mut model: Vec<(u64, u32, TimerId)> = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next_rand = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now_ms = 0;
        for key in 0..5_000u32 {
            match next_rand() % 4 {
                0 | 1 => {
                    let at = now_ms + next_rand() % 5_000;
                    let id = wheel.arm(t0 + ms(at), key);
                    model.push((at, key, id));
                }
                2 if !model.is_empty() => {
                    let i = (next_rand() % model.len() as u64) as usize;
                    let (_, _, id) = model.swap_remove(i);
                    assert!(wheel.cancel(id));
                }
                _ => {
                    now_ms += next_rand() % 150;
                    let got = expired(&mut wheel, t0 + ms(now_ms));
                    // Due ones must fire; ones whose deadline is more than a tick away must not.
                    for &(at, k, _) in &model {
                        if at + 100 <= now_ms {
                            assert!(got.contains(&k), "{k} due at {at} missing at {now_ms}");
                        }
                        if at > now_ms {
                            assert!(!got.contains(&k), "{k} due at {at} fired at {now_ms}");
                        }
                    }
                    model.retain(|(_, k, _)| !got.contains(k));
                    assert_eq!(wheel.len(), model.len());
                }
            }
        }
    }
}
