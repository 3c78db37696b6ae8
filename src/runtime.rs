//! Starts the broker's threads: checks the listen address, builds the mesh, spawns one pinned
//! thread per shard with its own monoio runtime (io_uring when the kernel allows, the legacy
//! epoll driver otherwise) and SO_REUSEPORT listener, and turns SIGINT/SIGTERM into a
//! `Shutdown` every shard can await. `run` returns once every shard thread has ended.

use crate::config::{Config, RuntimeConfig};
pub use crate::mesh::yield_now;
use crate::mesh::{self, MeshEnds, notify::Notifier};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

/// Generous for recursion such as trie matching (bounded by `trie::MAX_LEVELS`).
const SHARD_STACK_SIZE: usize = 8 * 1024 * 1024;

/// The runtime type every shard runs on.
pub type ShardRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Everything one shard starts with. Built on the shard's own thread.
pub struct ShardSetup<T> {
    pub id: usize,
    pub shards: usize,
    pub config: Arc<Config>,
    /// This shard's listener; every shard listens on the same address with SO_REUSEPORT.
    pub listener: monoio::net::TcpListener,
    pub mesh: MeshEnds<T>,
    pub shutdown: Shutdown,
}

impl<T> fmt::Debug for ShardSetup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardSetup")
            .field("id", &self.id)
            .field("shards", &self.shards)
            .field("mesh", &self.mesh)
            .finish_non_exhaustive()
    }
}

/// Why the broker could not start or did not stop cleanly.
#[derive(Debug)]
pub enum RuntimeError {
    /// Something already listens on the address (possibly another broker).
    AddressInUse(SocketAddr),
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    Spawn(io::Error),
    Signals(io::Error),
    /// A shard could not build its runtime or its listener.
    ShardStartup {
        shard: usize,
        reason: String,
    },
    /// A shard thread ended during start-up without saying why.
    StartupAborted,
    ShardPanicked(usize),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressInUse(addr) => write!(
                f,
                "{addr} is already in use (is another broker running on this port?)"
            ),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Spawn(e) => write!(f, "cannot start a shard thread: {e}"),
            Self::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            Self::ShardStartup { shard, reason } => {
                write!(f, "shard {shard} failed to start: {reason}")
            }
            Self::StartupAborted => f.write_str("a shard thread ended during start-up"),
            Self::ShardPanicked(shard) => write!(f, "shard {shard} panicked"),
        }
    }
}

impl std::error::Error for RuntimeError {}

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
        .build()?;
    Ok((rt.into(), DriverKind::Legacy))
}

fn log(msg: &str) {
    eprintln!("ringmq: {msg}");
}

// ===== shutdown =====

/// What every thread shares: the flag and one doorbell per shard.
#[derive(Debug)]
struct ShutdownShared {
    triggered: AtomicBool,
    doorbells: Box<[Notifier]>,
}

impl ShutdownShared {
    fn new(shards: usize) -> Arc<Self> {
        Arc::new(Self {
            triggered: AtomicBool::new(false),
            doorbells: (0..shards).map(|_| Notifier::new()).collect(),
        })
    }

    fn trigger(&self) {
        if !self.triggered.swap(true, Ordering::AcqRel) {
            self.doorbells.iter().for_each(Notifier::notify);
        }
    }

    fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }
}

/// The tasks of one shard waiting for shutdown. A relay task on the shard receives the
/// cross-thread wake and fans it out here.
#[derive(Debug, Default)]
struct LocalWaiters {
    triggered: Cell<bool>,
    wakers: RefCell<Slab<Waker>>,
}

/// A shard's view of broker shutdown (SIGINT, SIGTERM, or `trigger` from any shard).
/// Cheap to clone within the shard; any number of tasks may `wait`.
#[derive(Debug, Clone)]
pub struct Shutdown {
    shared: Arc<ShutdownShared>,
    local: Rc<LocalWaiters>,
}

