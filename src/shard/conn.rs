//! Connection IO, the only socket code of the broker: read the CONNECT, hand the socket to the
//! client id's home shard, run the 5.0 enhanced-authentication exchange there if the CONNECT
//! named a method (`authenticate`), then one reader task and one writer task per connection.
//!
//! monoio 0.2.4 on io_uring loses the bytes of a read that is dropped while in flight, so no
//! read is ever raced against anything (no select!/timeout around a read we keep using): the
//! reader owns the read half and the writer the write half. Closing cancels pending IO through
//! a `Canceller` instead.

use super::reading::{Room, linger};
use super::state::{Authenticated, ConnId, Login, Refusal, ShardState, WriterStep};
use super::{Handoff, home_shard};
use crate::auth::{Authentication, Reply};
use crate::protocol::{
    self, ConnAck, Connect, DecodeError, MqttString, Packet, ProtocolVersion, ReasonCode,
};
use bytes::{Bytes, BytesMut};
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
/// How long a refused connection (over the connection or rate limit) may take to send its
/// CONNECT and take the CONNACK: short, since these arrive when the broker is already full.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest CONNECT a refused connection may send; a larger one is closed without a
/// CONNACK, which bounds the buffer each refusal holds.
const REFUSAL_MAX_PACKET: usize = 16 * 1024;

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
    let reading = read_connect(&state, &mut stream, max_packet);
    let first = monoio::time::timeout(CONNECT_TIMEOUT, reading).await;
    let (connect, leftover) = match first {
        Ok(Ok(found)) => found,
        Ok(Err(ConnectFailure::Refuse(reason, version))) => {
            state
                .borrow_mut()
                .refused_unread(reason, stream.peer_addr().ok());
            return refuse(&state, stream, bare_refusal(reason, version)).await;
        }
        Ok(Err(ConnectFailure::Close)) | Err(_) => return,
    };
    let admitted = state.borrow_mut().admit(&connect);
    let (client_id, assigned_id) = match admitted {
        Ok(found) => found,
        Err(refusal) => return refuse(&state, stream, refusal.connack(&connect)).await,
    };
    if let Err(code) = log_in(&state, &connect).await {
        let peer = stream.peer_addr().ok();
        state.borrow_mut().auth_failed(&connect, code, peer);
        return refuse(
            &state,
            stream,
            Login::refusal(code, &connect).connack(&connect),
        )
        .await;
    }
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

/// The password check of a CONNECT (`auth.password_file`), at the accepting shard: nothing
/// of a session is touched before it. The hashing runs on the blocking pool, never on the
/// shard.
async fn log_in(state: &Shared, connect: &Connect) -> Result<(), ReasonCode> {
    let verification = match state.borrow_mut().login(connect) {
        Login::Accepted => return Ok(()),
        Login::Refused(code) => return Err(code),
        Login::Verify(verification) => verification,
    };
    let login = match monoio::spawn_blocking(move || verification.run()).await {
        Ok((verification, ok)) => state.borrow_mut().verified(&verification, ok),
        Err(_) => {
            state.borrow_mut().verification_abandoned();
            Login::Refused(ReasonCode::ServerUnavailable)
        }
    };
    match login {
        Login::Refused(code) => Err(code),
        _ => Ok(()),
    }
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

/// Answers a connection the shard will not serve (over its connection or rate limit): reads
/// its CONNECT, within `REFUSAL_TIMEOUT` and `REFUSAL_MAX_PACKET`, so that the CONNACK can
/// be in the client's protocol version, answers with `reason`, and closes
/// [MQTT-3.2.2-7]. `ShardState::on_accept` bounds how many of these run at once.
pub async fn serve_refused(state: Shared, mut stream: TcpStream, reason: ReasonCode) {
    let max_packet = state
        .borrow()
        .limits()
        .max_packet_size
        .min(REFUSAL_MAX_PACKET);
    let answer = async {
        let _ = stream.set_nodelay(true);
        match read_connect(&state, &mut stream, max_packet).await {
            Ok((connect, _)) => {
                let refusal = Refusal::new(connect.version, reason.into());
                refuse(&state, stream, refusal.connack(&connect)).await;
            }
            Err(ConnectFailure::Refuse(reason, version)) => {
                refuse(&state, stream, bare_refusal(reason, version)).await;
            }
            Err(ConnectFailure::Close) => {}
        }
    };
    // Dropping a pending read or write on timeout is fine: the connection closes.
    let _ = monoio::time::timeout(REFUSAL_TIMEOUT, answer).await;
    state.borrow_mut().end_refusal();
}

/// A refusing CONNACK to a CONNECT that could not be decoded (so its limits are unknown):
/// Session Present 0 [MQTT-3.2.2-6], no properties.
fn bare_refusal(reason: ReasonCode, version: ProtocolVersion) -> Option<BytesMut> {
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties: Default::default(),
    });
    let mut out = BytesMut::new();
    protocol::encode(&connack, version, &mut out).ok()?;
    Some(out)
}

