//! One run of a scenario: check the options, start the worker threads, wait until every client
//! is connected, start the clock, print progress every second, stop after the warm-up plus
//! duration (or when every publisher has sent its --count), drain, merge the threads'
//! statistics and build the report.

use crate::cli::{Command, Common, version_name};
use crate::clock::{now_ns, process_cpu_seconds, secs_to_ns, vm_rss_kib};
use crate::error::LoadError;
use crate::link::Wire;
use crate::mqtt::Settings;
use crate::payload::HEADER_LEN;
use crate::plan::{Kind, Plan};
use crate::report::{Report, fmt_rate};
use crate::tracker::SeqTracker;
use crate::worker::{RunConfig, Shared, ThreadStats, new_histogram, thread_main};
use hdrhistogram::Histogram;
use ringmq_protocol::{ProtocolVersion, QoS};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long all clients together may take to connect and subscribe, plus a second per
/// thousand clients.
const READY_TIMEOUT_NS: u64 = 20_000_000_000;
/// The first send happens this long after everyone is ready, so every thread sees the start.
const START_DELAY_NS: u64 = 20_000_000;
/// Idle connections keep a realistic keepalive unless told otherwise; load clients send none,
/// since a subscriber that only receives would otherwise have to ping.
const IDLE_DEFAULT_KEEPALIVE: u16 = 30;
const TICK: Duration = Duration::from_millis(20);

/// The options shared by every scenario subcommand.
pub fn common_of(command: &Command) -> Option<&Common> {
    match command {
        Command::Fanin { common, .. }
        | Command::Fanout { common, .. }
        | Command::Pairs { common, .. }
        | Command::Shared { common, .. }
        | Command::Connect { common, .. }
        | Command::Idle { common, .. }
        | Command::Iot { common, .. } => Some(common),
        Command::Compare { .. } | Command::Soak { .. } => None,
    }
}

/// Runs a scenario subcommand to its end.
pub fn run_scenario(command: &Command) -> Result<Report, LoadError> {
    let (Some(common), Some(plan)) = (common_of(command), Plan::for_command(command)) else {
        return Err(LoadError::Usage("not a scenario".into()));
    };
    let broker_pid = match command {
        Command::Idle { broker_pid, .. } => *broker_pid,
        _ => None,
    };
    let cfg = run_config(common, &plan)?;
    let shared = Arc::new(Shared::new(cfg, plan));
    let handles = spawn_threads(&shared)?;
    let driven = drive(&shared, common);
    shared.finish.store(true, Ordering::Release);
    let stats = join_threads(handles);
    if let Some(error) = shared.take_error() {
        return Err(error);
    }
    let timing = driven?;
    let stats = stats?;
    let mut report = build_report(&shared, common, &timing, stats);
    report.broker_rss_kib = broker_pid.and_then(vm_rss_kib);
    Ok(report)
}

/// `--tls` (with `--cafile`, `--server-name`, `--tls-resume`) and `--ws`.
fn wire(common: &Common) -> Result<Wire, LoadError> {
    let tls = match (common.tls, &common.cafile) {
        (false, _) => None,
        (true, None) => {
            return Err(LoadError::Usage(
                "--tls needs --cafile FILE: the CA certificates (PEM) to trust".into(),
            ));
        }
        (true, Some(cafile)) => {
            let name = common.server_name.as_deref().unwrap_or(&common.host);
            Some(Wire::tls(cafile, name, common.tls_resume)?)
        }
    };
    Ok(Wire {
        tls,
        ws_path: common.ws.then(|| common.ws_path.clone()),
    })
}

