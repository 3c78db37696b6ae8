//! Connection IO, the only socket code of the broker: read the CONNECT, hand the socket to the
//! client id's home shard, then one reader task and one writer task per connection.
//!
//! monoio 0.2.4 on io_uring loses the bytes of a read that is dropped while in flight, so no
//! read is ever raced against anything (no select!/timeout around a read we keep using): the
//! reader owns the read half and the writer the write half. Closing cancels pending IO through
//! a `Canceller` instead.

use super::state::{ConnId, ShardState, WriterStep};
use super::{Handoff, home_shard};
use crate::protocol::{self, ConnAck, Connect, DecodeError, Packet, ProtocolVersion, ReasonCode};
use bytes::BytesMut;
use monoio::buf::{IoBuf, IoBufMut, SliceMut};
use monoio::io::{
    AsyncWriteRent, CancelHandle, CancelableAsyncReadRent, CancelableAsyncWriteRent, Canceller,
    OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::future::poll_fn;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

pub type Shared = Rc<RefCell<ShardState>>;

/// A new connection reads into this much; idle connections never need more, which keeps
/// the memory of many idle clients small.
const FIRST_READ_BUF: usize = 4096;
/// Each read asks for at least this much free space; when less is left the buffer grows by
/// `READ_BUF`, so a busy connection reads 64 KiB at a time.
const MIN_READ: usize = 4096;
const READ_BUF: usize = 64 * 1024;
/// A writer's spare buffer shrinks back after a burst larger than this.
const MAX_IDLE_WRITE_BUF: usize = 1024 * 1024;
/// How long a new connection may take to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why reading the CONNECT ended without one.
enum ConnectFailure {
    /// Answer with a CONNACK carrying this reason, then close.
    Refuse(ReasonCode, ProtocolVersion),
    Close,
}

/// Serves a connection accepted by this shard.
pub async fn serve_accepted(state: Shared, mut stream: TcpStream, accepted_at: Instant) {
    let _ = stream.set_nodelay(true);
    let max_packet = state.borrow().limits().max_packet_size;
    // Dropping the read on timeout loses its bytes, which is fine: the connection closes.
    let first = monoio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut stream, max_packet)).await;
    let (connect, leftover) = match first {
        Ok(Ok(found)) => found,
        Ok(Err(ConnectFailure::Refuse(reason, version))) => {
            let mut out = BytesMut::new();
            let _ = protocol::encode(&connack_refusal(reason), version, &mut out);
            return refuse(stream, Some(out)).await;
        }
        Ok(Err(ConnectFailure::Close)) | Err(_) => return,
    };
    let admitted = state.borrow_mut().admit(&connect);
    let (client_id, assigned_id) = match admitted {
        Ok(found) => found,
        Err(refusal) => return refuse(stream, refusal.connack(&connect)).await,
    };
    let (me, shards) = {
        let s = state.borrow();
        (s.id(), s.shards())
    };
    let home = home_shard(client_id.as_bytes(), shards);
    let arrival = Arrival {
        client_id,
        assigned_id,
        accepted_at,
    };
    if home == me {
        run_at_home(state, stream, connect, arrival, leftover).await;
        return;
    }
    let fd = stream.into_raw_fd();
    // SAFETY: `into_raw_fd` released monoio's ownership of `fd` and no IO on it is pending, so
    // the std stream becomes its only owner.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let handoff = Handoff {
        stream,
        connect,
        leftover,
        assigned_id: arrival.assigned_id,
        accepted_at: arrival.accepted_at,
    };
    state.borrow_mut().send_handoff(home, Box::new(handoff));
}

/// Serves a connection another shard accepted for a client whose home is this shard.
pub async fn serve_handoff(state: Shared, handoff: Handoff) {
    let Ok(stream) = TcpStream::from_std(handoff.stream) else {
        return;
    };
    // Assigned ids are chosen with their accepting shard as home, so a handed-off client
    // always brought its own id.
    let arrival = Arrival {
        client_id: handoff.connect.client_id.as_str().to_owned(),
        assigned_id: handoff.assigned_id,
        accepted_at: handoff.accepted_at,
    };
    run_at_home(state, stream, handoff.connect, arrival, handoff.leftover).await;
}

fn connack_refusal(reason: ReasonCode) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties: Default::default(),
    })
}

/// Writes the refusal CONNACK, if there is one that fits the client, then closes.
async fn refuse(mut stream: TcpStream, connack: Option<BytesMut>) {
    if let Some(out) = connack {
        let _ = monoio::io::AsyncWriteRentExt::write_all(&mut stream, out).await;
    }
    let _ = stream.shutdown().await;
}

/// Reads until the first packet is complete. It must be CONNECT [MQTT-3.1.0-1]; an
/// unsupported protocol level is answered with CONNACK 0x01 [MQTT-3.1.2-2].
async fn read_connect(
    stream: &mut TcpStream,
    max_packet: usize,
) -> Result<(Box<Connect>, BytesMut), ConnectFailure> {
    let mut buf = BytesMut::with_capacity(FIRST_READ_BUF);
    loop {
        match protocol::decode(&mut buf, ProtocolVersion::V4, max_packet) {
            Ok(Some(Packet::Connect(connect))) => return Ok((connect, buf)),
            Ok(Some(_)) => return Err(ConnectFailure::Close),
            Ok(None) => {}
            Err(DecodeError::UnsupportedProtocolVersion(_)) => {
                let reason = ReasonCode::UnsupportedProtocolVersion;
                return Err(ConnectFailure::Refuse(reason, ProtocolVersion::V4));
            }
            Err(_) => return Err(ConnectFailure::Close),
        }
        reserve(&mut buf, true);
        let len = buf.len();
        let (res, slice) = monoio::io::AsyncReadRent::read(stream, buf.slice_mut(len..)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return Err(ConnectFailure::Close),
            Ok(_) => {}
        }
    }
}