/// Writes the refusal CONNACK, if there is one that fits the client, then closes (after
/// lingering, so that the client reads it).
async fn refuse(state: &Shared, mut stream: TcpStream, connack: Option<BytesMut>) {
    if let Some(out) = connack {
        let _ = monoio::io::AsyncWriteRentExt::write_all(&mut stream, out).await;
    }
    let _ = stream.shutdown().await;
    linger(state, &mut stream, BytesMut::new()).await;
}

/// Writes one packet straight to the socket (before the connection has a writer task).
async fn send(stream: &mut TcpStream, packet: &Packet, version: ProtocolVersion) -> bool {
    let mut out = BytesMut::new();
    if protocol::encode(packet, version, &mut out).is_err() {
        return false;
    }
    let (res, _) = monoio::io::AsyncWriteRentExt::write_all(stream, out).await;
    res.is_ok()
}

/// Reads until the first packet is complete. It must be CONNECT [MQTT-3.1.0-1]; an
/// unsupported protocol level is answered with CONNACK 0x01 [MQTT-3.1.2-2].
async fn read_connect(
    state: &Shared,
    stream: &mut TcpStream,
    max_packet: usize,
) -> Result<(Box<Connect>, BytesMut), ConnectFailure> {
    let mut buf = BytesMut::with_capacity(FIRST_READ_BUF);
    let mut room = Room::new(state, None);
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
        room.fit(&mut buf).await;
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
    mut leftover: BytesMut,
) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    // The exchange runs before anything touches the session: an unauthenticated client
    // never takes over a connection or sees a session's state.
    let authenticated = match connect.properties.authentication_method.clone() {
        None => None,
        Some(method) => {
            match authenticate(&state, &mut stream, &connect, &method, leftover).await {
                Some((done, rest)) => {
                    leftover = rest;
                    Some(done)
                }
                None => return,
            }
        }
    };
    let superseded = state
        .borrow()
        .is_superseded(&arrival.client_id, arrival.accepted_at);
    if superseded {
        let reply = state
            .borrow_mut()
            .superseded_reply(&connect, Instant::now());
        let _ = monoio::io::AsyncWriteRentExt::write_all(&mut stream, reply).await;
        let _ = stream.shutdown().await;
        linger(&state, &mut stream, leftover).await;
        return;
    }
    let stored = state
        .borrow()
        .check_session_room(&connect, &arrival.client_id);
    if let Err(refusal) = stored {
        return refuse(&state, stream, refusal.connack(&connect)).await;
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
        let arrival = (client_id, assigned_id, accepted_at);
        let conn = s.open_authenticated(&connect, arrival, now, authenticated);
        s.set_canceller(conn, canceller);
        s.opened(conn, &connect, peer);
        s.end_of_batch(conn, Instant::now(), &leftover);
        conn
    };
    let (reader, writer) = stream.into_split();
    monoio::spawn(write_loop(state.clone(), conn, writer, handle.clone()));
    read_loop(state, conn, reader, leftover, handle, version).await;
}

/// Why an enhanced-authentication exchange ended without success.
enum AuthFailure {
    /// Answer with CONNACK carrying this reason (never DISCONNECT before a successful
    /// CONNACK [MQTT-3.14.0-1]), then close.
    Refuse(ReasonCode),
    /// The client left or the socket failed: just close.
    Close,
}

/// Runs the AUTH exchange of a CONNECT that named `method` (4.12), bounded by the
/// configured exchange timeout and `auth::MAX_ROUNDS`. On success returns the
/// authentication and the bytes read after the last AUTH.
async fn authenticate(
    state: &Shared,
    stream: &mut TcpStream,
    connect: &Connect,
    method: &MqttString,
    buf: BytesMut,
) -> Option<(Authenticated, BytesMut)> {
    let timeout = state.borrow().limits().auth_timeout;
    let data = connect.properties.authentication_data.as_ref();
    let started = Authentication::start(state.borrow().methods(), method, data);
    let result = match started {
        Ok((mut auth, reply)) => {
            let exchange = exchange(state, stream, &mut auth, reply, buf);
            match monoio::time::timeout(timeout, exchange).await {
                Ok(Ok((data, rest))) => Ok((Authenticated { auth, data }, rest)),
                Ok(Err(failure)) => Err(failure),
                // An idle half-authenticated client is closed like a CONNECT that never came.
                Err(_) => Err(AuthFailure::Close),
            }
        }
        Err(reason) => Err(AuthFailure::Refuse(reason)),
    };
    match result {
        Ok(done) => Some(done),
        Err(failure) => {
            if let AuthFailure::Refuse(reason) = &failure {
                let peer = stream.peer_addr().ok();
                state.borrow_mut().auth_failed(connect, *reason, peer);
            }
            if let AuthFailure::Refuse(reason) = failure
                && let Some(out) = Refusal::new(connect.version, reason.into()).connack(connect)
            {
                let _ = monoio::io::AsyncWriteRentExt::write_all(stream, out).await;
            }
            let _ = stream.shutdown().await;
            linger(state, stream, BytesMut::new()).await;
            None
        }
    }
}

