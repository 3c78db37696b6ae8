//! Bridges on their shard: each configured bridge runs as one task on the shard its local
//! session's client id is homed on (`home_shard` of `$bridge/<name>`). Its local side is an
//! ordinary session with an ordinary connection in the shard's slab, opened with a CONNECT
//! the bridge makes and fed packets through `ShardState::on_packet`; instead of a socket
//! writer, the bridge drains that connection's outbound bytes (`writer_step`) and decodes
//! them. So the fan-out, queueing, flow control and session bounds are the ones every
//! client gets, and routing has no case for bridges.
//!
//! - `core`: what the bridge's tasks share, and the one place packets meet the session.
//! - `connect`: TCP, TLS, CONNECT/CONNACK (with try_private).
//! - `link`: the reader and writer of a connected link.
//!
//! The task here supervises: connect (addresses in turn), run the link, close the local
//! connection when the link ends (the local session then queues for the remote within its
//! bounds), back off (exponential, jittered, bounded) and try again, until shutdown.

mod connect;
mod core;
mod link;

use self::core::{Core, LinkEnd, SharedCore};
use super::conn::Shared;
use super::{Shutdown, home_shard};
use crate::bridge::{Backoff, BridgeSession, Sends, local_client_id};
use crate::config::BridgeConfig;
use crate::protocol::{ProtocolVersion, ReasonCode};
use connect::{Connected, Failure, establish, version};
use monoio::io::{Canceller, Splitable};
use rustls::ClientConfig;
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Starts the bridges whose home is this shard.
pub fn start(state: &Shared, bridges: &[BridgeConfig], shutdown: &Shutdown) {
    let (me, shards) = {
        let s = state.borrow();
        (s.id(), s.shards())
    };
    for (i, config) in bridges.iter().enumerate() {
        let local_id = local_client_id(&config.name);
        if home_shard(local_id.as_bytes(), shards) != me {
            continue;
        }
        let tls = match &config.tls {
            None => None,
            // Checked at start already (`runtime::run`); read again here, on its shard.
            Some(t) => match crate::tls::client_config(&format!("bridges[{i}]"), t) {
                Ok(c) => Some(c),
                Err(e) => {
                    log::error!(bridge = config.name.as_str(); "bridge {}: {e}; not started", config.name);
                    continue;
                }
            },
        };
        let bridge = Bridge {
            config: config.clone(),
            tls,
            local_id,
        };
        monoio::spawn(supervise(state.clone(), bridge, shutdown.clone()));
    }
}

#[derive(Debug)]
struct Bridge {
    config: BridgeConfig,
    tls: Option<Arc<ClientConfig>>,
    local_id: String,
}

fn random() -> u64 {
    // Jitter only: a failed read of the OS source just means no jitter this time.
    getrandom::u64().unwrap_or(0)
}

async fn supervise(state: Shared, bridge: Bridge, shutdown: Shutdown) {
    let config = &bridge.config;
    let name = config.name.as_str();
    let version = version(config);
    let mut session = BridgeSession::new(config.topics.clone(), version);
    session.limit_inbound(state.borrow().limits().session.max_inbound_qos2);
    let core: SharedCore = Rc::new(RefCell::new(Core::new(session, Instant::now())));
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut private = config.try_private && version == ProtocolVersion::V4;
    let mut next = 0usize;
    let notify = config.notifications;
    state
        .borrow_mut()
        .bridge_state(name, (None, false), notify, Instant::now());
    prime_local_session(&state, &core, &bridge);
    let max_packet = state.borrow().limits().max_packet_size;
    while !shutdown.is_triggered() {
        let Some(&addr) = config.addresses.get(next % config.addresses.len().max(1)) else {
            log::error!(bridge = name; "bridge {name}: no address; not started");
            return;
        };
        let attempt = establish(
            config,
            bridge.tls.as_ref(),
            addr,
            private,
            &core,
            max_packet,
        );
        let attempt = monoio::time::timeout(config.connect_timeout, attempt);
        let Some(attempt) = until_shutdown(attempt, &shutdown).await else {
            break;
        };
        match attempt {
            Ok(Ok(connected)) => {
                log::info!(bridge = name, remote:% = addr; "bridge {name}: connected to {addr}");
                let now = Instant::now();
                let connected_at = now;
                state
                    .borrow_mut()
                    .bridge_state(name, (Some(false), true), notify, now);
                if notify {
                    let mut c = core.borrow_mut();
                    if let Some(up) = connect::state_publish(name, true) {
                        c.send_remote(&up);
                    }
                    c.state_down = connect::state_publish(name, false);
                }
                let end = run_link(&state, &core, &bridge, connected, &shutdown).await;
                let now = Instant::now();
                // Only a link that held counts as a success: a remote that accepts and
                // drops at once is retried with growing delays, not at the minimum forever.
                if now.duration_since(connected_at) >= config.reconnect_max {
                    backoff.reset();
                }
                state
                    .borrow_mut()
                    .bridge_state(name, (Some(true), false), notify, now);
                if matches!(end, LinkEnd::Shutdown) || shutdown.is_triggered() {
                    break;
                }
                state.borrow_mut().bridge_failed();
                log::warn!(bridge = name, remote:% = addr; "bridge {name}: link to {addr} ended: {end}");
            }
            Ok(Err(failure)) => {
                state.borrow_mut().bridge_failed();
                let level_refused = matches!(&failure, Failure::Refused(ack)
                    if ack.reason == ReasonCode::UnsupportedProtocolVersion);
                if private && level_refused {
                    // Mosquitto's try_private: the remote does not know the bridge level.
                    log::info!(bridge = name, remote:% = addr;
                        "bridge {name}: {addr} refused the bridge protocol level 0x84; \
                         connecting with the plain one");
                    private = false;
                    continue;
                }
                log::warn!(bridge = name, remote:% = addr; "bridge {name}: cannot connect to {addr}: {failure}");
                next += 1;
            }
            Err(_) => {
                state.borrow_mut().bridge_failed();
                let limit = config.connect_timeout;
                log::warn!(bridge = name, remote:% = addr; "bridge {name}: no CONNACK from {addr} within {limit:?}");
                next += 1;
            }
        }
        core.borrow_mut().tls = None;
        let delay = backoff.next_delay(random());
        if until_shutdown(monoio::time::sleep(delay), &shutdown)
            .await
            .is_none()
        {
            break;
        }
    }
}