fn run_config(common: &Common, plan: &Plan) -> Result<RunConfig, LoadError> {
    if common.size < HEADER_LEN {
        return Err(LoadError::Usage(format!(
            "--size {} is too small: a test message carries a {HEADER_LEN}-byte header",
            common.size
        )));
    }
    if !(common.rate >= 0.0 && common.rate.is_finite()) {
        return Err(LoadError::Usage("--rate must be >= 0".into()));
    }
    if common.duration <= 0.0 {
        return Err(LoadError::Usage("--duration must be > 0".into()));
    }
    let version = if plan.shared_groups && common.mqtt != ProtocolVersion::V5 {
        eprintln!("shared subscriptions are MQTT 5.0: using --mqtt 5");
        ProtocolVersion::V5
    } else {
        common.mqtt
    };
    let threads = common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let addr = resolve(&common.host, common.port)?;
    let wire = wire(common)?;
    let settings = Settings {
        addr,
        wire,
        host: common.host.clone(),
        version,
        clean: !common.persistent,
        keepalive: common.keepalive.unwrap_or(if plan.kind == Kind::Idle {
            IDLE_DEFAULT_KEEPALIVE
        } else {
            0
        }),
    };
    let sub_host = common
        .sub_host
        .clone()
        .unwrap_or_else(|| common.host.clone());
    let sub_settings = Settings {
        addr: resolve(&sub_host, common.sub_port.unwrap_or(common.port))?,
        host: sub_host,
        ..settings.clone()
    };
    Ok(RunConfig {
        settings,
        sub_settings,
        qos: common.qos,
        size: common.size,
        rate: plan.rate,
        inflight: common.inflight.clamp(1, 65_535),
        count: common.count,
        warmup_ns: secs_to_ns(common.warmup),
        duration_ns: secs_to_ns(common.duration),
        threads,
        pin: common.pin,
        client_prefix: common.client_prefix.clone(),
    })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, LoadError> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| LoadError::Usage(format!("cannot resolve --host {host:?}")))
}

type Handles = Vec<std::thread::JoinHandle<Result<ThreadStats, LoadError>>>;

fn spawn_threads(shared: &Arc<Shared>) -> Result<Handles, LoadError> {
    (0..shared.cfg.threads)
        .map(|i| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("ringmq-load-{i}"))
                .spawn(move || thread_main(i, shared))
                .map_err(|e| LoadError::Thread(format!("cannot spawn: {e}")))
        })
        .collect()
}

fn join_threads(handles: Handles) -> Result<Vec<ThreadStats>, LoadError> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| LoadError::Thread("a worker thread panicked".into()))?
        })
        .collect()
}

/// When the run's phases happened, and the CPU used over its window.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub start_ns: u64,
    pub warmup_end_ns: u64,
    pub stopped_ns: u64,
    pub cpu_secs: Option<f64>,
}

fn drive(shared: &Shared, common: &Common) -> Result<Timing, LoadError> {
    wait_until_ready(shared)?;
    let start_ns = now_ns() + START_DELAY_NS;
    shared.start_ns.store(start_ns, Ordering::Release);
    let warmup_end_ns = shared.warmup_end_ns(start_ns);
    let end_ns = shared.end_ns(start_ns);
    let expected_done = match shared.plan.kind {
        Kind::Messages => shared.plan.publishers.len(),
        Kind::ConnectStorm => shared.plan.clients as usize,
        Kind::Idle => usize::MAX,
    };
    let mut cpu_at_warmup_end = (common.warmup <= 0.0).then(process_cpu_seconds).flatten();
    let mut progress = ProgressLine::new(start_ns);
    loop {
        std::thread::sleep(TICK);
        let now = now_ns();
        if shared.failed() {
            break;
        }
        if cpu_at_warmup_end.is_none() && now >= warmup_end_ns {
            cpu_at_warmup_end = process_cpu_seconds();
        }
        if !common.quiet {
            progress.tick(shared, now);
        }
        if now >= end_ns || shared.done.load(Ordering::Acquire) >= expected_done {
            break;
        }
    }
    shared.stop.store(true, Ordering::Release);
    let stopped_ns = now_ns();
    let cpu_secs = match (cpu_at_warmup_end, process_cpu_seconds()) {
        (Some(a), Some(b)) if stopped_ns > warmup_end_ns => Some(b - a),
        _ => None,
    };
    drain(shared, stopped_ns + secs_to_ns(common.drain));
    Ok(Timing {
        start_ns,
        warmup_end_ns,
        stopped_ns,
        cpu_secs,
    })
}

