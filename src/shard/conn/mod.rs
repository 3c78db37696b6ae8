//! Connection IO, the only socket code of the broker: read the CONNECT, hand the socket to the
//! client id's home shard, run the 5.0 enhanced-authentication exchange there if the CONNECT
//! named a method (`authenticate`), then one reader task and one writer task per connection.
//!
//! monoio 0.2.4 on io_uring loses the bytes of a read that is dropped while in flight, so no
//! read is ever raced against anything (no select!/timeout around a read we keep using): the
//! reader owns the read half and the writer the write half. Closing cancels pending IO through
//! a `Canceller` instead.
//!
//! - `transport`: the seam between socket and codec (`Transport`: TLS, WebSockets, both);
//!   `websocket`: its WebSocket layer (on `crate::ws`).
//! - `link`: `Link`, a socket with its transport before the reader and writer tasks exist.
//! - `connect`: reading the CONNECT, refusals before a session exists.
//! - `auth`: the 5.0 enhanced-authentication exchange before CONNACK.
//! - `read`: the reader task.
//! - `write`: the writer task.

mod auth;
mod connect;
mod link;
mod read;
mod transport;
mod websocket;
mod write;

use super::state::{Login, Refusal, ShardState};
use super::{Handoff, home_shard};
use crate::protocol::{Connect, MqttString, ReasonCode};
use auth::authenticate;
use bytes::BytesMut;
use connect::{CONNECT_TIMEOUT, ConnectFailure, bare_refusal, log_in, read_connect, refuse};
use monoio::io::{Canceller, Splitable};
use monoio::net::TcpStream;
use read::read_loop;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Instant;
pub(in crate::shard) use write::write_all;
use write::write_loop;

pub use connect::serve_refused;
pub use link::Link;
pub use transport::Transport;

pub type Shared = Rc<RefCell<ShardState>>;

/// What the listener a connection came in on asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Clients without a user name may connect.
    pub allow_anonymous: bool,
    /// The verified client certificate's CN replaces the CONNECT's username.
    pub identity_as_username: bool,
}

/// One of the shard's bounded places for a connection still in its TLS or WebSocket
/// handshake (or before its CONNECT on such a listener); given back when dropped.
#[derive(Debug)]
pub struct HandshakeSlot(Shared);

impl HandshakeSlot {
    /// A place, unless the shard has `MAX_HANDSHAKES` in progress already.
    pub fn take(state: &Shared) -> Option<Self> {
        let taken = state.borrow_mut().begin_handshake();
        taken.then(|| Self(Rc::clone(state)))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        // Never dropped inside a borrow (the connection task holds none across statements).
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.end_handshake();
        }
    }
}

/// Serves a connection accepted by this shard on a listener with `policy`; `slot` is its
/// handshake place (TLS, WebSockets), held until the CONNECT is read.
pub async fn serve_accepted(
    state: Shared,
    mut link: Link,
    policy: Policy,
    accepted_at: Instant,
    slot: Option<HandshakeSlot>,
) {
    let _ = link.stream.set_nodelay(true);
    let max_packet = state.borrow().limits().max_packet_size;
    // The TLS and WebSocket handshakes and the CONNECT together get CONNECT_TIMEOUT. Dropping the read on
    // timeout loses its bytes, which is fine: the connection closes.
    let reading = read_connect(&state, &mut link, max_packet);
    let first = monoio::time::timeout(CONNECT_TIMEOUT, reading).await;
    drop(slot);
    let (mut connect, leftover) = match first {
        Ok(Ok(found)) => found,
        Ok(Err(ConnectFailure::Refuse(reason, version))) => {
            state
                .borrow_mut()
                .refused_unread(reason, link.stream.peer_addr().ok());
            return refuse(&state, link, bare_refusal(reason, version)).await;
        }
        Ok(Err(ConnectFailure::Close)) | Err(_) => return,
    };
    if policy.identity_as_username
        && let Err(refusal) = identity_as_username(&mut connect, &link.transport)
    {
        let peer = link.stream.peer_addr().ok();
        state
            .borrow_mut()
            .auth_failed(&connect, refusal.reason.code, peer);
        return refuse(&state, link, refusal.connack(&connect)).await;
    }
    let admitted = state.borrow_mut().admit(&connect);
    let (client_id, assigned_id) = match admitted {
        Ok(found) => found,
        Err(refusal) => return refuse(&state, link, refusal.connack(&connect)).await,
    };
    // A client named by its certificate has authenticated already: as in Mosquitto, the
    // password file is not used for it.
    if !policy.identity_as_username
        && let Err(code) = log_in(&state, &connect, policy.allow_anonymous).await
    {
        let peer = link.stream.peer_addr().ok();
        state.borrow_mut().auth_failed(&connect, code, peer);
        return refuse(
            &state,
            link,
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
        run_at_home(state, link, connect, arrival, leftover).await;
        return;
    }
    let Link { stream, transport } = link;
    let fd = stream.into_raw_fd();
    // SAFETY: `into_raw_fd` released monoio's ownership of `fd` and no IO on it is pending, so
    // the std stream becomes its only owner.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let handoff = Handoff {
        stream,
        transport,
        connect,
        leftover,
        assigned_id: arrival.assigned_id,
        accepted_at: arrival.accepted_at,
        policy,
    };
    state.borrow_mut().send_handoff(home, Box::new(handoff));
}

