//! Cross-thread wake-ups for a shard's mesh inbox: a "notified" flag plus a single waker slot
//! that any peer thread may fire without a lock.

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

/// Nobody touches the waker slot.
const IDLE: u8 = 0;
/// The owner is replacing the waker.
const REGISTERING: u8 = 0b01;
/// A peer is taking the waker (or asked for a wake while the owner was registering).
const WAKING: u8 = 0b10;

/// One registered waker, replaced by a single owner and fired by any number of threads.
///
/// The state byte grants exclusive access to `waker`: the owner writes it only after moving
/// IDLE -> REGISTERING, a waker-thread takes it only after moving IDLE -> WAKING. If a wake
/// arrives during registration it leaves WAKING set and the owner fires the new waker itself.
struct WakerSlot {
    state: AtomicU8,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `waker` is only accessed by the thread that won exclusive access through `state`
// (see the type's documentation); `Waker` is Send + Sync.
unsafe impl Sync for WakerSlot {}

impl WakerSlot {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` to be woken by the next `wake`. Called only by the slot's owner.
    fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: we moved IDLE -> REGISTERING, so no other thread reads or writes the
                // slot until we leave REGISTERING.
                unsafe {
                    let slot = &mut *self.waker.get();
                    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *slot = Some(waker.clone());
                    }
                }
                let done = self.state.compare_exchange(
                    REGISTERING,
                    IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                if done.is_err() {
                    // A peer asked for a wake while we held the slot and could not take the
                    // waker: do its job. The state is REGISTERING | WAKING, so it is still ours.
                    // SAFETY: exclusive as above until the swap below releases the slot.
                    let pending = unsafe { (*self.waker.get()).take() };
                    self.state.swap(IDLE, Ordering::AcqRel);
                    if let Some(w) = pending {
                        w.wake();
                    }
                }
            }
            // A peer is waking the previous waker right now: make sure we are polled again.
            Err(_) => waker.wake_by_ref(),
        }
    }

    /// Wakes the registered waker, if any. Callable from any thread.
    fn wake(&self) {
        if self.state.fetch_or(WAKING, Ordering::AcqRel) == IDLE {
            // SAFETY: we moved IDLE -> WAKING, so the slot is ours until we clear WAKING.
            let waker = unsafe { (*self.waker.get()).take() };
            self.state.fetch_and(!WAKING, Ordering::Release);
            if let Some(w) = waker {
                w.wake();
            }
        }
        // Otherwise the owner is registering (it will see WAKING and wake itself) or another
        // peer is already waking it.
    }
}

/// A shard's doorbell: peers ring it after pushing into its inbox rings.
pub(crate) struct Notifier {
    notified: AtomicBool,
    slot: WakerSlot,
}

impl Notifier {
    pub(crate) const fn new() -> Self {
        Self {
            notified: AtomicBool::new(false),
            slot: WakerSlot::new(),
        }
    }

    /// Called by a peer after its pushes are published. Skips the wake when the flag was
    /// already set: whoever set it has woken, or is about to wake, the owner.
    pub(crate) fn notify(&self) {
        // AcqRel: the ring pushes before this happen-before the owner's Acquire swap.
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.slot.wake();
        }
    }

    /// Called by the owner: Ready (consuming the notification) if notified, else registers.
    /// Checks again after registering so a notify racing with registration is never lost.
    pub(crate) fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.notified.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.slot.register(cx.waker());
        if self.notified.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("notified", &self.notified.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        (counter, waker)
    }

    #[test]
    fn notify_before_poll_is_not_lost() {
        let n = Notifier::new();
        let (_, waker) = counting();
        n.notify();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(n.poll_notified(&mut cx), Poll::Ready(()));
        assert_eq!(n.poll_notified(&mut cx), Poll::Pending);
    }

    #[test]
    fn notify_after_registration_wakes_the_owner_once() {
        let n = Notifier::new();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(n.poll_notified(&mut cx), Poll::Pending);
        n.notify();
        n.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(n.poll_notified(&mut cx), Poll::Ready(()));
    }

    #[test]
    fn concurrent_notifies_always_reach_a_waiting_owner() {
        let n = Arc::new(Notifier::new());
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        for round in 0..200 {
            while n.poll_notified(&mut cx).is_ready() {}
            let before = count.0.load(Ordering::SeqCst);
            let peer = {
                let n = Arc::clone(&n);
                std::thread::spawn(move || n.notify())
            };
            assert!(peer.join().is_ok());
            // Either the waker fired, or the flag is still set for the next poll.
            let woke = count.0.load(Ordering::SeqCst) > before;
            assert!(woke || n.poll_notified(&mut cx).is_ready(), "round {round}");
        }
    }
}