/// Makes room for the next read: 4 KiB (reclaimed in place when the buffer is unshared)
/// until a read has filled all the room it had, then 64 KiB steps.
fn reserve(buf: &mut BytesMut, busy: bool) {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(if busy { READ_BUF } else { FIRST_READ_BUF });
    }
}

/// Who a connection is for, as the accepting shard found it.
struct Arrival {
    client_id: String,
    assigned_id: bool,
    accepted_at: Instant,
}

async fn run_at_home(
    state: Shared,
    mut stream: TcpStream,
    connect: Box<Connect>,
    arrival: Arrival,
    leftover: BytesMut,
) {
    let _ = stream.set_nodelay(true);
    let superseded = state
        .borrow()
        .is_superseded(&arrival.client_id, arrival.accepted_at);
    if superseded {
        let reply = state.borrow_mut().superseded_reply(&connect);
        let _ = monoio::io::AsyncWriteRentExt::write_all(&mut stream, reply).await;
        let _ = stream.shutdown().await;
        return;
    }
    let version = connect.version;
    let canceller = Canceller::new();
    let handle = canceller.handle();
    let conn = {
        let mut s = state.borrow_mut();
        let now = Instant::now();
        let Arrival {
            client_id,
            assigned_id,
            accepted_at,
        } = arrival;
        let conn = s.open_accepted(&connect, client_id, assigned_id, now, accepted_at);
        s.set_canceller(conn, canceller);
        s.end_of_batch(conn, Instant::now());
        conn
    };
    let (reader, writer) = stream.into_split();
    monoio::spawn(write_loop(state.clone(), conn, writer, handle.clone()));
    read_loop(state, conn, reader, leftover, handle, version).await;
}

/// Decodes and handles every complete packet of each read before reading again.
async fn read_loop(
    state: Shared,
    conn: ConnId,
    mut reader: OwnedReadHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: CancelHandle,
    version: ProtocolVersion,
) {
    let max_packet = state.borrow().limits().max_packet_size;
    let mut busy = false;
    loop {
        let now = Instant::now();
        if !handle_buffered(&state, conn, &mut buf, version, max_packet) {
            return;
        }
        state.borrow_mut().end_of_batch(conn, now);
        wait_unpaused(&state).await;
        if !state.borrow().is_live(conn) {
            return;
        }
        reserve(&mut buf, busy);
        let len = buf.len();
        let room = buf.capacity() - len;
        let read = reader.cancelable_read(buf.slice_mut(len..), cancel.clone());
        let (res, slice): (_, SliceMut<BytesMut>) = read.await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => {
                state.borrow_mut().on_connection_lost(conn);
                return;
            }
            Ok(n) => busy |= n == room,
        }
    }
}

/// Returns false when the connection is done (closed by a packet or malformed input).
fn handle_buffered(
    state: &Shared,
    conn: ConnId,
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet: usize,
) -> bool {
    loop {
        match protocol::decode(buf, version, max_packet) {
            Ok(Some(packet)) => {
                if !state.borrow_mut().on_packet(conn, packet) {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(error) => {
                state.borrow_mut().on_malformed(conn, &error);
                return false;
            }
        }
    }
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

/// Swaps the connection's outbound buffer out and writes it whole; repeats until the
/// connection is closed and flushed.
async fn write_loop(
    state: Shared,
    conn: ConnId,
    mut writer: OwnedWriteHalf<TcpStream>,
    cancel: CancelHandle,
) {
    // Grows with the first write; an idle connection holds no write buffer.
    let mut spare = BytesMut::new();
    loop {
        let step =
            poll_fn(
                |cx| match state.borrow_mut().writer_step(conn, &mut spare, cx.waker()) {
                    WriterStep::Wait => Poll::Pending,
                    step => Poll::Ready(step),
                },
            )
            .await;
        if step == WriterStep::Finish {
            break;
        }
        let (res, written) = write_all(&mut writer, spare, &cancel).await;
        spare = written;
        spare.clear();
        if spare.capacity() > MAX_IDLE_WRITE_BUF {
            spare = BytesMut::new();
        }
        if res.is_err() {
            state.borrow_mut().on_write_error(conn);
            break;
        }
    }
    if !state.borrow().is_aborted(conn) {
        let _ = writer.shutdown().await;
    }
    state.borrow_mut().remove_conn(conn);
}

async fn write_all(
    writer: &mut OwnedWriteHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: &CancelHandle,
) -> (std::io::Result<()>, BytesMut) {
    let total = buf.bytes_init();
    let mut written = 0;
    while written < total {
        let (res, slice) = writer
            .cancelable_write(buf.slice(written..total), cancel.clone())
            .await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => written += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
