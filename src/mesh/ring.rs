//! A bounded lock-free single-producer single-consumer ring: the only channel between two shards.
//!
//! Indices grow without bound (wrapping) and are masked into a power-of-two buffer, so
//! `tail - head` is the length and full/empty need no spare slot. Each side keeps a private
//! copy of its own index and a cached copy of the opposite one; it re-reads the shared
//! opposite index only when the cache says "full" (producer) or "empty" (consumer), so in
//! steady state the two cores do not bounce each other's cache lines.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keeps a value alone on its cache line pair (128 bytes covers adjacent-line prefetch).
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

struct Shared<T> {
    /// Next slot the consumer reads. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is accessed by exactly one side at a time: the producer writes slots in
// [tail, head + cap) and publishes them with a Release store of `tail`; the consumer reads slots
// in [head, tail) after an Acquire load of `tail` and hands them back with a Release store of
// `head`. Values of `T` move from one thread to the other, hence `T: Send`.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: see above; `Shared` owns `T`s and is only ever moved as a whole when `T: Send`.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    fn slot(&self, index: usize) -> *mut MaybeUninit<T> {
        self.slots[index & self.mask].get()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        let mut index = head;
        while index != tail {
            // SAFETY: `&mut self` means both ends are gone; slots in [head, tail) hold values
            // that were pushed and never popped, each dropped exactly once here.
            unsafe { (*self.slot(index)).assume_init_drop() };
            index = index.wrapping_add(1);
        }
    }
}

/// The sending end of a ring. Exactly one exists per ring.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    cached_head: usize,
}

/// The receiving end of a ring. Exactly one exists per ring.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    cached_tail: usize,
}

/// Creates a ring holding up to `capacity` items, rounded up to a power of two (at least 1).
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(1).next_power_of_two();
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        mask: capacity - 1,
        slots,
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: 0,
        cached_head: 0,
    };
    let consumer = Consumer {
        shared,
        head: 0,
        cached_tail: 0,
    };
    (producer, consumer)
}

impl<T> Producer<T> {
    /// Appends `value`, or hands it back when the ring is full.
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.shared.capacity();
        if self.tail.wrapping_sub(self.cached_head) == capacity {
            // Acquire: the consumer has finished reading the slots it released.
            self.cached_head = self.shared.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) == capacity {
                return Err(value);
            }
        }
        // SAFETY: tail - head < capacity, so slot `tail` is free: the consumer has released it
        // (Acquire above) and will not read it until we publish it with the store below.
        unsafe { (*self.shared.slot(self.tail)).write(value) };
        self.tail = self.tail.wrapping_add(1);
        // Release: the write of the slot happens-before the consumer's Acquire load of `tail`.
        self.shared.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Items pushed and not yet popped (the consumer may be popping meanwhile).
    pub fn len(&self) -> usize {
        let head = self.shared.head.0.load(Ordering::Relaxed);
        self.tail.wrapping_sub(head)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Consumer<T> {
    /// Removes the oldest item, if any.
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail {
            // Acquire: pairs with the producer's Release store, making the slot writes visible.
            self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return None;
            }
        }
        // SAFETY: head < tail, so slot `head` holds a value the producer published (Acquire
        // above) and will not touch again until we release it with the store below.
        let value = unsafe { (*self.shared.slot(self.head)).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        // Release: our read of the slot happens-before the producer reuses it.
        self.shared.head.0.store(self.head, Ordering::Release);
        Some(value)
    }

    /// Whether the ring looks empty right now (the producer may push at any moment).
    pub fn is_empty(&self) -> bool {
        self.head == self.cached_tail && self.head == self.shared.tail.0.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        assert_eq!(ring::<u8>(0).0.capacity(), 1);
        assert_eq!(ring::<u8>(5).0.capacity(), 8);
        assert_eq!(ring::<u8>(64).1.capacity(), 64);
    }

    #[test]
    fn pops_in_push_order() {
        let (mut tx, mut rx) = ring(4);
        assert_eq!(rx.pop(), None);
        for i in 0..3 {
            assert_eq!(tx.try_push(i), Ok(()));
        }
        assert_eq!(rx.pop(), Some(0));
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
        assert!(rx.is_empty());
    }

    #[test]
    fn full_ring_hands_the_value_back() {
        let (mut tx, mut rx) = ring(2);
        assert_eq!(tx.try_push("a"), Ok(()));
        assert_eq!(tx.try_push("b"), Ok(()));
        assert_eq!(tx.try_push("c"), Err("c"));
        assert_eq!(rx.pop(), Some("a"));
        assert_eq!(tx.try_push("c"), Ok(()));
        assert_eq!(rx.pop(), Some("b"));
        assert_eq!(rx.pop(), Some("c"));
    }

    #[test]
    fn indices_keep_working_across_many_wraps() {
        let (mut tx, mut rx) = ring(4);
        for i in 0..10_000u32 {
            assert_eq!(tx.try_push(i), Ok(()));
            assert_eq!(rx.pop(), Some(i));
        }
    }

    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn dropping_the_ring_drops_queued_items_once() {
        let drops = AtomicUsize::new(0);
        let (mut tx, mut rx) = ring(8);
        for _ in 0..5 {
            assert!(tx.try_push(Counted(&drops)).is_ok());
        }
        drop(rx.pop());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn two_threads_transfer_every_item_in_order() {
        const N: u64 = 2_000_000;
        let (mut tx, mut rx) = ring::<u64>(256);
        let producer = std::thread::spawn(move || {
            let mut next = 0;
            while next < N {
                match tx.try_push(next) {
                    Ok(()) => next += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
        });
        let mut expected = 0;
        while expected < N {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        assert!(producer.join().is_ok());
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn ends_are_send() {
        fn assert_send<S: Send>() {}
        assert_send::<Producer<Box<u8>>>();
        assert_send::<Consumer<Box<u8>>>();
    }
}
