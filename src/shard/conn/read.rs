//! The reader task of a connection: read, decode every complete packet, hand each to the
//! shard, repeat; it never races its read against anything (see the module above).

use super::Shared;
use super::transport::{Inbound, Transport};
use crate::protocol::{self, ProtocolVersion};
use crate::shard::reading::{Room, linger};
use crate::shard::state::ConnId;
use bytes::BytesMut;
use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{CancelHandle, CancelableAsyncReadRent, OwnedReadHalf};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// A new connection reads into this much; idle connections never need more, which keeps
/// the memory of many idle clients small.
pub(super) const FIRST_READ_BUF: usize = 4096;
/// Each read asks for at least this much free space; when less is left the buffer grows by
/// `READ_BUF`, so a busy connection reads 64 KiB at a time.
const MIN_READ: usize = 4096;
const READ_BUF: usize = 64 * 1024;
/// A connection whose reads come further apart than this, with nothing part-read, waits for
/// readiness before it takes a read buffer: one more io_uring operation per read, which
/// costs nothing measurable at under 100 reads per second, while a busy connection keeps its
/// buffer and its single read per wake.
const SPARSE: Duration = Duration::from_millis(10);

/// Makes room for the next read: 4 KiB (reclaimed in place when the buffer is unshared)
/// until a read has filled all the room it had, then 64 KiB steps.
pub(super) fn reserve(buf: &mut BytesMut, busy: bool) {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(if busy { READ_BUF } else { FIRST_READ_BUF });
    }
}

/// Decodes and handles every complete packet of each read before reading again. With a
/// `transport` the socket bytes go through it first (and what it answers wakes the writer).
/// Once the broker has closed the connection, lingers (discards input) so the client reads
/// why.
pub(super) async fn read_loop(
    state: Shared,
    conn: ConnId,
    mut reader: OwnedReadHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: CancelHandle,
    version: ProtocolVersion,
    transport: Option<Rc<RefCell<Transport>>>,
) {
    let max_packet = state.borrow().limits().max_packet_size;
    let mut busy = false;
    let mut open = true;
    let mut budget = Room::new(&state, Some(conn));
    // When the last read completed; `None` before the first (a new connection counts as
    // quiet: it waits for readiness first).
    let mut last_read: Option<Instant> = None;
    let eof = loop {
        let now = Instant::now();
        if !handle_buffered(&state, conn, &mut buf, (version, max_packet), now) {
            break false;
        }
        if !open {
            // The transport closed cleanly (TLS close_notify, a WebSocket Close) without an
            // MQTT DISCONNECT.
            state.borrow_mut().on_connection_lost(conn, now);
            break true;
        }
        state.borrow_mut().end_of_batch(conn, now, &buf);
        if state.borrow().latency_pending() {
            state.borrow_mut().record_latency(Instant::now());
        }
        wait_unpaused(&state).await;
        if !budget.fit(&mut buf).await || !state.borrow().is_live(conn) {
            break false;
        }
        // Plain: read into the codec's buffer. Otherwise into the transport's input.
        let mut wire = match &transport {
            None => std::mem::take(&mut buf),
            Some(t) => t.borrow_mut().take_input(),
        };
        let gap = last_read.map_or(SPARSE, |at| now.saturating_duration_since(at));
        last_read = Some(now);
        if wire.is_empty() && gap >= SPARSE {
            // A quiet connection waits for its next bytes holding no buffer at all: most
            // connections of a broker are idle, and 4 KiB each is most of their memory.
            wire = BytesMut::new();
            if !wait_readable(&state, conn, &reader).await {
                state.borrow_mut().on_connection_lost(conn, Instant::now());
                break false;
            }
        }
        reserve(&mut wire, busy);
        let len = wire.len();
        let room = wire.capacity() - len;
        let read = reader.cancelable_read(wire.slice_mut(len..), cancel.clone());
        let (res, slice): (_, SliceMut<BytesMut>) = read.await;
        let wire = slice.into_inner();
        let n = match res {
            Ok(n) if n > 0 => n,
            _ => {
                if let Some(t) = &transport {
                    t.borrow_mut().restore_input(wire);
                }
                state.borrow_mut().on_connection_lost(conn, Instant::now());
                break res.is_ok();
            }
        };
        busy |= n == room;
        state.borrow_mut().count_read(n);
        let Some(t) = &transport else {
            buf = wire;
            continue;
        };
        let decoded = t.borrow_mut().decode(wire, &mut buf);
        if t.borrow().has_output() {
            state.borrow_mut().wake_writer(conn);
        }
        match decoded {
            Ok(Inbound::Open) => {}
            Ok(Inbound::Closed) => open = false,
            // The transport is broken, so no MQTT DISCONNECT can go out (its alert does).
            Err(_) => {
                state.borrow_mut().on_connection_lost(conn, Instant::now());
                break false;
            }
        }
    };
    drop(budget);
    // Lingering reads raw socket bytes and discards them (a transport has nothing left to
    // decode for).
    if !eof && state.borrow().lingers(conn) {
        // Boxed: lingering is rare, and inline its timer would be in every reader's future.
        Box::pin(linger(&state, &mut reader, buf)).await;
    }
}

/// Returns false when the connection is done (closed by a packet or malformed input).
fn handle_buffered(
    state: &Shared,
    conn: ConnId,
    buf: &mut BytesMut,
    (version, max_packet): (ProtocolVersion, usize),
    now: Instant,
) -> bool {
    loop {
        match protocol::decode(buf, version, max_packet) {
            Ok(Some(packet)) => {
                if !state.borrow_mut().on_packet(conn, packet, now) {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(error) => {
                state.borrow_mut().on_malformed(conn, &error, now);
                return false;
            }
        }
    }
}

/// Waits until the socket is readable (or at EOF, or failed: the read that follows tells
/// which), holding no buffer; false when the shard stopped the connection's IO meanwhile.
/// Unlike a read, a readiness wait can be dropped without losing anything.
async fn wait_readable(state: &Shared, conn: ConnId, reader: &OwnedReadHalf<TcpStream>) -> bool {
    // SAFETY: the halves share the stream through monoio's `UnsafeCell`, and each half
    // dereferences it for its own operations exactly like this (monoio's `Split` contract:
    // read and write operations are independent). `readable` only reads the descriptor.
    let stream: &TcpStream = unsafe { &*reader.0.get() };
    let mut ready = std::pin::pin!(stream.readable(true));
    poll_fn(|cx| {
        if state.borrow_mut().park_idle_reader(conn, cx.waker()) {
            return Poll::Ready(false);
        }
        ready.as_mut().poll(cx).map(|_| true)
    })
    .await
}

async fn wait_unpaused(state: &Shared) {
    poll_fn(|cx| {
        let mut s = state.borrow_mut();
        if s.is_paused() {
            s.park_reader(cx.waker());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}
