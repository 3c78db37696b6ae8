//! The broker's `log` backend: a record is filtered and formatted on the thread that logs it,
//! then handed to a bounded queue with `try_send`, which never waits; one thread of its own
//! drains the queue to stderr. A full queue (a slow terminal, a flood) drops the line and
//! counts it, and the writer reports the count once it catches up.

use super::filter::LogFilter;
use super::format::{self, LogFormat};
use log::{Log, Metadata, Record};
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

/// Lines that may wait for the writer; more are dropped.
pub const QUEUE_LINES: usize = 8192;

/// What the writer thread is handed.
#[derive(Debug)]
enum Entry {
    Line(String),
    /// Answer once every line queued before this one is written.
    Flush(mpsc::Sender<()>),
}

/// The `log::Log` of the broker.
#[derive(Debug)]
pub struct Logger {
    filter: LogFilter,
    format: LogFormat,
    queue: SyncSender<Entry>,
    dropped: AtomicU64,
}

static INSTALLED: OnceLock<&'static Logger> = OnceLock::new();

impl Logger {
    /// A logger whose lines wait in a queue of `capacity`, and that queue's receiving end.
    fn new(filter: LogFilter, format: LogFormat, capacity: usize) -> (Self, Receiver<Entry>) {
        let (queue, lines) = mpsc::sync_channel(capacity);
        let logger = Self {
            filter,
            format,
            queue,
            dropped: AtomicU64::new(0),
        };
        (logger, lines)
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format::line(record, self.format, SystemTime::now());
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Entry::Line(line))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger for the process and starts its writer thread (`ringmq-log`). Fails if
/// a logger is installed already.
pub fn install(filter: LogFilter, format: LogFormat) -> io::Result<()> {
    let max_level = filter.max_level();
    let (logger, lines) = Logger::new(filter, format, QUEUE_LINES);
    let logger: &'static Logger = Box::leak(Box::new(logger));
    log::set_logger(logger)
        .map_err(|e| io::Error::new(io::ErrorKind::AlreadyExists, e.to_string()))?;
    log::set_max_level(max_level);
    let _ = INSTALLED.set(logger);
    super::thread::spawn_blocking_signals("ringmq-log", move || {
        write_lines(&lines, (&logger.dropped, format), &mut io::stderr());
    })?;
    Ok(())
}

/// Lines the installed logger dropped so far (0 without one).
pub fn dropped_lines() -> u64 {
    INSTALLED.get().map_or(0, |l| l.dropped())
}

/// Waits up to `within` for the lines logged so far to be written (before the process exits).
pub fn flush(within: Duration) {
    let Some(logger) = INSTALLED.get() else {
        return;
    };
    let (done, written) = mpsc::channel();
    // Waiting here is fine: only `main` calls this, after every shard has stopped.
    if logger.queue.send(Entry::Flush(done)).is_ok() {
        let _ = written.recv_timeout(within);
    }
}

/// The writer thread: writes lines as they come, flushing whenever the queue runs dry, and
/// reports lines dropped meanwhile.
fn write_lines(
    lines: &Receiver<Entry>,
    (dropped, format): (&AtomicU64, LogFormat),
    out: &mut impl Write,
) {
    let mut reported = 0;
    loop {
        let entry = match lines.recv_timeout(Duration::from_secs(1)) {
            Ok(entry) => Some(entry),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut out = io::BufWriter::new(&mut *out);
        let mut next = entry;
        while let Some(entry) = next.take() {
            match entry {
                Entry::Line(line) => {
                    let _ = writeln!(out, "{line}");
                }
                Entry::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = lines.try_recv().ok();
        }
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > reported {
            let _ = writeln!(out, "{}", dropped_line(now_dropped - reported, format));
            reported = now_dropped;
        }
        let _ = out.flush();
    }
}

/// The writer's own line about lines it never got.
fn dropped_line(count: u64, format: LogFormat) -> String {
    let pairs = [("dropped", count)];
    let pairs = &pairs[..];
    let args = format_args!("log lines dropped: the log queue was full");
    let record = Record::builder()
        .level(log::Level::Warn)
        .target("ringmq::log")
        .args(args)
        .key_values(&pairs)
        .build();
    format::line(&record, format, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::{Level, LevelFilter};

    fn record_at(level: Level, f: impl FnOnce(&Record<'_>)) {
        let record = Record::builder()
            .level(level)
            .target("ringmq::shard")
            .args(format_args!("hello"))
            .build();
        f(&record);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (logger, lines) = Logger::new(LogFilter::default(), LogFormat::Text, 2);
        for _ in 0..5 {
            record_at(Level::Info, |r| logger.log(r));
        }
        assert_eq!(logger.dropped(), 3);
        assert_eq!(lines.try_iter().count(), 2);
    }

    #[test]
    fn filtered_records_are_not_queued() {
        let (logger, lines) = Logger::new(LogFilter::level(LevelFilter::Warn), LogFormat::Text, 8);
        record_at(Level::Info, |r| logger.log(r));
        record_at(Level::Error, |r| logger.log(r));
        assert_eq!(lines.try_iter().count(), 1);
        assert_eq!(logger.dropped(), 0);
    }

    #[test]
    fn the_writer_writes_every_line_then_reports_what_was_dropped() {
        let (logger, lines) = Logger::new(LogFilter::default(), LogFormat::Text, 2);
        for _ in 0..3 {
            record_at(Level::Info, |r| logger.log(r));
        }
        let Logger {
            queue,
            dropped,
            format,
            ..
        } = logger;
        // With every sender gone the writer ends once it has written what is queued.
        drop(queue);
        let mut out = Vec::new();
        write_lines(&lines, (&dropped, format), &mut out);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("hello").count(), 2, "{text}");
        assert!(
            text.contains("log lines dropped") && text.contains("dropped=1"),
            "{text}"
        );
    }
}
