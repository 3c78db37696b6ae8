//! Connection IO, the only socket code of the broker: read the CONNECT, hand the socket to the
//! client id's home shard, run the 5.0 enhanced-authentication exchange there if the CONNECT
//! named a method (`authenticate`), then one reader task and one writer task per connection.
//!
//! monoio 0.2.4 on io_uring loses the bytes of a read that is dropped while in flight, so no
//! read is ever raced against anything (no select!/timeout around a read we keep using): the
//! reader owns the read half and the writer the write half. Closing cancels pending IO through
//! a `Canceller` instead.
//!
//! - `connect`: reading the CONNECT, refusals before a session exists.
//! - `auth`: the 5.0 enhanced-authentication exchange before CONNACK.
//! - `read`: the reader task.
//! - `write`: the writer task.

mod auth;
mod connect;
mod read;
mod write;

use super::state::ShardState;
use super::{Handoff, home_shard};
use crate::protocol::Connect;
use auth::authenticate;
use bytes::BytesMut;
use connect::{CONNECT_TIMEOUT, ConnectFailure, bare_refusal, read_connect, refuse};
use monoio::io::{AsyncWriteRent, Canceller, Splitable};
use monoio::net::TcpStream;
use read::read_loop;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Instant;
use write::write_loop;

pub use connect::serve_refused;

pub type Shared = Rc<RefCell<ShardState>>;

/// Serves a connection accepted by this shard.
pub async fn serve_accepted(state: Shared, mut stream: TcpStream, accepted_at: Instant) {
    let _ = stream.set_nodelay(true);
    let max_packet = state.borrow().limits().max_packet_size;
    // Dropping the read on timeout loses its bytes, which is fine: the connection closes.
    let first = monoio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut stream, max_packet)).await;
    let (connect, leftover) = match first {
        Ok(Ok(found)) => found,
        Ok(Err(ConnectFailure::Refuse(reason, version))) => {
            return refuse(stream, bare_refusal(reason, version)).await;
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
        let arrival = (client_id, assigned_id, accepted_at);
        let conn = s.open_authenticated(&connect, arrival, now, authenticated);
        s.set_canceller(conn, canceller);
        s.end_of_batch(conn, Instant::now());
        conn
    };
    let (reader, writer) = stream.into_split();
    monoio::spawn(write_loop(state.clone(), conn, writer, handle.clone()));
    read_loop(state, conn, reader, leftover, handle, version).await;
}
