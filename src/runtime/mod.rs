//! Starts the broker's threads: checks every listen address, builds the mesh, spawns one
//! pinned thread per shard with its own monoio runtime (io_uring when the kernel allows, the
//! legacy epoll driver otherwise) and an SO_REUSEPORT socket per listener, turns
//! SIGINT/SIGTERM into the `Shutdown` every shard can await, and SIGHUP into a reload of the
//! TLS certificates. `run` returns once every shard
//! thread has ended.
//!
//! - `spawn`: the shard threads (spawn, pin, start-up report, join).
//! - `listener`: the busy-port check and each shard's SO_REUSEPORT listeners.
//! - `port_holder`: who holds a port that is in use (a live process, or a dying predecessor).
//! - `signals`: SIGINT/SIGTERM/SIGHUP and the supervisor loop that turns them into shutdown
//!   and reloads.
//! - `driver`: the shard runtime type and the io_uring driver selection.
//! - `error`: why the broker could not start or did not stop cleanly.

mod driver;
mod error;
mod listener;
mod port_holder;
mod signals;
mod spawn;

pub use crate::mesh::yield_now;
pub use driver::{DriverKind, ShardRuntime, build_shard_runtime};
pub use error::RuntimeError;

use crate::config::Config;
use crate::mesh;
use crate::shard::{ShardSetup, ShutdownShared};
use crate::tls::Certificates;
use listener::{bind_shard_listener, probe_listen_address};
use signals::{Signals, supervise};
use spawn::{ShardPlan, await_startup, join_all, spawn_shard};
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;

/// Runs the broker until SIGINT/SIGTERM (or a shard's `Shutdown::trigger`) and every shard's
/// `shard_main` has returned. `T` is the mesh message type.
pub fn run<T, F, Fut>(config: Config, shard_main: F) -> Result<(), RuntimeError>
where
    T: Send + 'static,
    F: Fn(ShardSetup<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    // The allowed cores of this thread, read once: pinned threads would only report their own.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let shards = config.shards.get();
    // Every certificate and key is read and checked before anything listens.
    let (certificates, acceptors) =
        Certificates::load(&config.listeners, shards).map_err(RuntimeError::Tls)?;
    let mut addrs = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        addrs.push(probe_listen_address(listener.bind)?);
    }
    if cores.is_empty() {
        log("cannot read the allowed cores; shards are not pinned");
    } else if shards > cores.len() {
        log(&format!(
            "{shards} shards on {} cores: some share a core",
            cores.len()
        ));
    }
    let meshes = mesh::build::<T>(shards, config.runtime.mesh_capacity.get());
    let signals = Signals::block().map_err(RuntimeError::Signals)?;
    let shutdown = ShutdownShared::new(shards);
    let config = Arc::new(config);
    let shard_main = Arc::new(shard_main);
    let (ready_tx, ready_rx) = mpsc::channel();

    let mut threads = Vec::with_capacity(shards);
    for (id, (mesh, tls)) in meshes.into_iter().zip(acceptors).enumerate() {
        let plan = ShardPlan {
            id,
            tls,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            addrs: addrs.clone(),
            config: Arc::clone(&config),
            mesh,
            shutdown: Arc::clone(&shutdown),
            shard_main: Arc::clone(&shard_main),
            ready: ready_tx.clone(),
        };
        match spawn_shard(plan) {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                shutdown.trigger();
                // The start-up failure is the error to report, not how the others stopped.
                let _ = join_all(threads);
                return Err(RuntimeError::Spawn(e));
            }
        }
    }
    drop(ready_tx);

    if let Err(e) = await_startup(&ready_rx, shards) {
        shutdown.trigger();
        let _ = join_all(threads);
        return Err(e);
    }
    for (listener, addr) in config.listeners.iter().zip(&addrs) {
        let (name, scheme) = (listener.name.as_str(), listener.scheme());
        log::info!(listener = name, url:% = format_args!("{scheme}://{addr}");
            "serving {scheme}://{addr} ({name})");
    }
    // The first listener's address: the line scripts and the test harness wait for.
    let addr = addrs.first().map_or(String::new(), ToString::to_string);
    log::info!(addr:% = addr, shards; "ringmq listening on {addr} with {shards} shards");

    supervise(&signals, &shutdown, &threads, || reload(&certificates));
    let result = join_all(threads);
    drop(signals);
    result
}

/// SIGHUP: the TLS listeners' certificates and keys are read again; new connections use
/// them, live ones keep theirs. A reload that fails changes nothing and says why.
fn reload(certificates: &Certificates) {
    if certificates.is_empty() {
        return log::info!("SIGHUP: no TLS listener, nothing to reload");
    }
    match certificates.reload() {
        Ok(()) => log::info!(
            listeners = certificates.len();
            "SIGHUP: reloaded the certificates of {} TLS listener(s) for new connections",
            certificates.len()
        ),
        Err(e) => log::error!(
            error:% = e;
            "SIGHUP: reload failed, keeping the current certificates: {e}"
        ),
    }
}

/// A start-up problem the broker works around.
fn log(msg: &str) {
    log::warn!("{msg}");
}

#[cfg(test)]
mod tests;
