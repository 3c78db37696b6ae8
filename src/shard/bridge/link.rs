//! A bridge's connected link: one reader task (the remote socket's read half: TLS, decode,
//! packets to the session) and the writer (the write half: the local session's outbound
//! bytes drained as a socket writer would, answers and PUBLISHes to the remote, keep alive).
//! As for client connections, no read is ever raced against anything: the reader is
//! stopped with a `Canceller`.

use super::core::{LinkEnd, SharedCore, Side, handle, handle_local_bytes};
use crate::protocol::{self, Disconnect, Packet, ProtocolVersion};
use crate::shard::ShutdownWait;
use crate::shard::conn::{Shared, write_all};
use crate::shard::state::WriterStep;
use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncWriteRent, CancelHandle, CancelableAsyncReadRent, OwnedReadHalf, OwnedWriteHalf,
};
use monoio::net::TcpStream;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// While this much waits for the remote, the local session's bytes are not taken: they
/// stay in its connection's buffer, whose limit then queues (QoS 1/2) or drops (QoS 0)
/// like for any slow client.
const OUT_HIGH_WATER: usize = 256 * 1024;
/// How often the writer wakes at the least: keep alive, stall check.
const TICK: Duration = Duration::from_millis(500);
const READ_BUF: usize = 64 * 1024;
/// A read asks for at least this much room.
const MIN_READ: usize = 4096;

/// Reads the remote until the link ends; `buf` holds what was read after CONNACK.
pub(super) async fn read_remote(
    state: Shared,
    core: SharedCore,
    mut reader: OwnedReadHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: CancelHandle,
    (version, max_packet): (ProtocolVersion, usize),
) {
    let mut wire = BytesMut::new();
    loop {
        let now = Instant::now();
        loop {
            match protocol::decode(&mut buf, version, max_packet) {
                Ok(Some(packet)) => {
                    if let Err(e) = handle(&state, &core, Side::Remote, packet, now) {
                        return core.borrow_mut().finish(LinkEnd::Protocol(e));
                    }
                }
                Ok(None) => break,
                Err(e) => return core.borrow_mut().finish(LinkEnd::Malformed(e)),
            }
        }
        let conn = core.borrow().local;
        if let Some(conn) = conn {
            // Rings the peers the batch sent messages to, and counts as the local side's
            // activity.
            state.borrow_mut().end_of_batch(conn, now, &[]);
        }
        if core.borrow().end.is_some() {
            return;
        }
        // Plain: straight into the decode buffer. TLS: into the records buffer, kept.
        let tls = core.borrow().tls.is_some();
        let mut into = std::mem::take(if tls { &mut wire } else { &mut buf });
        if into.capacity() - into.len() < MIN_READ {
            into.reserve(READ_BUF);
        }
        let len = into.len();
        let (res, slice) = reader
            .cancelable_read(into.slice_mut(len..), cancel.clone())
            .await;
        into = slice.into_inner();
        match res {
            Ok(0) => {
                return core
                    .borrow_mut()
                    .finish(LinkEnd::Lost("end of stream".into()));
            }
            Ok(_) => {}
            Err(e) => return core.borrow_mut().finish(LinkEnd::Lost(e.to_string())),
        }
        if tls {
            wire = into;
        } else {
            buf = into;
        }
        let mut c = core.borrow_mut();
        c.last_read = Instant::now();
        let c = &mut *c;
        if let Some(tls) = &mut c.tls {
            let before = c.wire_out.len();
            let read = tls.read(&mut wire, &mut buf, &mut c.wire_out);
            if c.wire_out.len() > before {
                c.wake();
            }
            match read {
                Ok(false) => {}
                Ok(true) => return c.finish(LinkEnd::Lost("TLS close_notify".into())),
                Err(e) => return c.finish(LinkEnd::Tls(e.to_string())),
            }
        }
    }
}

/// What the writer does next.
enum Work {
    Write,
    Tick,
    End,
}

