//! The per-thread bound on connection handshakes in flight: a client opens its connection
//! only once its thread has a free slot, so a burst of connects does not overflow the
//! broker's listen backlog.

use crate::clock::now_ns;
use crate::error::LoadError;
use crate::mqtt::{self, Session, Settings};
use std::cell::Cell;
use std::time::Duration;

/// Connection handshakes in flight per thread at most: a burst of thousands of SYNs overflows
/// the broker's listen backlog and turns into one-second SYN retransmits.
const MAX_HANDSHAKES_PER_THREAD: usize = 32;

thread_local! {
    static HANDSHAKES: Cell<usize> = const { Cell::new(0) };
}

/// A slot among this thread's concurrent handshakes, released on drop.
struct HandshakeSlot;

impl HandshakeSlot {
    async fn acquire() -> Self {
        while HANDSHAKES.with(Cell::get) >= MAX_HANDSHAKES_PER_THREAD {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        HANDSHAKES.with(|h| h.set(h.get() + 1));
        Self
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        HANDSHAKES.with(|h| h.set(h.get().saturating_sub(1)));
    }
}

/// Opens a connection once this thread has a free handshake slot; the connect latency is
/// measured from when the slot was granted.
pub(super) async fn open_gated(
    settings: &Settings,
    client_id: &str,
    rbuf_capacity: usize,
) -> Result<(Session, u64), LoadError> {
    let _slot = HandshakeSlot::acquire().await;
    let t0 = now_ns();
    let session = mqtt::open(settings, client_id, rbuf_capacity).await?;
    Ok((session, now_ns() - t0))
}
