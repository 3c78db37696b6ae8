//! The shard mesh: one SPSC ring per ordered pair of shards, built up front, and the doorbells
//! that wake a shard when peers have queued something for it.
//!
//! Each shard owns one [`MeshEnds`]: the producers of its rings to every peer, the consumers of
//! every peer's ring to it, and a handle on every shard's doorbell. Sending is `try_send` (never
//! blocks, hands the message back when the peer's ring is full) followed, once per batch, by
//! `flush_wakes`, which rings each touched peer's doorbell once. The owner awaits `wait` and
//! then `drain`s. The message type is the shard's business.

pub(crate) mod notify;
pub mod ring;
mod yielding;

use notify::Notifier;
use ring::{CachePadded, Consumer, Producer};
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
pub use yielding::yield_now;

/// How many messages `drain` takes from one peer before moving on to the next.
const DRAIN_BATCH: usize = 64;

/// One shard's ends of the mesh. Owned by that shard's thread; `Send`, not `Sync`.
pub struct MeshEnds<T> {
    id: usize,
    peers: Box<[usize]>,
    /// Indexed by destination shard id; `None` at our own id.
    outbox: Box<[Option<Producer<T>>]>,
    /// One entry per peer, in `peers` order.
    inbox: Box<[Consumer<T>]>,
    /// Every shard's doorbell, indexed by shard id.
    doorbells: Arc<[CachePadded<Notifier>]>,
    /// Peers pushed to since the last `flush_wakes` (and the same set as flags, for O(1) dedup).
    to_wake: Vec<usize>,
    marked: Box<[bool]>,
    /// The peer `drain` starts with next, so no peer is starved when `max` cuts a drain short.
    cursor: usize,
    /// `drain` stopped at `max`: more may be queued without any doorbell ringing.
    backlog: Cell<bool>,
}

/// Creates the rings for `n_shards` shards (`capacity` messages each, rounded up to a power of
/// two) and returns each shard's ends, indexed by shard id.
pub fn build<T: Send>(n_shards: usize, capacity: usize) -> Vec<MeshEnds<T>> {
    let doorbells: Arc<[CachePadded<Notifier>]> = (0..n_shards)
        .map(|_| CachePadded(Notifier::new()))
        .collect();
    let mut outboxes: Vec<Vec<Option<Producer<T>>>> = (0..n_shards)
        .map(|_| (0..n_shards).map(|_| None).collect())
        .collect();
    let mut inboxes: Vec<Vec<Consumer<T>>> = (0..n_shards).map(|_| Vec::new()).collect();
    for to in 0..n_shards {
        for from in (0..n_shards).filter(|&from| from != to) {
            let (tx, rx) = ring::ring(capacity);
            outboxes[from][to] = Some(tx);
            inboxes[to].push(rx);
        }
    }
    outboxes
        .into_iter()
        .zip(inboxes)
        .enumerate()
        .map(|(id, (outbox, inbox))| MeshEnds {
            id,
            peers: (0..n_shards).filter(|&p| p != id).collect(),
            outbox: outbox.into_boxed_slice(),
            inbox: inbox.into_boxed_slice(),
            doorbells: Arc::clone(&doorbells),
            to_wake: Vec::with_capacity(n_shards),
            marked: vec![false; n_shards].into_boxed_slice(),
            cursor: 0,
            backlog: Cell::new(false),
        })
        .collect()
}

impl<T> MeshEnds<T> {
    /// This shard's id.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the mesh connects, this one included.
    pub fn shards(&self) -> usize {
        self.outbox.len()
    }

    /// Every other shard's id, ascending.
    pub fn peers(&self) -> &[usize] {
        &self.peers
    }

    /// Queues `msg` for shard `to` and marks `to` for the next `flush_wakes`. Hands `msg` back
    /// when `to`'s ring is full, or when `to` is this shard or no shard at all (a caller bug).
    pub fn try_send(&mut self, to: usize, msg: T) -> Result<(), T> {
        let Some(Some(tx)) = self.outbox.get_mut(to) else {
            return Err(msg);
        };
        tx.try_push(msg)?;
        if !self.marked[to] {
            self.marked[to] = true;
            self.to_wake.push(to);
        }
        Ok(())
    }

    /// Messages in the ring to shard `to` that it has not taken yet (0 for this shard). Reads
    /// the consumer's index: for metrics, not for every send.
    pub fn queued_to(&self, to: usize) -> usize {
        match self.outbox.get(to) {
            Some(Some(tx)) => tx.len(),
            _ => 0,
        }
    }

