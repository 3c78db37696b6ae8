//! What the threads of one run share, all atomics or fixed before the start: the run's
//! configuration and phase (start, stop, finish), the first error, the progress counters,
//! and each publisher's flow counters with the cross-thread wake-up of its closed-loop window.

use crate::error::LoadError;
use crate::mqtt::Settings;
use crate::plan::Plan;
use crate::precise;
use ringmq_protocol::QoS;
use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

/// What every client of a run shares, fixed before it starts.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub settings: Settings,
    /// How subscribers connect: `settings`, or another broker's (`--sub-host`, `--sub-port`).
    pub sub_settings: Settings,
    pub qos: QoS,
    pub size: usize,
    pub rate: f64,
    pub inflight: u32,
    pub count: Option<u64>,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub threads: usize,
    pub pin: bool,
    pub client_prefix: String,
}

/// A cross-thread wake-up for one waiting task: the waiter arms it, the notifier wakes it.
#[derive(Debug, Default)]
pub struct Notify {
    waker: Mutex<Option<Waker>>,
    armed: AtomicBool,
}

impl Notify {
    fn wake(&self) {
        if self.armed.swap(false, Ordering::SeqCst)
            && let Ok(mut slot) = self.waker.lock()
            && let Some(waker) = slot.take()
        {
            waker.wake();
        }
    }
}

/// One publisher's counters, shared with whoever completes its messages (its own ack reader
/// for QoS 1/2, the subscribers for closed-loop QoS 0).
#[derive(Debug, Default)]
pub struct Flow {
    pub sent: AtomicU64,
    /// Acks (QoS 1/2) or receptions by any subscriber (QoS 0).
    pub completed: AtomicU64,
    events: AtomicU64,
    notify: Notify,
}

impl Flow {
    /// Records `completed` more completions and wakes the publisher.
    pub fn complete(&self, completed: u64) {
        self.completed.fetch_add(completed, Ordering::SeqCst);
        self.signal();
    }

    pub(super) fn signal(&self) {
        self.events.fetch_add(1, Ordering::SeqCst);
        self.notify.wake();
    }

    pub(super) fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// Resolves once an event newer than `seen` has been signalled.
    pub(super) async fn changed(&self, seen: u64) {
        poll_fn(|cx| {
            if self.events() != seen {
                return Poll::Ready(());
            }
            if let Ok(mut slot) = self.notify.waker.lock() {
                *slot = Some(cx.waker().clone());
            }
            self.notify.armed.store(true, Ordering::SeqCst);
            if self.events() != seen {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Run-wide counters for the live progress line and the drain check.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Sequence gaps open right now (lost so far, unless late messages fill them).
    pub gaps: AtomicU64,
    pub acked: AtomicU64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub pings: AtomicU64,
}

/// Everything the threads of one run share.
#[derive(Debug)]
pub struct Shared {
    pub cfg: RunConfig,
    pub plan: Plan,
    pub fanout: Vec<u32>,
    /// 0 until the run starts; then the shared-clock time of the first send.
    pub start_ns: AtomicU64,
    /// Publishers stop sending.
    pub stop: AtomicBool,
    /// Threads hand in their statistics and end.
    pub finish: AtomicBool,
    /// Clients connected (and subscribed) before the start.
    pub ready: AtomicUsize,
    /// Publishers (or connect workers) that have sent all they will send.
    pub done: AtomicUsize,
    pub flows: Vec<Flow>,
    pub progress: Progress,
    failed: AtomicBool,
    error: Mutex<Option<LoadError>>,
}

impl Shared {
    pub fn new(cfg: RunConfig, plan: Plan) -> Self {
        let fanout = plan.fanout_of();
        let flows = plan.publishers.iter().map(|_| Flow::default()).collect();
        Self {
            cfg,
            plan,
            fanout,
            start_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            finish: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            flows,
            progress: Progress::default(),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Records the first error of the run; a failure after the run finished is not one.
    pub fn fail(&self, error: LoadError) {
        if self.finish.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(error);
        }
        self.failed.store(true, Ordering::Release);
        for flow in &self.flows {
            flow.signal();
        }
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn take_error(&self) -> Option<LoadError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.failed()
    }

    pub(super) fn finished(&self) -> bool {
        self.finish.load(Ordering::Acquire)
    }

    /// The start time once the run has started.
    pub fn start(&self) -> Option<u64> {
        match self.start_ns.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    pub fn warmup_end_ns(&self, start: u64) -> u64 {
        start + self.cfg.warmup_ns
    }

    pub fn end_ns(&self, start: u64) -> u64 {
        start + self.cfg.warmup_ns + self.cfg.duration_ns
    }

    pub(super) fn client_id(&self, role: char, n: u32) -> String {
        format!("{}-{role}{n}", self.cfg.client_prefix)
    }

    /// Waits for the start signal and then for the start time; `None` if the run ended first.
    pub(super) async fn wait_for_start(&self) -> Option<u64> {
        loop {
            if self.finished() || self.failed() {
                return None;
            }
            if let Some(start) = self.start() {
                precise::sleep_until(start).await;
                return Some(start);
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
