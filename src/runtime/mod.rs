//! Starts the broker's threads: checks every listen address, builds the mesh, spawns one
//! pinned thread per shard with its own monoio runtime (io_uring when the kernel allows, the
//! legacy epoll driver otherwise) and an SO_REUSEPORT socket per listener, turns
//! SIGINT/SIGTERM into the `Shutdown` every shard can await, and SIGHUP into a reload of the
//! TLS certificates and the password and ACL files. `run` returns once every shard thread
//! has ended.
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

use crate::auth::files::{AuthFileError, AuthReload};
use crate::config::Config;
use crate::mesh;
use crate::shard::{ShardSetup, ShutdownShared};
use crate::tls::{Certificates, TlsError};
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
    // So are the bridges' (each bridge's shard reads them again when it starts it).
    for (i, bridge) in config.bridges.iter().enumerate() {
        if let Some(tls) = &bridge.tls {
            crate::tls::client_config(&format!("bridges[{i}]"), tls).map_err(RuntimeError::Tls)?;
        }
    }
    // The password and ACL files were read when the config was; each shard gets its own copy.
    let (auth, auth_updates) =
        AuthReload::new(config.auth.file_paths.clone(), &config.auth.files, shards);
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
    let per_shard = meshes.into_iter().zip(acceptors).zip(auth_updates);
    for (id, ((mesh, tls), auth)) in per_shard.enumerate() {
        let plan = ShardPlan {
            id,
            tls,
            auth,
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

    supervise(&signals, &shutdown, &threads, || {
        reload(&certificates, &auth)
    });
    let result = join_all(threads);
    drop(signals);
    result
}

/// SIGHUP: the TLS listeners' certificates and keys and the password and ACL files are read
/// again. New connections use the new certificates (live ones keep theirs); new CONNECTs are
/// checked against the new password file, and every session's next PUBLISH, SUBSCRIBE and
/// delivery against the new ACL. All or nothing: if any file is unusable nothing changes, and
/// the error names its key and file (and line).
fn reload(certificates: &Certificates, auth: &AuthReload) {
    if certificates.is_empty() && auth.paths().is_empty() {
        return log::info!(
            "config reload skipped: nothing to reload (no TLS listener, no password or ACL file)"
        );
    }
    // The auth files are read first and sent last: a bad one stops the reload before the
    // certificates change, and bad certificates stop it before any shard sees new files.
    let failed = |e: ReloadError| {
        log::error!(key = e.key(), error:% = e;
            "config reload failed, keeping the current files: {e}")
    };
    let files = match auth.load() {
        Ok(files) => files,
        Err(e) => return failed(ReloadError::Auth(e)),
    };
    if let Err(e) = certificates.reload() {
        return failed(ReloadError::Tls(e));
    }
    auth.send(&files);
    let auth_keys = auth.paths().keys().into_iter().map(String::from);
    let reloaded: Vec<String> = auth_keys.chain(certificates.listener_names()).collect();
    let reloaded = reloaded.join(" ");
    log::info!(reloaded = reloaded.as_str(); "config reload: {reloaded}");
}

/// Why a SIGHUP reload changed nothing.
enum ReloadError {
    Auth(AuthFileError),
    Tls(TlsError),
}

impl ReloadError {
    /// The config key of the file that failed (`auth.acl_file`, `listeners[0].tls.key`).
    fn key(&self) -> &str {
        match self {
            Self::Auth(e) => e.key,
            Self::Tls(e) => &e.key,
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auth(e) => e.fmt(f),
            Self::Tls(e) => e.fmt(f),
        }
    }
}

/// A start-up problem the broker works around.
fn log(msg: &str) {
    log::warn!("{msg}");
}

#[cfg(test)]
mod tests;