    /// Rings the doorbell of every peer sent to since the last flush, once each.
    pub fn flush_wakes(&mut self) {
        for to in self.to_wake.drain(..) {
            self.marked[to] = false;
            self.doorbells[to].0.notify();
        }
    }

    /// Returns once something may be queued for us: a peer rang our doorbell, or the last
    /// `drain` stopped at its `max` (then it first yields to the other tasks, see
    /// [`yield_now`]). A notification that arrives before the call is not lost.
    pub async fn wait(&self) {
        if self.backlog.get() {
            yield_now().await;
            return;
        }
        std::future::poll_fn(|cx| self.doorbells[self.id].0.poll_notified(cx)).await
    }

    /// Hands up to `max` queued messages to `f(from_shard, msg)`, taking a batch from each peer
    /// in turn, and returns how many it handed. Per peer, messages keep their send order.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(usize, T)) -> usize {
        let peers = self.inbox.len();
        if peers == 0 || max == 0 {
            return 0;
        }
        let mut handed = 0;
        let mut empty_in_a_row = 0;
        while handed < max && empty_in_a_row < peers {
            let from = self.peers[self.cursor];
            let rx = &mut self.inbox[self.cursor];
            let batch_end = handed + DRAIN_BATCH.min(max - handed);
            let batch_start = handed;
            while handed < batch_end {
                let Some(msg) = rx.pop() else { break };
                f(from, msg);
                handed += 1;
            }
            empty_in_a_row = if handed == batch_start {
                empty_in_a_row + 1
            } else {
                0
            };
            self.cursor = (self.cursor + 1) % peers;
        }
        self.backlog.set(handed == max);
        handed
    }
}

