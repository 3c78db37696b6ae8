//! What a shard starts with: `ShardSetup`, built by the runtime on the shard's own thread
//! (with a `ShardListener` per configured listener), and `Shutdown`, the shard's view of
//! broker shutdown (one flag and a doorbell per shard, shared by every thread; a relay task
//! per shard wakes its local waiters).

use crate::auth::files::AuthUpdates;
use crate::config::{Config, ListenerConfig, Protocol};
use crate::mesh::{MeshEnds, notify::Notifier};
use crate::tls::Acceptor;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// Everything one shard starts with. Built on the shard's own thread.
pub struct ShardSetup<T> {
    pub id: usize,
    pub shards: usize,
    pub config: Arc<Config>,
    /// This shard's listeners, one per configured listener in config order; every shard
    /// listens on the same addresses with SO_REUSEPORT.
    pub listeners: Vec<ShardListener>,
    pub mesh: MeshEnds<T>,
    /// The password and ACL files: this shard's copy first, then a newer one per SIGHUP
    /// reload (`AuthUpdates::newest`, never waiting).
    pub auth: AuthUpdates,
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

/// One listener as a shard serves it: its own SO_REUSEPORT socket and what the
/// connections accepted on it get.
#[derive(Debug)]
pub struct ShardListener {
    pub socket: monoio::net::TcpListener,
    pub endpoint: Endpoint,
}

/// What a connection accepted on a listener gets: its protocol and security settings.
#[derive(Debug)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// Whether clients without a user name may connect.
    pub allow_anonymous: bool,
    /// A verified client certificate's CN replaces the username.
    pub identity_as_username: bool,
    /// This shard's TLS configuration of the listener (reloaded on SIGHUP); `None`: plain.
    pub tls: Option<Acceptor>,
}

impl Endpoint {
    /// The endpoint of `config`; `tls` must be its acceptor if it has `[listeners.tls]`.
    pub fn new(config: &ListenerConfig, tls: Option<Acceptor>) -> Self {
        Self {
            protocol: config.protocol,
            allow_anonymous: config.allow_anonymous,
            identity_as_username: config.tls.as_ref().is_some_and(|t| t.identity_as_username),
            tls,
        }
    }
}

/// What every thread shares: the flag and one doorbell per shard.
#[derive(Debug)]
pub(crate) struct ShutdownShared {
    triggered: AtomicBool,
    doorbells: Box<[Notifier]>,
}

impl ShutdownShared {
    pub(crate) fn new(shards: usize) -> Arc<Self> {
        Arc::new(Self {
            triggered: AtomicBool::new(false),
            doorbells: (0..shards).map(|_| Notifier::new()).collect(),
        })
    }

    pub(crate) fn trigger(&self) {
        if !self.triggered.swap(true, Ordering::AcqRel) {
            self.doorbells.iter().for_each(Notifier::notify);
        }
    }

    pub(crate) fn is_triggered(&self) -> bool {
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
    pub(crate) fn start(shared: Arc<ShutdownShared>, shard: usize) -> Self {
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
