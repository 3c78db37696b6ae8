//! `PayloadStore`: the memory a session keeps its queued messages' payloads in.
//!
//! A received payload is a slice of the read buffer it arrived in, so a message kept in a
//! queue for minutes would keep that whole buffer (up to 64 KiB) alive: a queued message
//! needs bytes of its own. One allocation per queued message costs more than the rest of
//! its delivery (a `malloc`, a `free`, and a second allocation the first time the `Bytes` is
//! cloned into the in-flight window), so small payloads are copied into chunks the session
//! owns instead, and each message takes a refcounted slice of its chunk.
//!
//! A session's queue is first in, first out, so its chunks die in order: what a session
//! pins is its live queued and in-flight bytes plus at most two partly used chunks, and
//! nothing once its queue and window are empty (`release`).

use bytes::{Bytes, BytesMut};

/// Bytes of one chunk: many small messages, little waste when a session stops queueing.
const CHUNK: usize = 4096;

/// A payload above this gets an allocation of its own: its own size dwarfs the cost of one,
/// and it would waste most of a chunk.
const SMALL: usize = CHUNK / 4;

#[derive(Debug, Default)]
pub(super) struct PayloadStore {
    /// The unused tail of the current chunk; its used part is shared by the slices cut from it.
    chunk: BytesMut,
}

impl PayloadStore {
    /// A copy of `payload` that pins none of the memory `payload` came in.
    pub fn keep(&mut self, payload: &Bytes) -> Bytes {
        let len = payload.len();
        if len == 0 {
            return Bytes::new();
        }
        if len > SMALL {
            return Bytes::copy_from_slice(payload);
        }
        if self.chunk.capacity() - self.chunk.len() < len {
            self.chunk = BytesMut::with_capacity(CHUNK);
        }
        self.chunk.extend_from_slice(payload);
        self.chunk.split().freeze()
    }

    /// Lets go of the current chunk (its slices keep what they use alive on their own).
    pub fn release(&mut self) {
        if self.chunk.capacity() > 0 {
            self.chunk = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_payload_equals_the_original_and_does_not_share_its_memory() {
        let mut store = PayloadStore::default();
        let buffer = Bytes::from(vec![7u8; 1000]);
        let payload = buffer.slice(10..74);
        let kept = store.keep(&payload);
        assert_eq!(kept, payload);
        assert_ne!(kept.as_ptr(), payload.as_ptr());
    }

    #[test]
    fn small_payloads_share_one_chunk_until_it_is_full() {
        let mut store = PayloadStore::default();
        let payload = Bytes::from(vec![1u8; 100]);
        let first = store.keep(&payload);
        let second = store.keep(&payload);
        // Consecutive slices of the same allocation.
        assert_eq!(second.as_ptr() as usize, first.as_ptr() as usize + 100);
        let kept: Vec<Bytes> = (0..CHUNK / 100).map(|_| store.keep(&payload)).collect();
        let last = kept.last().map(|b| b.as_ptr() as usize).unwrap_or_default();
        let start = first.as_ptr() as usize;
        assert!(
            last < start || last >= start + CHUNK,
            "a full chunk is followed by a new one"
        );
        assert!(kept.iter().all(|b| b == &payload));
    }

    #[test]
    fn a_large_payload_gets_its_own_allocation() {
        let mut store = PayloadStore::default();
        let payload = Bytes::from(vec![2u8; SMALL + 1]);
        let kept = store.keep(&payload);
        assert_eq!(kept, payload);
        assert_eq!(store.chunk.capacity(), 0, "no chunk was started for it");
    }

    #[test]
    fn release_drops_the_chunk_but_not_the_slices_cut_from_it() {
        let mut store = PayloadStore::default();
        let kept = store.keep(&Bytes::from_static(b"hello"));
        store.release();
        assert_eq!(store.chunk.capacity(), 0);
        assert_eq!(&kept[..], b"hello");
    }
}
