//! The bounds a connection's reader keeps: room for a large packet is taken from the shard's
//! budget before the buffer grows for it (`Room`), a buffer a large packet grew goes back to
//! small once that packet is read, and after the broker closed the connection the reader
//! lingers a bounded while, discarding input, so that the client reads why (`linger`).

use super::conn::Shared;
use super::state::{ConnId, LARGE_PACKET};
use crate::protocol;
use bytes::BytesMut;
use monoio::io::AsyncReadRent;
use std::future::poll_fn;
use std::time::{Duration, Instant};

/// How long a reader lingers after the broker closed its connection, at most.
const LINGER: Duration = Duration::from_secs(2);
/// How many bytes a lingering reader discards, at most.
const LINGER_BYTES: usize = 16 * 1024 * 1024;
/// What a lingering reader reads into.
const LINGER_BUF: usize = 4096;

/// A read buffer that grew past this is replaced by one of `SMALL_READ_BUF` once what it
/// still holds fits in that: its memory (shared with the last large packet's payload until
/// that is dropped) is not kept for the connection's life.
const MAX_IDLE_READ_BUF: usize = 4 * LARGE_PACKET;
const SMALL_READ_BUF: usize = LARGE_PACKET;

/// The room a reader holds in the shard's budget for the large packet it is reading; given
/// back when the packet is read or the reader ends (on drop).
pub(super) struct Room {
    state: Shared,
    /// `None` while the packet read is the CONNECT.
    conn: Option<ConnId>,
    bytes: usize,
}

impl Room {
    pub fn new(state: &Shared, conn: Option<ConnId>) -> Self {
        Self {
            state: state.clone(),
            conn,
            bytes: 0,
        }
    }

    /// Before a read: when `buf` begins a packet over `LARGE_PACKET`, waits (not reading)
    /// until the shard's budget has room for all of it, then makes that room in `buf` at
    /// once; gives back the room of a packet that was read; brings a buffer a large packet
    /// grew back to small. Returns false if the connection closed while waiting.
    pub async fn fit(&mut self, buf: &mut BytesMut) -> bool {
        let need = protocol::announced_size(buf).filter(|&size| size > LARGE_PACKET);
        if need != Some(self.bytes) {
            self.give_back();
        }
        let Some(size) = need else {
            if buf.capacity() > MAX_IDLE_READ_BUF && buf.len() <= SMALL_READ_BUF {
                let mut small = BytesMut::with_capacity(SMALL_READ_BUF);
                small.extend_from_slice(buf);
                *buf = small;
            }
            return true;
        };
        if self.bytes == 0 {
            let taken = poll_fn(|cx| {
                self.state
                    .borrow_mut()
                    .take_read_room(self.conn, size, Instant::now(), cx.waker())
            })
            .await;
            if !taken {
                return false;
            }
            self.bytes = size;
        }
        buf.reserve(size.saturating_sub(buf.len()));
        true
    }

    fn give_back(&mut self) {
        if self.bytes > 0 {
            // The reader never holds a borrow across an await, so this one is free.
            if let Ok(mut state) = self.state.try_borrow_mut() {
                state.give_back_read_room(self.bytes);
            }
            self.bytes = 0;
        }
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// The broker closed the connection: its writer flushes the last bytes (the DISCONNECT or
/// CONNACK that says why) and shuts the write side down. Closing the socket while input the
/// client sent is still unread would make the kernel answer with a reset, which can destroy
/// the reason before the client reads it (and fails the client's next write), so the reader
/// goes on reading and discarding until the client closes its side, for `LINGER` and
/// `LINGER_BYTES` at most; then the socket closes. Within the shard's bound on lingering
/// sockets; past it the socket closes at once.
///
/// Dropping a read on timeout is allowed here: its bytes are discarded anyway.
pub(super) async fn linger<R: AsyncReadRent>(state: &Shared, reader: &mut R, mut buf: BytesMut) {
    if !state.borrow_mut().start_linger() {
        return;
    }
    buf.clear();
    buf.reserve(LINGER_BUF);
    let deadline = Instant::now() + LINGER;
    let mut left = LINGER_BYTES;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            break;
        }
        let Ok((res, back)) = monoio::time::timeout(wait, reader.read(buf)).await else {
            break;
        };
        buf = back;
        match res {
            Ok(n) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
        buf.clear();
    }
    state.borrow_mut().end_linger();
}