impl Shutdown {
    /// Must be called on the shard's runtime: spawns the relay task.
    fn start(shared: Arc<ShutdownShared>, shard: usize) -> Self {
        let local = Rc::new(LocalWaiters::default());
        monoio::spawn(relay_shutdown(
            Arc::clone(&shared),
            shard,
            Rc::clone(&local),
        ));
        Self { shared, local }
    }

    pub fn is_triggered(&self) -> bool {
        self.local.triggered.get() || self.shared.is_triggered()
    }

    /// Asks every shard to stop.
    pub fn trigger(&self) {
        self.shared.trigger();
    }

    /// Completes once shutdown has been triggered (immediately if it already was).
    pub fn wait(&self) -> ShutdownWait {
        ShutdownWait {
            shutdown: self.clone(),
            key: None,
        }
    }
}

async fn relay_shutdown(shared: Arc<ShutdownShared>, shard: usize, local: Rc<LocalWaiters>) {
    std::future::poll_fn(|cx| {
        if shared.is_triggered() {
            return Poll::Ready(());
        }
        shared.doorbells[shard].poll_notified(cx)
    })
    .await;
    local.triggered.set(true);
    let waiters = std::mem::take(&mut *local.wakers.borrow_mut());
    waiters.into_iter().for_each(|(_, w)| w.wake());
}

/// The future of `Shutdown::wait`.
#[derive(Debug)]
pub struct ShutdownWait {
    shutdown: Shutdown,
    key: Option<usize>,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let key = self.key;
        let mut wakers = self.shutdown.local.wakers.borrow_mut();
        match key.and_then(|k| wakers.get_mut(k)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => {
                let k = wakers.insert(cx.waker().clone());
                drop(wakers);
                self.key = Some(k);
            }
        }
        Poll::Pending
    }
}

impl Drop for ShutdownWait {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.shutdown.local.wakers.borrow_mut().try_remove(k);
        }
    }
}

// ===== signals =====

/// SIGINT and SIGTERM, blocked on every broker thread and collected by `run`'s thread.
struct Signals {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGINT/SIGTERM on the calling thread; threads spawned afterwards inherit it.
    fn block() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before use and
        // pthread_sigmask only reads `set` and writes `previous`, both valid for the call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(Self { set, previous })
        }
    }

    /// Waits up to `timeout` for one of the signals; returns its number.
    fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `set` is initialised and `ts` lives across the call; a null siginfo is allowed.
        let signal = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
        (signal > 0).then_some(signal)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // SAFETY: `previous` was filled in by pthread_sigmask in `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

// ===== run =====

/// Fails with `AddressInUse` if anything already listens on `addr`, and resolves port 0 to
/// a concrete port. A plain listener (no SO_REUSEPORT) is refused even by another
/// SO_REUSEPORT broker, which the shards' own listeners would silently join.
fn probe_listen_address(addr: SocketAddr) -> Result<SocketAddr, RuntimeError> {
    let probe = std::net::TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => RuntimeError::AddressInUse(addr),
        _ => RuntimeError::Bind { addr, source: e },
    })?;
    probe
        .local_addr()
        .map_err(|source| RuntimeError::Bind { addr, source })
}

fn bind_shard_listener(addr: SocketAddr) -> io::Result<monoio::net::TcpListener> {
    let opts = monoio::net::ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(4096);
    monoio::net::TcpListener::bind_with_config(addr, &opts)
}

