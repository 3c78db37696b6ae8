//! io_uring driver selection: the shard runtime type, and building it with the cheapest
//! io_uring set-up flags the kernel accepts, falling back to the legacy epoll driver.

use super::log;
use crate::config::RuntimeConfig;
use std::fmt;
use std::io;

/// The runtime type every shard runs on.
pub type ShardRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Which driver a shard runtime ended up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// io_uring with IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER.
    UringDeferTaskrun,
    /// io_uring with IORING_SETUP_COOP_TASKRUN.
    UringCoopTaskrun,
    Uring,
    /// epoll, when io_uring is unavailable.
    Legacy,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UringDeferTaskrun => "io_uring (DEFER_TASKRUN | SINGLE_ISSUER)",
            Self::UringCoopTaskrun => "io_uring (COOP_TASKRUN)",
            Self::Uring => "io_uring",
            Self::Legacy => "legacy epoll (io_uring unavailable)",
        })
    }
}

/// Threads of the pool every shard hands slow work to (password hashing at CONNECT): off the
/// cores' shard threads, few, and shared, so a login storm costs at most these.
const BLOCKING_THREADS: usize = 2;

/// The process-wide blocking pool (`monoio::spawn_blocking`), made on first use.
fn blocking_pool() -> monoio::blocking::DefaultThreadPool {
    static POOL: std::sync::OnceLock<monoio::blocking::DefaultThreadPool> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| monoio::blocking::DefaultThreadPool::new(BLOCKING_THREADS))
        .clone()
}

/// Builds a runtime for the calling thread: io_uring with the cheapest set-up flags the
/// kernel accepts, else the legacy driver. SINGLE_ISSUER ties the ring to this thread.
pub fn build_shard_runtime(config: &RuntimeConfig) -> io::Result<(ShardRuntime, DriverKind)> {
    let entries = config.io_uring_entries.get();
    let mut attempts = Vec::with_capacity(3);
    if config.defer_taskrun {
        let mut b = io_uring::IoUring::builder();
        b.setup_defer_taskrun().setup_single_issuer();
        attempts.push((b, DriverKind::UringDeferTaskrun));
    }
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun();
    attempts.push((coop, DriverKind::UringCoopTaskrun));
    attempts.push((io_uring::IoUring::builder(), DriverKind::Uring));
    let mut last_error = None;
    for (urb, kind) in attempts {
        let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(urb)
            .with_entries(entries)
            .enable_timer()
            .attach_thread_pool(Box::new(blocking_pool()))
            .build();
        match built {
            Ok(rt) => return Ok((rt.into(), kind)),
            Err(e) => last_error = Some(e),
        }
    }
    if let Some(e) = last_error {
        log(&format!(
            "io_uring unavailable ({e}); using the legacy driver"
        ));
    }
    let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .attach_thread_pool(Box::new(blocking_pool()))
        .build()?;
    Ok((rt.into(), DriverKind::Legacy))
}