/// Writes to the remote until the link ends; returns why it ended.
pub(super) async fn write_remote(
    state: Shared,
    core: SharedCore,
    mut writer: OwnedWriteHalf<TcpStream>,
    cancel: CancelHandle,
    keepalive: Duration,
    mut shutdown: Pin<&mut ShutdownWait>,
) -> LinkEnd {
    let mut spare = BytesMut::new();
    let mut out = BytesMut::new();
    let mut last_ping = Instant::now();
    // A deadline, not an idle timeout: a steady flow of messages must not starve it.
    let mut next_tick = Instant::now() + TICK;
    loop {
        let work = {
            let waiting = poll_fn(|cx| poll_work(&state, &core, &mut spare, shutdown.as_mut(), cx));
            let left = next_tick.saturating_duration_since(Instant::now());
            match monoio::time::timeout(left, waiting).await {
                Ok(work) => work,
                Err(_) => Work::Tick,
            }
        };
        let now = Instant::now();
        if matches!(work, Work::End) {
            break;
        }
        if now >= next_tick {
            next_tick = now + TICK;
            let mut c = core.borrow_mut();
            if now.duration_since(c.last_read) > keepalive + keepalive / 2 {
                c.finish(LinkEnd::Stalled);
                continue;
            }
            if now.duration_since(last_ping) >= keepalive {
                last_ping = now;
                c.send_remote(&Packet::PingReq);
            }
            let conn = c.local;
            drop(c);
            if let Some(conn) = conn {
                // The local connection has no reader: its activity is the bridge's.
                state.borrow_mut().end_of_batch(conn, now, &[]);
            }
        }
        if !core.borrow().has_output() {
            continue;
        }
        let taken = core.borrow_mut().take_output(&mut out);
        if let Err(e) = taken {
            core.borrow_mut().finish(LinkEnd::Tls(e));
            continue;
        }
        let (res, written) = write_all(&mut writer, std::mem::take(&mut out), &cancel).await;
        out = written;
        out.clear();
        if let Err(e) = res {
            core.borrow_mut().finish(LinkEnd::Lost(e.to_string()));
        }
    }
    let end = core
        .borrow_mut()
        .end
        .take()
        .unwrap_or(LinkEnd::Lost("ended".into()));
    if matches!(end, LinkEnd::Shutdown | LinkEnd::LocalClosed) {
        // A normal DISCONNECT: the remote keeps our session and publishes no will.
        let goodbye = {
            let mut c = core.borrow_mut();
            c.out.clear();
            if let Some(down) = c.state_down.clone() {
                c.send_remote(&down);
            }
            let success = protocol::ReasonCode::Success.into();
            c.send_remote(&Packet::Disconnect(Disconnect::from_reason(success)));
            let mut bytes = BytesMut::new();
            let _ = c.take_output(&mut bytes);
            if let Some(tls) = &mut c.tls {
                tls.close(&mut bytes);
            }
            bytes
        };
        let _ = write_all(&mut writer, goodbye, &cancel).await;
    }
    let _ = writer.shutdown().await;
    end
}

/// Drains the local session's outbound bytes into the session (unless the remote is far
/// behind), then says whether there is something to write.
fn poll_work(
    state: &Shared,
    core: &SharedCore,
    spare: &mut BytesMut,
    shutdown: Pin<&mut ShutdownWait>,
    cx: &mut Context<'_>,
) -> Poll<Work> {
    if shutdown.poll(cx).is_ready() {
        core.borrow_mut().finish(LinkEnd::Shutdown);
    }
    loop {
        let (conn, behind) = {
            let c = core.borrow();
            if c.end.is_some() {
                return Poll::Ready(Work::End);
            }
            (c.local, c.out.len() >= OUT_HIGH_WATER)
        };
        let Some(conn) = conn.filter(|_| !behind) else {
            break;
        };
        let now = Instant::now();
        let step = state.borrow_mut().writer_step(conn, spare, cx.waker(), now);
        match step {
            WriterStep::Write => {
                if let Err(end) = handle_local_bytes(state, core, spare, now) {
                    core.borrow_mut().finish(end);
                }
                spare.clear();
            }
            WriterStep::Finish => core.borrow_mut().finish(LinkEnd::LocalClosed),
            WriterStep::Wait => break,
        }
    }
    let mut c = core.borrow_mut();
    if c.end.is_some() {
        return Poll::Ready(Work::End);
    }
    if c.has_output() {
        return Poll::Ready(Work::Write);
    }
    c.writer = Some(cx.waker().clone());
    Poll::Pending
}