/// Sends `reply` and reads the client's next AUTH until the method decides.
async fn exchange(
    state: &Shared,
    stream: &mut TcpStream,
    auth: &mut Authentication,
    mut reply: Reply,
    mut buf: BytesMut,
) -> Result<(Option<Bytes>, BytesMut), AuthFailure> {
    let version = ProtocolVersion::V5;
    let max_packet = state.borrow().limits().max_packet_size;
    loop {
        match reply {
            Reply::Success(data) => return Ok((data, buf)),
            Reply::Fail(reason) => return Err(AuthFailure::Refuse(reason)),
            Reply::Continue(data) => {
                // [MQTT-4.12.0-2] the server asks for more with AUTH 0x18.
                let packet = auth.auth_packet(ReasonCode::ContinueAuthentication, Some(data));
                if !send(stream, &packet, version).await {
                    return Err(AuthFailure::Close);
                }
            }
        }
        reply = match read_packet(stream, &mut buf, version, max_packet).await? {
            Packet::Auth(packet) => auth.on_auth(state.borrow().methods(), &packet),
            Packet::Disconnect(_) => return Err(AuthFailure::Close),
            // [MQTT-3.1.2-30] only AUTH or DISCONNECT until CONNACK.
            _ => Reply::Fail(ReasonCode::ProtocolError),
        };
    }
}

/// Reads until one packet is complete.
async fn read_packet(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet: usize,
) -> Result<Packet, AuthFailure> {
    loop {
        match protocol::decode(buf, version, max_packet) {
            Ok(Some(packet)) => return Ok(packet),
            Ok(None) => {}
            Err(error) => return Err(AuthFailure::Refuse(error.reason_code())),
        }
        reserve(buf, false);
        let owned = std::mem::take(buf);
        let len = owned.len();
        let (res, slice) = monoio::io::AsyncReadRent::read(stream, owned.slice_mut(len..)).await;
        *buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return Err(AuthFailure::Close),
            Ok(_) => {}
        }
    }
}

/// Decodes and handles every complete packet of each read before reading again. Once the
/// broker has closed the connection, lingers (discards input) so the client reads why.
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
    let mut budget = Room::new(&state, Some(conn));
    let eof = loop {
        let now = Instant::now();
        if !handle_buffered(&state, conn, &mut buf, (version, max_packet), now) {
            break false;
        }
        state.borrow_mut().end_of_batch(conn, now, &buf);
        if state.borrow().latency_pending() {
            state.borrow_mut().record_latency(Instant::now());
        }
        wait_unpaused(&state).await;
        if !budget.fit(&mut buf).await || !state.borrow().is_live(conn) {
            break false;
        }
        reserve(&mut buf, busy);
        let len = buf.len();
        let room = buf.capacity() - len;
        let read = reader.cancelable_read(buf.slice_mut(len..), cancel.clone());
        let (res, slice): (_, SliceMut<BytesMut>) = read.await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => {
                state.borrow_mut().on_connection_lost(conn, Instant::now());
                break res.is_ok();
            }
            Ok(n) => {
                busy |= n == room;
                state.borrow_mut().count_read(n);
            }
        }
    };
    drop(budget);
    if !eof && state.borrow().lingers(conn) {
        linger(&state, &mut reader, buf).await;
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
        let step = poll_fn(|cx| {
            match state
                .borrow_mut()
                .writer_step(conn, &mut spare, cx.waker(), Instant::now())
            {
                WriterStep::Wait => Poll::Pending,
                step => Poll::Ready(step),
            }
        })
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
            state.borrow_mut().on_write_error(conn, Instant::now());
            break;
        }
    }
    if !state.borrow().is_aborted(conn) {
        let _ = writer.shutdown().await;
    }
    state.borrow_mut().remove_conn(conn, Instant::now());
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
