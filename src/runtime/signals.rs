//! SIGINT, SIGTERM and SIGHUP: blocked on every broker thread, collected by the thread that
//! called `run`. SIGINT and SIGTERM become a broker-wide shutdown (a second one exits at
//! once); SIGHUP reloads what can be reloaded (the TLS certificates, the password and ACL
//! files).

use super::log;
use crate::shard::ShutdownShared;
use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

/// SIGINT, SIGTERM and SIGHUP, blocked on every broker thread and collected by `run`'s
/// thread.
pub(super) struct Signals {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGINT/SIGTERM/SIGHUP on the calling thread; threads spawned afterwards
    /// inherit it.
    pub(super) fn block() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before use and
        // pthread_sigmask only reads `set` and writes `previous`, both valid for the call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGHUP);
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

/// Waits for signals until every shard has ended: SIGHUP calls `reload`; the first SIGINT or
/// SIGTERM (or the first shard to end on its own) triggers shutdown, a second one exits at
/// once.
pub(super) fn supervise(
    signals: &Signals,
    shutdown: &ShutdownShared,
    threads: &[JoinHandle<()>],
    mut reload: impl FnMut(),
) {
    while !threads.iter().all(JoinHandle::is_finished) {
        if let Some(signal) = signals.wait(Duration::from_millis(100)) {
            if signal == libc::SIGHUP {
                reload();
                continue;
            }
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
