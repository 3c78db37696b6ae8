//! The shard's tasks: an accept loop per listener, mesh drain, timer tick (which also
//! publishes the shard's metrics snapshot and takes up reloaded password and ACL files),
//! overflow flush, and shutdown.

use super::conn::{self, HandshakeSlot, Link, Policy, Shared, Transport};
use super::persist::Persistence;
use super::state::{Admission, Counters, Limits, ShardState};
use super::writer::journal_task;
use super::{Endpoint, MeshMsg, ShardListener, ShardSetup, Shutdown};
use crate::auth::Methods;
use crate::auth::files::AuthUpdates;
use crate::config::{BridgeConfig, Config, PersistenceConfig, Protocol};
use crate::mesh::MeshEnds;
use crate::obs::Registry;
use crate::persist::LogFile;
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// How often a full peer ring is retried while messages wait in overflow.
const OVERFLOW_RETRY: Duration = Duration::from_millis(1);
/// How often a shard reports undelivered messages (when there were any).
const STATS_EVERY: Duration = Duration::from_secs(10);
/// Most mesh messages handled before yielding to connection tasks.
const MESH_BATCH: usize = 256;
/// How long shutdown waits for connections to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often a shard publishes its metrics snapshot.
const METRICS_EVERY: Duration = Duration::from_millis(250);

/// What a shard publishes about itself: its metrics snapshot to its slot of `registry`, and
/// the `$SYS` topics every `sys_interval` (`None`: never).
#[derive(Debug, Clone)]
pub struct Observe {
    pub registry: Arc<Registry>,
    pub sys_interval: Option<Duration>,
}

/// The shard's main, for `runtime::run`, with metrics nobody reads and nothing persisted.
pub async fn run(setup: ShardSetup<MeshMsg>) {
    let registry = Arc::new(Registry::new(setup.shards));
    run_observed(setup, registry, Persistence::off()).await;
}

/// The shard's main, publishing its metrics to its slot of `registry`, starting from what
/// `persistence` recovered and logging to it.
pub async fn run_observed(
    setup: ShardSetup<MeshMsg>,
    registry: Arc<Registry>,
    persistence: Arc<Persistence>,
) {
    let mut shard = configured_shard(setup.mesh, &setup.config);
    // The shard's own copy of the files loaded at start waits in the channel already.
    if let Some(files) = setup.auth.newest() {
        shard.use_auth_files(files, Instant::now());
    }
    persistence.restore(&mut shard);
    let journal = match persistence.open(setup.id).await {
        None => None,
        Some(Ok(log)) => Some((log, persistence.config().clone())),
        Some(Err(e)) => {
            log::error!(
                shard = setup.id, error:% = e;
                "persistence: shard {} cannot open its log: {e}; shutting down", setup.id
            );
            setup.shutdown.trigger();
            None
        }
    };
    drop(persistence);
    if let Some(recorder) = registry.take_recorder(setup.id) {
        shard.set_latency_recorder(recorder);
    }
    let observe = Observe {
        registry,
        sys_interval: setup.config.metrics.sys_interval,
    };
    let feeds = Feeds {
        auth: setup.auth,
        journal,
        bridges: setup.config.bridges.clone(),
    };
    serve(setup.listeners, shard, &setup.shutdown, observe, feeds).await;
}

/// What a shard takes from outside besides its listeners: reloaded password and ACL files,
/// its persistence log if persistence is on, and the bridges to run.
#[derive(Debug)]
pub struct Feeds {
    pub auth: AuthUpdates,
    pub journal: Option<(LogFile, PersistenceConfig)>,
    /// Every configured bridge; the shard runs those homed on it.
    pub bridges: Vec<BridgeConfig>,
}

/// The shard's state with everything the config asks of it.
fn configured_shard(mesh: MeshEnds<MeshMsg>, config: &Config) -> ShardState {
    let mut shard = ShardState::new(mesh, Limits::from_config(config), Instant::now());
    shard.set_redirect(config.redirect.as_ref());
    // Each shard builds its own registry (no sharing across threads); the keys in the
    // config were derived once when it was read.
    shard.set_methods(Methods::from_credentials(&config.auth.scram));
    shard.set_response_information(config.mqtt.response_information.as_deref());
    shard
}