/// Creates the bridge's local session with its subscriptions before the remote was ever
/// reached, and leaves it offline: from the start, what the bridge carries out queues there
/// (QoS 1/2, within the session bounds) until the remote is up.
fn prime_local_session(state: &Shared, core: &SharedCore, bridge: &Bridge) {
    let now = Instant::now();
    let (connect, subscribe) = {
        let c = core.borrow();
        (
            c.session.local_connect(&bridge.local_id),
            c.session.local_subscribe(),
        )
    };
    let Some(connect) = connect else {
        return;
    };
    let mut s = state.borrow_mut();
    let conn = s.open(&connect, bridge.local_id.clone(), false, now);
    if let Some(subscribe) = subscribe {
        s.on_packet(conn, subscribe, now);
    }
    s.close(conn, None, false, now);
    s.remove_conn(conn, now);
}

/// `work`'s output, or `None` if shutdown comes first (`work` is dropped: it holds no read
/// whose bytes matter, the connection is given up).
async fn until_shutdown<T>(work: impl Future<Output = T>, shutdown: &Shutdown) -> Option<T> {
    let mut stop = pin!(shutdown.wait());
    let mut work = pin!(work);
    poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Runs a connected link until it ends: the remote side is set up first (PUBRELs it is
/// owed, SUBSCRIBE for the `in` rules), then the local session's connection is opened (its
/// session resumes and sends what it kept), then reader and writer run. When the link ends
/// the local connection is closed, so the session queues for the remote again.
async fn run_link(
    state: &Shared,
    core: &SharedCore,
    bridge: &Bridge,
    connected: Connected,
    shutdown: &Shutdown,
) -> LinkEnd {
    let Connected {
        stream,
        connack,
        leftover,
    } = connected;
    let now = Instant::now();
    let config = &bridge.config;
    let keepalive = connack
        .properties
        .server_keep_alive
        .filter(|k| *k > 0)
        .unwrap_or(config.keepalive);
    let local_connect = {
        let mut c = core.borrow_mut();
        c.end = None;
        c.last_read = now;
        let mut sends = Sends::default();
        if let Err(e) = c.session.on_connack(&connack, &mut sends) {
            return LinkEnd::Protocol(e);
        }
        for p in &sends.remote {
            c.send_remote(p);
        }
        match c.session.remote_subscribe() {
            Ok(Some(subscribe)) => c.send_remote(&subscribe),
            Ok(None) => {}
            Err(e) => return LinkEnd::Protocol(e),
        }
        c.session.local_connect(&bridge.local_id)
    };
    let Some(local_connect) = local_connect else {
        return LinkEnd::LocalClosed;
    };
    let conn = state
        .borrow_mut()
        .open(&local_connect, bridge.local_id.clone(), false, now);
    let mut sends = Sends::default();
    let subscribe = {
        let mut c = core.borrow_mut();
        c.local = Some(conn);
        c.session.local_reopened(&mut sends);
        c.session.local_subscribe()
    };
    for packet in sends.local.into_iter().chain(subscribe) {
        state.borrow_mut().on_packet(conn, packet, now);
    }
    state.borrow_mut().end_of_batch(conn, now, &[]);
    let (reader, writer) = stream.into_split();
    let canceller = Canceller::new();
    let max_packet = state.borrow().limits().max_packet_size;
    let version = core.borrow().session.version();
    let reading = monoio::spawn(link::read_remote(
        state.clone(),
        core.clone(),
        reader,
        leftover,
        canceller.handle(),
        (version, max_packet),
    ));
    let mut stop = pin!(shutdown.wait());
    let keepalive = Duration::from_secs(u64::from(keepalive));
    let end = link::write_remote(
        state.clone(),
        core.clone(),
        writer,
        canceller.handle(),
        keepalive,
        stop.as_mut(),
    )
    .await;
    canceller.cancel();
    reading.await;
    let now = Instant::now();
    let local = core.borrow_mut().local.take();
    if let Some(conn) = local {
        let mut s = state.borrow_mut();
        s.close(conn, None, false, now);
        s.remove_conn(conn, now);
    }
    let mut c = core.borrow_mut();
    c.session.remote_down();
    c.tls = None;
    c.out.clear();
    c.wire_out.clear();
    c.end = None;
    c.writer = None;
    end
}