impl<T> fmt::Debug for MeshEnds<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshEnds")
            .field("id", &self.id)
            .field("peers", &self.peers)
            .field("to_wake", &self.to_wake)
            .field("backlog", &self.backlog.get())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::Duration;

    fn is_ready(fut: impl Future<Output = ()>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        pin!(fut).poll(&mut cx).is_ready()
    }

    fn drain_all<T>(ends: &mut MeshEnds<T>) -> Vec<(usize, T)> {
        let mut got = Vec::new();
        ends.drain(usize::MAX, |from, m| got.push((from, m)));
        got
    }

    #[test]
    fn mesh_ends_can_move_to_their_shard_thread() {
        fn assert_send<S: Send>() {}
        assert_send::<MeshEnds<Box<u8>>>();
    }

    #[test]
    fn every_shard_gets_a_ring_to_each_peer_and_none_to_itself() {
        let mesh = build::<u32>(3, 4);
        assert_eq!(mesh.len(), 3);
        assert_eq!(mesh[0].peers(), &[1, 2]);
        assert_eq!(mesh[1].peers(), &[0, 2]);
        assert_eq!(mesh[2].peers(), &[0, 1]);
        assert!(mesh.iter().enumerate().all(|(i, e)| e.id() == i));
        assert!(mesh.iter().all(|e| e.shards() == 3));
    }

    #[test]
    fn messages_arrive_tagged_with_their_sender_in_order() {
        let mut mesh = build::<u32>(3, 8);
        for v in 0..3 {
            assert_eq!(mesh[0].try_send(2, v), Ok(()));
            assert_eq!(mesh[1].try_send(2, 10 + v), Ok(()));
        }
        let got = drain_all(&mut mesh[2]);
        let from0: Vec<_> = got.iter().filter(|(f, _)| *f == 0).map(|m| m.1).collect();
        let from1: Vec<_> = got.iter().filter(|(f, _)| *f == 1).map(|m| m.1).collect();
        assert_eq!(from0, [0, 1, 2]);
        assert_eq!(from1, [10, 11, 12]);
        assert!(drain_all(&mut mesh[0]).is_empty());
    }

    #[test]
    fn sending_to_a_full_ring_hands_the_message_back() {
        let mut mesh = build::<u32>(2, 2);
        assert_eq!(mesh[0].try_send(1, 1), Ok(()));
        assert_eq!(mesh[0].try_send(1, 2), Ok(()));
        assert_eq!(mesh[0].try_send(1, 3), Err(3));
        assert_eq!(drain_all(&mut mesh[1]), [(0, 1), (0, 2)]);
        assert_eq!(mesh[0].try_send(1, 3), Ok(()));
    }

    #[test]
    fn sending_to_self_or_to_no_shard_hands_the_message_back() {
        let mut mesh = build::<u32>(2, 2);
        assert_eq!(mesh[0].try_send(0, 7), Err(7));
        assert_eq!(mesh[0].try_send(2, 8), Err(8));
    }

    #[test]
    fn drain_stops_at_max_and_serves_peers_in_turn() {
        let mut mesh = build::<u32>(3, 1024);
        for v in 0..200 {
            assert!(mesh[0].try_send(2, v).is_ok());
            assert!(mesh[1].try_send(2, v).is_ok());
        }
        let mut senders = Vec::new();
        assert_eq!(mesh[2].drain(100, |from, _| senders.push(from)), 100);
        assert_eq!(senders.iter().filter(|&&f| f == 0).count(), DRAIN_BATCH);
        assert_eq!(
            senders.iter().filter(|&&f| f == 1).count(),
            100 - DRAIN_BATCH
        );
        assert_eq!(drain_all(&mut mesh[2]).len(), 300);
    }

    #[test]
    fn wait_is_ready_only_after_a_flush() {
        let mut mesh = build::<u32>(2, 8);
        assert!(!is_ready(mesh[1].wait()));
        assert!(mesh[0].try_send(1, 5).is_ok());
        assert!(!is_ready(mesh[1].wait()), "no flush, no wake");
        mesh[0].flush_wakes();
        assert!(is_ready(mesh[1].wait()));
        assert!(!is_ready(mesh[1].wait()), "the notification is consumed");
        assert_eq!(drain_all(&mut mesh[1]), [(0, 5)]);
    }

    #[test]
    fn wait_after_a_drain_left_a_backlog_returns_after_the_other_tasks_ran() {
        let mut mesh = build::<u32>(2, 8);
        for v in 0..4 {
            assert!(mesh[0].try_send(1, v).is_ok());
        }
        assert_eq!(mesh[1].drain(2, |_, _| {}), 2);
        let mut rx = mesh.swap_remove(1);
        monoio_runtime().block_on(async move {
            let other_ran = std::rc::Rc::new(std::cell::Cell::new(false));
            let flag = std::rc::Rc::clone(&other_ran);
            monoio::spawn(async move { flag.set(true) });
            let waited = monoio::time::timeout(Duration::from_secs(5), rx.wait()).await;
            assert!(waited.is_ok(), "a backlog must not need a doorbell");
            assert!(other_ran.get(), "wait must yield to ready tasks");
            assert_eq!(rx.drain(8, |_, _| {}), 2);
            assert!(!is_ready(rx.wait()));
        });
    }

    fn monoio_runtime() -> monoio::FusionRuntime<
        monoio::time::TimeDriver<monoio::IoUringDriver>,
        monoio::time::TimeDriver<monoio::LegacyDriver>,
    > {
        match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("cannot build a monoio runtime: {e}"),
        }
    }

    #[test]
    fn a_flush_wakes_a_shard_waiting_on_another_monoio_thread() {
        const N: u64 = 200_000;
        let mut mesh = build::<u64>(2, 256);
        let mut rx = mesh.pop().expect("two ends");
        let mut tx = mesh.pop().expect("two ends");
        let receiver = std::thread::spawn(move || {
            monoio_runtime().block_on(async move {
                let mut expected = 0;
                while expected < N {
                    let waited = monoio::time::timeout(Duration::from_secs(10), rx.wait()).await;
                    assert!(waited.is_ok(), "lost wake-up at {expected}");
                    rx.drain(usize::MAX, |from, v| {
                        assert_eq!((from, v), (0, expected));
                        expected += 1;
                    });
                }
            })
        });
        let sender = std::thread::spawn(move || {
            let give_up = std::time::Instant::now() + Duration::from_secs(20);
            monoio_runtime().block_on(async move {
                let mut next = 0;
                while next < N && std::time::Instant::now() < give_up {
                    while next < N && tx.try_send(1, next).is_ok() {
                        next += 1;
                    }
                    tx.flush_wakes();
                    monoio::time::sleep(Duration::from_micros(50)).await;
                }
            })
        });
        assert!(receiver.join().is_ok(), "the receiver missed a wake-up");
        assert!(sender.join().is_ok());
    }
}