/// Runs one shard until `shutdown`: accept connections on every listener, serve them, talk
/// to peers, publish what `observe` asks for, use the password and ACL files `feeds.auth`
/// sends, and write `feeds.journal`'s log (persistence on).
pub async fn serve(
    listeners: Vec<ShardListener>,
    shard: ShardState,
    shutdown: &Shutdown,
    observe: Observe,
    feeds: Feeds,
) {
    let Feeds {
        auth,
        journal,
        bridges,
    } = feeds;
    let limits = *shard.limits();
    let state: Shared = Rc::new(RefCell::new(shard));
    let writer =
        journal.map(|(log, config)| monoio::spawn(journal_task(state.clone(), log, config)));
    monoio::spawn(mesh_task(state.clone()));
    monoio::spawn(tick_task(state.clone(), limits.timer_tick, observe, auth));
    monoio::spawn(overflow_task(state.clone()));
    super::bridge::start(&state, &bridges, shutdown);
    // The accept loops run in this task, so that every listener is closed before the
    // connections are told to shut down.
    let mut loops: Vec<Pin<Box<dyn Future<Output = ()>>>> = listeners
        .into_iter()
        .map(|l| Box::pin(accept_loop(state.clone(), l, shutdown.wait())) as _)
        .collect();
    poll_fn(|cx| {
        loops.retain_mut(|accepting| accepting.as_mut().poll(cx).is_pending());
        if loops.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    shut_down(&state).await;
    if let Some(writer) = writer {
        // What the last connections changed is written and synced before the shard ends.
        state.borrow_mut().close_journal();
        writer.await;
    }
}

/// Accepts connections on one listener until `shutdown` completes, then closes it.
async fn accept_loop(state: Shared, listener: ShardListener, shutdown: impl Future<Output = ()>) {
    let ShardListener {
        socket,
        mut endpoint,
    } = listener;
    let policy = Policy {
        allow_anonymous: endpoint.allow_anonymous,
        identity_as_username: endpoint.identity_as_username,
    };
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = {
            let mut accept = pin!(socket.accept());
            poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                accept.as_mut().poll(cx).map(Some)
            })
            .await
        };
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => {
                let accepted_at = Instant::now();
                let admission = state.borrow_mut().on_accept(accepted_at);
                if admission == Admission::Close {
                    // Too many refusals in flight already: closed at once (dropped).
                    continue;
                }
                // A TLS or WebSocket connection holds one of the shard's handshake places
                // until its CONNECT; with none left it is closed at once.
                let handshakes =
                    endpoint.tls.is_some() || endpoint.protocol == Protocol::WebSockets;
                let slot = match handshakes && admission == Admission::Serve {
                    true => match HandshakeSlot::take(&state) {
                        Some(slot) => Some(slot),
                        None => continue,
                    },
                    false => None,
                };
                let Some(transport) = new_transport(&mut endpoint) else {
                    continue;
                };
                let link = Link::new(stream, transport);
                match admission {
                    Admission::Serve => {
                        let serve =
                            conn::serve_accepted(state.clone(), link, policy, accepted_at, slot);
                        monoio::spawn(serve);
                    }
                    Admission::Refuse(reason) => {
                        state.borrow_mut().refused_unread(reason, Some(peer));
                        monoio::spawn(conn::serve_refused(state.clone(), link, reason));
                    }
                    Admission::Close => {}
                }
            }
            // Out of descriptors and similar: back off briefly instead of spinning.
            Some(Err(_)) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The transport a new connection on `endpoint` starts with; `None` if its TLS state cannot
/// be made (the connection is closed).
fn new_transport(endpoint: &mut Endpoint) -> Option<Transport> {
    let tls = match &mut endpoint.tls {
        None => None,
        Some(acceptor) => Some(acceptor.session().ok()?),
    };
    Some(Transport::new(
        tls,
        endpoint.protocol == Protocol::WebSockets,
    ))
}

async fn shut_down(state: &Shared) {
    state.borrow_mut().shut_down(Instant::now());
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while state.borrow().connection_count() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn mesh_task(state: Shared) {
    let mut handoffs = Vec::new();
    loop {
        let handled = state
            .borrow_mut()
            .drain_mesh(MESH_BATCH, Instant::now(), &mut handoffs);
        if state.borrow().latency_pending() {
            state.borrow_mut().record_latency(Instant::now());
        }
        for handoff in handoffs.drain(..) {
            monoio::spawn(conn::serve_handoff(state.clone(), handoff));
        }
        // A full batch may leave more queued: drain again (after yielding) before waiting.
        if handled == MESH_BATCH {
            crate::mesh::yield_now().await;
            continue;
        }
        wait_for_peers(&state).await;
    }
}

/// Awaits the shard's doorbell without holding a `RefCell` borrow across the await: each poll
/// borrows briefly and polls a fresh `wait` future (a notification is never lost; the backlog
/// case never arises because `mesh_task` drains until a short batch).
async fn wait_for_peers(state: &Shared) {
    poll_fn(|cx| {
        let s = state.borrow();
        let wait = pin!(s.mesh().wait());
        wait.poll(cx)
    })
    .await
}

async fn tick_task(state: Shared, tick: Duration, observe: Observe, auth: AuthUpdates) {
    let mut reported = Counters::default();
    let mut next_report = Instant::now() + STATS_EVERY;
    let mut next_metrics = Instant::now();
    let mut next_sys = observe.sys_interval.map(|every| Instant::now() + every);
    let id = state.borrow().id();
    let registry = observe.registry;
    loop {
        monoio::time::sleep(tick).await;
        let now = Instant::now();
        state.borrow_mut().tick(now);
        // A SIGHUP reload is taken up here, within a tick of the supervisor sending it: a
        // `try_recv`, so the shard never waits for the supervisor.
        if let Some(files) = auth.newest() {
            state.borrow_mut().use_auth_files(files, now);
        }
        if now >= next_metrics
            && let Some(slot) = registry.shard(id)
        {
            next_metrics = now + METRICS_EVERY;
            let mut s = state.borrow_mut();
            slot.publish(s.snapshot());
            s.hand_off_latency();
        }
        if let (Some(at), Some(every)) = (next_sys, observe.sys_interval)
            && now >= at
        {
            next_sys = Some(now + every);
            state.borrow_mut().sys_tick(now);
        }
        if now >= next_report {
            next_report = now + STATS_EVERY;
            report_drops(&state, &mut reported);
        }
    }
}

/// Undelivered messages are normal under overload but must not go unnoticed: one warning
/// per period in which some happened.
fn report_drops(state: &Shared, reported: &mut Counters) {
    let (id, now) = {
        let s = state.borrow();
        (s.id(), s.counters())
    };
    let dropped = (
        now.dropped_qos0,
        now.dropped_queue_full,
        now.stalled_disconnects,
        now.dropped_shared,
    );
    if dropped
        == (
            reported.dropped_qos0,
            reported.dropped_queue_full,
            reported.stalled_disconnects,
            reported.dropped_shared,
        )
    {
        return;
    }
    log::warn!(
        shard = id,
        dropped_qos0 = now.dropped_qos0 - reported.dropped_qos0,
        dropped_queue_full = now.dropped_queue_full - reported.dropped_queue_full,
        dropped_shared = now.dropped_shared - reported.dropped_shared,
        mesh_overflowed = now.mesh_overflowed - reported.mesh_overflowed,
        stalled_cut = now.stalled_disconnects - reported.stalled_disconnects;
        "messages not delivered in the last {} s (subscriber offline or too slow, session \
         queue full, shared group without a member)",
        STATS_EVERY.as_secs()
    );
    *reported = now;
}

async fn overflow_task(state: Shared) {
    loop {
        poll_fn(|cx| {
            let mut s = state.borrow_mut();
            if s.has_overflow() {
                Poll::Ready(())
            } else {
                s.set_overflow_waker(cx.waker());
                Poll::Pending
            }
        })
        .await;
        loop {
            monoio::time::sleep(OVERFLOW_RETRY).await;
            if state.borrow_mut().flush_overflow(Instant::now()) {
                break;
            }
        }
    }
}
