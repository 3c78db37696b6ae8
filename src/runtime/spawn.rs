//! Shard threads: spawning one per shard, pinning it to its core, building its runtime and
//! listeners on it, reporting start-up back to `run`, and joining them all at the end.

use super::{RuntimeError, bind_shard_listener, build_shard_runtime, log};
use crate::auth::files::AuthUpdates;
use crate::config::Config;
use crate::mesh::MeshEnds;
use crate::shard::{Endpoint, ShardListener, ShardSetup, Shutdown, ShutdownShared};
use crate::tls::Acceptor;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Generous for recursion such as trie matching (bounded by `trie::MAX_LEVELS`).
const SHARD_STACK_SIZE: usize = 8 * 1024 * 1024;

/// What a shard thread needs to start.
pub(super) struct ShardPlan<T, F> {
    pub(super) id: usize,
    pub(super) core: Option<core_affinity::CoreId>,
    /// The listeners' addresses (ports resolved), in config order.
    pub(super) addrs: Vec<SocketAddr>,
    /// This shard's TLS configuration of each listener (`None`: plain), in config order.
    pub(super) tls: Vec<Option<Acceptor>>,
    /// This shard's password and ACL files: its copy of them first, then each reload's.
    pub(super) auth: AuthUpdates,
    pub(super) config: Arc<Config>,
    pub(super) mesh: MeshEnds<T>,
    pub(super) shutdown: Arc<ShutdownShared>,
    pub(super) shard_main: Arc<F>,
    pub(super) ready: mpsc::Sender<Result<(), RuntimeError>>,
}

fn shard_thread<T, F, Fut>(plan: ShardPlan<T, F>)
where
    F: Fn(ShardSetup<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let id = plan.id;
    if let Some(core) = plan.core
        && !core_affinity::set_for_current(core)
    {
        log(&format!("shard {id}: could not pin to core {}", core.id));
    }
    let started = |result: Result<(), String>| {
        let msg = result.map_err(|reason| RuntimeError::ShardStartup { shard: id, reason });
        // `run` has given up waiting only if it already failed; nothing more to tell it then.
        let _ = plan.ready.send(msg);
    };
    let (mut rt, driver) = match build_shard_runtime(&plan.config.runtime) {
        Ok(built) => built,
        Err(e) => return started(Err(format!("cannot build a runtime: {e}"))),
    };
    if id == 0 {
        log::info!("shards run on {driver}");
    }
    rt.block_on(async move {
        let mut listeners = Vec::with_capacity(plan.addrs.len());
        let configs = plan.config.listeners.iter().zip(&plan.addrs);
        for ((config, &addr), tls) in configs.zip(plan.tls) {
            match bind_shard_listener(addr) {
                Ok(socket) => listeners.push(ShardListener {
                    socket,
                    endpoint: Endpoint::new(config, tls),
                }),
                Err(e) => return started(Err(format!("cannot listen on {addr}: {e}"))),
            }
        }
        let setup = ShardSetup {
            id,
            shards: plan.mesh.shards(),
            config: plan.config,
            listeners,
            mesh: plan.mesh,
            auth: plan.auth,
            shutdown: Shutdown::start(plan.shutdown, id),
        };
        started(Ok(()));
        (plan.shard_main)(setup).await;
    });
}

/// Starts the thread of one shard, named `ringmq-shard-{id}`, with `SHARD_STACK_SIZE` of stack.
pub(super) fn spawn_shard<T, F, Fut>(plan: ShardPlan<T, F>) -> io::Result<JoinHandle<()>>
where
    T: Send + 'static,
    F: Fn(ShardSetup<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    std::thread::Builder::new()
        .name(format!("ringmq-shard-{}", plan.id))
        .stack_size(SHARD_STACK_SIZE)
        .spawn(move || shard_thread(plan))
}

pub(super) fn await_startup(
    ready: &mpsc::Receiver<Result<(), RuntimeError>>,
    shards: usize,
) -> Result<(), RuntimeError> {
    for _ in 0..shards {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            // Every sender is gone without reporting: a shard thread died during start-up.
            Err(_) => return Err(RuntimeError::StartupAborted),
        }
    }
    Ok(())
}

pub(super) fn join_all(threads: Vec<JoinHandle<()>>) -> Result<(), RuntimeError> {
    let mut result = Ok(());
    for (id, handle) in threads.into_iter().enumerate() {
        if handle.join().is_err() && result.is_ok() {
            result = Err(RuntimeError::ShardPanicked(id));
        }
    }
    result
}
