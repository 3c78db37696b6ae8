//! The observability threads (the log writer, the metrics listener) start with SIGINT and
//! SIGTERM blocked, like every broker thread: the runtime's supervisor collects them with
//! `sigtimedwait`, and a thread that did not block them would take the default action (end
//! the process) instead of a graceful shutdown.

use std::io;
use std::thread::JoinHandle;

/// Spawns `f` on a thread named `name` that never receives SIGINT or SIGTERM.
pub fn spawn_blocking_signals<F>(name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            block_termination_signals();
            f();
        })
}

fn block_termination_signals() {
    // SAFETY: sigset_t is plain data that sigemptyset/sigaddset initialise before
    // pthread_sigmask reads it; the old mask is not asked for (null).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
