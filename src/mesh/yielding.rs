//! A yield that lets every other ready task and the IO driver run, for monoio shards.
//!
//! Two monoio 0.2.4 behaviours make the obvious yield wrong:
//! - a task that wakes itself while being polled is re-queued at the *front* of the run
//!   queue, so `wake_by_ref(); Pending` runs the same task again at once;
//! - with IORING_SETUP_DEFER_TASKRUN, completions are only reaped when the runtime parks
//!   (its busy path submits without IORING_ENTER_GETEVENTS), i.e. when no task is ready.
//!
//! So `yield_now` normally re-queues the task at the back (a tiny task wakes it), and at
//! most once per millisecond per thread sleeps on the timer instead, which lets the run
//! queue drain and the runtime park, reaping io_uring completions.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const FORCE_PARK_EVERY: Duration = Duration::from_millis(1);

thread_local! {
    static LAST_FORCED_PARK: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Yields to every other ready task; every millisecond also to the IO driver. Must run on
/// a monoio runtime with the timer enabled.
pub async fn yield_now() {
    let now = Instant::now();
    let force_park = LAST_FORCED_PARK.with(|last| {
        let due = last
            .get()
            .is_none_or(|t| now.duration_since(t) >= FORCE_PARK_EVERY);
        if due {
            last.set(Some(now));
        }
        due
    });
    if force_park {
        monoio::time::sleep(Duration::from_nanos(1)).await;
    } else {
        ToTheBack { queued: false }.await;
    }
}

/// Pending once; a freshly spawned task (queued behind everything ready) wakes us, so we are
/// re-queued at the back.
struct ToTheBack {
    queued: bool,
}

impl Future for ToTheBack {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.queued {
            return Poll::Ready(());
        }
        self.queued = true;
        let waker = cx.waker().clone();
        monoio::spawn(async move { waker.wake() });
        Poll::Pending
    }
}