/// `identity_as_username`: the CN of the client's verified certificate becomes its username
/// and the password is not used (the certificate is the credential). A client without one
/// is refused like a wrong password, 0x86 (3.1.1: 0x04), as Mosquitto does.
fn identity_as_username(connect: &mut Connect, transport: &Transport) -> Result<(), Refusal> {
    let refusal = || Refusal::new(connect.version, ReasonCode::BadUserNameOrPassword.into());
    let name = transport.peer_common_name().ok_or_else(refusal)?;
    let name = MqttString::try_from(name).map_err(|_| refusal())?;
    connect.username = Some(name);
    connect.password = None;
    Ok(())
}

/// Serves a connection another shard accepted for a client whose home is this shard.
pub async fn serve_handoff(state: Shared, handoff: Handoff) {
    let Handoff {
        stream,
        transport,
        connect,
        leftover,
        assigned_id,
        accepted_at,
        policy: _,
    } = handoff;
    let Ok(stream) = TcpStream::from_std(stream) else {
        return;
    };
    // Assigned ids are chosen with their accepting shard as home, so a handed-off client
    // always brought its own id.
    let arrival = Arrival {
        client_id: connect.client_id.as_str().to_owned(),
        assigned_id,
        accepted_at,
    };
    run_at_home(
        state,
        Link::new(stream, transport),
        connect,
        arrival,
        leftover,
    )
    .await;
}

/// Who a connection is for, as the accepting shard found it.
struct Arrival {
    client_id: String,
    assigned_id: bool,
    accepted_at: Instant,
}

async fn run_at_home(
    state: Shared,
    mut link: Link,
    connect: Box<Connect>,
    arrival: Arrival,
    mut leftover: BytesMut,
) {
    let _ = link.stream.set_nodelay(true);
    let peer = link.stream.peer_addr().ok();
    // The exchange runs before anything touches the session: an unauthenticated client
    // never takes over a connection or sees a session's state.
    let authenticated = match connect.properties.authentication_method.clone() {
        None => None,
        Some(method) => match authenticate(&state, &mut link, &connect, &method, leftover).await {
            Some((done, rest)) => {
                leftover = rest;
                Some(done)
            }
            None => return link.close(&state, BytesMut::new()).await,
        },
    };
    let superseded = state
        .borrow()
        .is_superseded(&arrival.client_id, arrival.accepted_at);
    if superseded {
        let reply = state
            .borrow_mut()
            .superseded_reply(&connect, Instant::now());
        link.write(reply).await;
        return link.close(&state, leftover).await;
    }
    let stored = state
        .borrow()
        .check_session_room(&connect, &arrival.client_id);
    if let Err(refusal) = stored {
        return refuse(&state, link, refusal.connack(&connect)).await;
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
    let Link { stream, transport } = link;
    // A plain connection's tasks need no transport at all.
    let transport = (!transport.is_plain()).then(|| Rc::new(RefCell::new(transport)));
    let (reader, writer) = stream.into_split();
    let writing = write_loop(
        state.clone(),
        conn,
        writer,
        handle.clone(),
        transport.clone(),
    );
    // Its own task: the future that got here (CONNECT, authentication, takeover) is four
    // times the size of the reader's and would otherwise live as long as the connection.
    let reading = read_loop(state, conn, reader, leftover, handle, version, transport);
    monoio::spawn(writing);
    monoio::spawn(reading);
}