fn wait_until_ready(shared: &Shared) -> Result<(), LoadError> {
    let expected = match shared.plan.kind {
        Kind::Messages => shared.plan.publishers.len() + shared.plan.subscribers.len(),
        Kind::Idle => shared.plan.clients as usize,
        Kind::ConnectStorm => 0,
    };
    let deadline = now_ns() + READY_TIMEOUT_NS + expected as u64 * 1_000_000;
    while shared.ready.load(Ordering::Acquire) < expected {
        if shared.failed() {
            return Ok(());
        }
        if now_ns() > deadline {
            return Err(LoadError::Timeout {
                addr: shared.cfg.settings.addr,
                what: "connecting and subscribing every client",
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Waits for messages still in flight: until every expected delivery (and every ack) has
/// arrived, or the drain period is over.
fn drain(shared: &Shared, deadline_ns: u64) {
    if shared.plan.kind != Kind::Messages {
        return;
    }
    while now_ns() < deadline_ns && !shared.failed() {
        let (sent, expected) = sent_and_expected(shared);
        let received = shared.progress.received.load(Ordering::Acquire);
        let acked = shared.progress.acked.load(Ordering::Acquire);
        if received >= expected && (shared.cfg.qos == QoS::AtMostOnce || acked >= sent) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Messages sent, and deliveries expected from them.
fn sent_and_expected(shared: &Shared) -> (u64, u64) {
    shared
        .flows
        .iter()
        .zip(&shared.fanout)
        .fold((0, 0), |(sent, expected), (flow, &fanout)| {
            let s = flow.sent.load(Ordering::Acquire);
            (sent + s, expected + s * u64::from(fanout))
        })
}

/// The live line on stderr, once a second.
struct ProgressLine {
    start_ns: u64,
    last_ns: u64,
    last_sent: u64,
    last_received: u64,
    last_connects: u64,
    last_cpu: Option<f64>,
}

impl ProgressLine {
    fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            last_ns: start_ns,
            last_sent: 0,
            last_received: 0,
            last_connects: 0,
            last_cpu: process_cpu_seconds(),
        }
    }

    fn tick(&mut self, shared: &Shared, now: u64) {
        if now < self.last_ns + 1_000_000_000 {
            return;
        }
        let p = &shared.progress;
        let secs = (now - self.last_ns) as f64 / 1e9;
        let sent = p.sent.load(Ordering::Relaxed);
        let received = p.received.load(Ordering::Relaxed);
        let connects = p.connects.load(Ordering::Relaxed);
        let cpu = process_cpu_seconds();
        let cpu_pct = match (cpu, self.last_cpu) {
            (Some(c), Some(l)) => format!("{:.0}%", (c - l) / secs * 100.0),
            _ => "-".into(),
        };
        let elapsed = (now.saturating_sub(self.start_ns)) as f64 / 1e9;
        let body = match shared.plan.kind {
            Kind::Messages => format!(
                "sent {:>10}/s  recv {:>10}/s  lost so far {}",
                fmt_rate((sent - self.last_sent) as f64 / secs),
                fmt_rate((received - self.last_received) as f64 / secs),
                if shared.plan.shared_groups {
                    "(at the end)".to_string()
                } else {
                    p.gaps.load(Ordering::Relaxed).to_string()
                }
            ),
            Kind::ConnectStorm => format!(
                "connects {:>10}/s  failures {}",
                fmt_rate((connects - self.last_connects) as f64 / secs),
                p.connect_failures.load(Ordering::Relaxed)
            ),
            Kind::Idle => format!(
                "connected {}  pings {}",
                shared.ready.load(Ordering::Relaxed),
                p.pings.load(Ordering::Relaxed)
            ),
        };
        eprintln!("[{elapsed:7.1}s] {body}  cpu {cpu_pct}");
        self.last_ns = now;
        self.last_sent = sent;
        self.last_received = received;
        self.last_connects = connects;
        self.last_cpu = cpu;
    }
}

/// Lost and duplicated deliveries, per receiving group: the members' trackers of each expected
/// publisher merged, compared with what that publisher sent.
pub fn count_losses(plan: &Plan, sent: &[u64], stats: &[ThreadStats]) -> (u64, u64, u64) {
    let mut merged: Vec<Vec<SeqTracker>> =
        vec![vec![SeqTracker::new(); plan.publishers.len()]; plan.groups.len()];
    for record in stats.iter().flat_map(|s| &s.subscribers) {
        let Some(group) = merged.get_mut(record.group as usize) else {
            continue;
        };
        for (tracker, into) in record.trackers.iter().zip(group.iter_mut()) {
            if tracker.unique() > 0 || tracker.duplicates() > 0 {
                into.merge(tracker);
            }
        }
    }
    let (mut lost, mut duplicated, mut expected) = (0, 0, 0);
    for (g, publishers) in plan.groups.iter().enumerate() {
        for &p in publishers {
            let s = sent.get(p as usize).copied().unwrap_or(0);
            let tracker = &merged[g][p as usize];
            expected += s;
            lost += tracker.lost(s);
            duplicated += tracker.duplicates();
        }
    }
    (lost, duplicated, expected)
}

/// The threads' latency and connect-latency histograms added together.
pub fn merge_histograms(stats: &[ThreadStats]) -> (Histogram<u64>, Histogram<u64>) {
    let mut latency = new_histogram();
    let mut connect_latency = new_histogram();
    for s in stats {
        // Every histogram has the same bounds, so adding cannot fail.
        let _ = latency.add(&s.latency);
        let _ = connect_latency.add(&s.connect_latency);
    }
    (latency, connect_latency)
}

/// The threads' open-loop send-lag histograms added together.
pub fn merge_send_lag(stats: &[ThreadStats]) -> Histogram<u64> {
    let mut send_lag = new_histogram();
    for s in stats {
        let _ = send_lag.add(&s.send_lag);
    }
    send_lag
}

fn build_report(
    shared: &Shared,
    common: &Common,
    timing: &Timing,
    stats: Vec<ThreadStats>,
) -> Report {
    let plan = &shared.plan;
    let sent: Vec<u64> = shared
        .flows
        .iter()
        .map(|f| f.sent.load(Ordering::Acquire))
        .collect();
    let (lost, duplicated, expected) = count_losses(plan, &sent, &stats);
    let (latency, connect_latency) = merge_histograms(&stats);
    let (mut received, mut received_in_window, mut unexpected) = (0, 0, 0);
    let (mut sent_in_window, mut connects_in_window) = (0, 0);
    for s in &stats {
        received += s.received;
        received_in_window += s.received_in_window;
        unexpected += s.unexpected;
        sent_in_window += s.sent_in_window;
        connects_in_window += s.connects_in_window;
    }
    let progress = &shared.progress;
    let window_secs = timing.stopped_ns.saturating_sub(timing.warmup_end_ns) as f64 / 1e9;
    Report {
        scenario: plan.scenario.into(),
        mqtt: version_name(shared.cfg.settings.version).into(),
        qos: shared.cfg.qos as u8,
        size: shared.cfg.size,
        threads: shared.cfg.threads,
        publishers: plan.publishers.len(),
        subscribers: plan.subscribers.len(),
        clients: plan.clients,
        rate: plan.rate,
        inflight: shared.cfg.inflight,
        warmup_secs: common.warmup,
        window_secs,
        sent: sent.iter().sum(),
        sent_in_window,
        expected,
        received,
        received_in_window,
        acked: progress.acked.load(Ordering::Acquire),
        lost,
        duplicated,
        unexpected,
        latency_kind: match plan.kind {
            Kind::Messages => "message",
            Kind::ConnectStorm => "connect",
            Kind::Idle => "ping",
        },
        latency,
        connect_latency,
        send_lag: merge_send_lag(&stats),
        connects: progress.connects.load(Ordering::Acquire),
        connects_in_window,
        connect_failures: progress.connect_failures.load(Ordering::Acquire),
        pings: progress.pings.load(Ordering::Acquire),
        cpu_secs: timing.cpu_secs,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        own_rss_kib: vm_rss_kib(std::process::id()),
        broker_rss_kib: None,
    }
}