/// What a shard thread needs to start.
struct ShardPlan<T, F> {
    id: usize,
    core: Option<core_affinity::CoreId>,
    addr: SocketAddr,
    config: Arc<Config>,
    mesh: MeshEnds<T>,
    shutdown: Arc<ShutdownShared>,
    shard_main: Arc<F>,
    ready: mpsc::Sender<Result<(), RuntimeError>>,
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
        log(&format!("shards run on {driver}"));
    }
    rt.block_on(async move {
        let listener = match bind_shard_listener(plan.addr) {
            Ok(l) => l,
            Err(e) => return started(Err(format!("cannot listen on {}: {e}", plan.addr))),
        };
        let setup = ShardSetup {
            id,
            shards: plan.mesh.shards(),
            config: plan.config,
            listener,
            mesh: plan.mesh,
            shutdown: Shutdown::start(plan.shutdown, id),
        };
        started(Ok(()));
        (plan.shard_main)(setup).await;
    });
}

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
    let addr = probe_listen_address(config.listen)?;
    let shards = config.shards.get();
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
    for (id, mesh) in meshes.into_iter().enumerate() {
        let plan = ShardPlan {
            id,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            addr,
            config: Arc::clone(&config),
            mesh,
            shutdown: Arc::clone(&shutdown),
            shard_main: Arc::clone(&shard_main),
            ready: ready_tx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("ringmq-shard-{id}"))
            .stack_size(SHARD_STACK_SIZE)
            .spawn(move || shard_thread(plan));
        match spawned {
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
    eprintln!("ringmq listening on {addr} with {shards} shards");

    supervise(&signals, &shutdown, &threads);
    let result = join_all(threads);
    drop(signals);
    result
}

fn await_startup(
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

/// Waits for signals until every shard has ended; the first signal (or the first shard to end
/// on its own) triggers shutdown, a second signal exits at once.
fn supervise(signals: &Signals, shutdown: &ShutdownShared, threads: &[JoinHandle<()>]) {
    while !threads.iter().all(JoinHandle::is_finished) {
        if let Some(signal) = signals.wait(Duration::from_millis(100)) {
            if shutdown.is_triggered() {
                log("second signal: exiting now");
                std::process::exit(130);
            }
            log(&format!("signal {signal}: shutting down"));
            shutdown.trigger();
        }
        if !shutdown.is_triggered()
            && let Some(id) = threads.iter().position(JoinHandle::is_finished)
        {
            log(&format!("shard {id} stopped on its own; shutting down"));
            shutdown.trigger();
        }
    }
}

fn join_all(threads: Vec<JoinHandle<()>>) -> Result<(), RuntimeError> {
    let mut result = Ok(());
    for (id, handle) in threads.into_iter().enumerate() {
        if handle.join().is_err() && result.is_ok() {
            result = Err(RuntimeError::ShardPanicked(id));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn test_config(shards: usize) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            shards: std::num::NonZeroUsize::new(shards).unwrap_or(std::num::NonZeroUsize::MIN),
            ..Config::default()
        }
    }

    #[test]
    fn a_port_that_is_already_listened_on_is_refused() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0");
        let Ok(taken) = taken else { return };
        let Ok(addr) = taken.local_addr() else { return };
        let mut config = test_config(1);
        config.listen = addr;
        let result = run::<(), _, _>(config, |_| async {});
        assert!(
            matches!(result, Err(RuntimeError::AddressInUse(a)) if a == addr),
            "{result:?}"
        );
    }

    #[test]
    fn a_reuse_port_listener_on_the_port_is_refused_too() {
        let addr = match probe_listen_address(SocketAddr::from(([127, 0, 0, 1], 0))) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let (mut rt, _) = match build_shard_runtime(&Config::default().runtime) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        rt.block_on(async {
            let other_broker = bind_shard_listener(addr);
            assert!(other_broker.is_ok());
            assert!(matches!(
                probe_listen_address(addr),
                Err(RuntimeError::AddressInUse(_))
            ));
        });
    }

    #[test]
    fn every_shard_starts_with_its_own_mesh_ends_and_stops_on_trigger() {
        let started = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&started);
        let result = run::<u32, _, _>(test_config(2), move |setup| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(setup.shards, 2);
                assert_eq!(setup.mesh.id(), setup.id);
                assert!(setup.listener.local_addr().is_ok_and(|a| a.port() != 0));
                if seen.fetch_add(1, Ordering::SeqCst) == 1 {
                    setup.shutdown.trigger();
                }
                // Two waiters on one shard are both released.
                let (a, b) = (setup.shutdown.wait(), setup.shutdown.wait());
                a.await;
                b.await;
                assert!(setup.shutdown.is_triggered());
            }
        });
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn shards_on_one_port_share_the_accepted_connections() {
        let result = run::<(), _, _>(test_config(2), |setup| async move {
            let addr = match setup.listener.local_addr() {
                Ok(a) => a,
                Err(e) => panic!("{e}"),
            };
            if setup.id == 0 {
                // Connections to the shared port are accepted by some shard.
                for _ in 0..8 {
                    let conn = monoio::net::TcpStream::connect(addr).await;
                    assert!(conn.is_ok());
                }
                setup.shutdown.trigger();
            }
            loop {
                monoio::select! {
                    _ = setup.shutdown.wait() => break,
                    accepted = setup.listener.accept() => assert!(accepted.is_ok()),
                }
            }
        });
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn a_panicking_shard_is_reported_and_the_others_are_stopped() {
        let result = run::<(), _, _>(test_config(2), |setup| async move {
            if setup.id == 1 {
                panic!("shard 1 fails on purpose");
            }
            setup.shutdown.wait().await;
        });
        assert!(
            matches!(result, Err(RuntimeError::ShardPanicked(1))),
            "{result:?}"
        );
    }

    #[test]
    fn the_preferred_driver_wakes_across_threads() {
        let mut mesh = mesh::build::<u32>(2, 8);
        let (Some(mut rx), Some(mut tx)) = (mesh.pop(), mesh.pop()) else {
            panic!("two ends");
        };
        let receiver = std::thread::spawn(move || {
            let (mut rt, kind) = match build_shard_runtime(&Config::default().runtime) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
            rt.block_on(async move {
                let mut got = 0;
                while got < 1000 {
                    let woke = monoio::time::timeout(Duration::from_secs(10), rx.wait()).await;
                    assert!(woke.is_ok(), "no wake-up on {kind}");
                    got += rx.drain(usize::MAX, |_, _| {});
                }
            });
        });
        for v in 0..1000 {
            while tx.try_send(1, v).is_err() {
                std::thread::yield_now();
            }
            tx.flush_wakes();
            if v % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(receiver.join().is_ok());
    }

    fn runtimes_of_every_kind() -> Vec<(ShardRuntime, &'static str)> {
        let mut out = Vec::new();
        let mut add = |b: Option<io_uring::Builder>, name| {
            let mut rb = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new();
            if let Some(b) = b {
                rb = rb.uring_builder(b);
            }
            if let Ok(rt) = rb.enable_timer().build() {
                out.push((rt.into(), name));
            }
        };
        let mut defer = io_uring::IoUring::builder();
        defer.setup_defer_taskrun().setup_single_issuer();
        add(Some(defer), "io_uring DEFER_TASKRUN");
        let mut coop = io_uring::IoUring::builder();
        coop.setup_coop_taskrun();
        add(Some(coop), "io_uring COOP_TASKRUN");
        add(None, "io_uring");
        if let Ok(rt) = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
        {
            out.push((rt.into(), "legacy"));
        }
        out
    }

    #[test]
    fn io_completes_while_a_task_keeps_yielding_on_every_driver() {
        for (mut rt, name) in runtimes_of_every_kind() {
            rt.block_on(async move {
                let listener = match bind_shard_listener(SocketAddr::from(([127, 0, 0, 1], 0))) {
                    Ok(l) => l,
                    Err(e) => panic!("{name}: {e}"),
                };
                let Ok(addr) = listener.local_addr() else {
                    panic!("{name}: no local address");
                };
                let accepted = Rc::new(Cell::new(false));
                let flag = Rc::clone(&accepted);
                monoio::spawn(async move {
                    let conn = listener.accept().await;
                    flag.set(conn.is_ok());
                });
                // The connection arrives while the accept is already queued in the kernel.
                let client = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    std::net::TcpStream::connect(addr)
                });
                let started = std::time::Instant::now();
                while !accepted.get() && started.elapsed() < Duration::from_secs(3) {
                    yield_now().await;
                }
                assert!(accepted.get(), "{name}: the accept never completed");
                assert!(client.join().is_ok_and(|c| c.is_ok()));
            });
        }
    }
}
