//! One worker thread: its own monoio runtime running its share of the run's clients
//! (subscribers, publishers, connection-storm workers or idle connections), recording into
//! thread-local statistics that the run merges at the end. Threads share only atomics: the run's
//! phase, progress counters, and per-publisher flow counters for closed-loop windows.
//!
//! - `shared`: what the threads of a run share (config, phase, progress, per-publisher flows).
//! - `stats`: what one thread measured, and the histograms it records into.
//! - `handshake`: the per-thread bound on connection handshakes in flight.
//! - `subscriber`, `publisher`, `storm`, `idle`: the client tasks of each scenario.

mod handshake;
mod idle;
mod publisher;
mod shared;
mod stats;
mod storm;
mod subscriber;

pub use publisher::IdPool;
pub use shared::{Flow, Notify, Progress, RunConfig, Shared};
pub use stats::{SubscriberRecord, ThreadStats, new_histogram};

use crate::error::LoadError;
use crate::plan::Kind;
use crate::tracker::SeqTracker;
use idle::open_idle_connections;
use publisher::publisher;
use stats::Stats;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use storm::connect_worker;
use subscriber::subscriber;

/// Write buffers start small and grow to the largest batch once.
pub(super) const WRITE_BUF: usize = 4096;

/// Runs worker thread `index` of the run to its end and returns what it measured.
pub fn thread_main(index: usize, shared: Arc<Shared>) -> Result<ThreadStats, LoadError> {
    if shared.cfg.pin {
        pin_to_core(index);
    }
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| LoadError::Thread(format!("cannot build a monoio runtime: {e}")))?;
    Ok(runtime.block_on(run_thread(index, shared)))
}

fn pin_to_core(index: usize) {
    if let Some(cores) = core_affinity::get_core_ids()
        && !cores.is_empty()
    {
        core_affinity::set_for_current(cores[index % cores.len()]);
    }
}

async fn run_thread(index: usize, shared: Arc<Shared>) -> ThreadStats {
    let stats: Stats = Rc::new(RefCell::new(ThreadStats::new()));
    let threads = shared.cfg.threads.max(1);
    match shared.plan.kind {
        Kind::Messages => spawn_message_clients(index, threads, &shared, &stats),
        Kind::ConnectStorm => {
            for worker in (0..shared.plan.clients).filter(|k| *k as usize % threads == index) {
                monoio::spawn(connect_worker(shared.clone(), stats.clone(), worker));
            }
        }
        Kind::Idle => open_idle_connections(index, threads, &shared, &stats).await,
    }
    while !shared.finished() {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    stats.replace(ThreadStats::new())
}

fn spawn_message_clients(index: usize, threads: usize, shared: &Arc<Shared>, stats: &Stats) {
    let plan = &shared.plan;
    let n_publishers = plan.publishers.len();
    for spec in plan
        .subscribers
        .iter()
        .filter(|s| s.id as usize % threads == index)
    {
        let slot = {
            let mut st = stats.borrow_mut();
            st.subscribers.push(SubscriberRecord {
                id: spec.id,
                group: spec.group,
                trackers: vec![SeqTracker::new(); n_publishers],
            });
            st.subscribers.len() - 1
        };
        monoio::spawn(subscriber(
            shared.clone(),
            stats.clone(),
            spec.clone(),
            slot,
        ));
    }
    let n_subscribers = plan.subscribers.len();
    for spec in plan
        .publishers
        .iter()
        .filter(|p| (n_subscribers + p.id as usize) % threads == index)
    {
        monoio::spawn(publisher(shared.clone(), stats.clone(), spec.clone()));
    }
}
