//! One worker thread: its own monoio runtime running its share of the run's clients
//! (subscribers, publishers, connection-storm workers or idle connections), recording into
//! thread-local statistics that the run merges at the end. Threads share only atomics: the run's
//! phase, progress counters, and per-publisher flow counters for closed-loop windows.

use crate::clock::now_ns;
use crate::error::LoadError;
use crate::mqtt::{self, Session, Settings};
use crate::payload::Header;
use crate::plan::{Kind, Plan, PublisherSpec, SubscriberSpec};
use crate::precise;
use crate::schedule::Schedule;
use crate::tracker::SeqTracker;
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use monoio::io::{OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use ringmq_protocol::{Packet, PacketId, PubResp, QoS};
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Subscribers read into (at least) this much free buffer: one read takes thousands of
/// messages, all decoded before the next read.
const SUBSCRIBER_READ_BUF: usize = 512 * 1024;
/// A publisher only reads acks (4 bytes each): a small buffer that grows if ever needed keeps
/// thousands of IoT devices cheap.
const PUBLISHER_READ_BUF: usize = 4096;
/// Write buffers start small and grow to the largest batch once.
const WRITE_BUF: usize = 4096;
const IDLE_READ_BUF: usize = 256;
/// Publishes encoded into one write at most.
const MAX_BATCH: u64 = 1024;
/// A closed-loop QoS 0 publisher whose window has not moved for this long writes the
/// outstanding messages off as lost rather than stalling forever.
const QOS0_STALL_NS: u64 = 200_000_000;
/// How often a waiting publisher rechecks the run's phase.
const RECHECK: Duration = Duration::from_millis(20);
/// Idle connections are opened in waves of this many per thread, so a large --connections does
/// not overflow the broker's listen backlog.
const IDLE_CONNECT_WAVE: usize = 128;

/// Connection handshakes in flight per thread at most: a burst of thousands of SYNs overflows
/// the broker's listen backlog and turns into one-second SYN retransmits.
const MAX_HANDSHAKES_PER_THREAD: usize = 32;

thread_local! {
    static HANDSHAKES: Cell<usize> = const { Cell::new(0) };
}

/// A slot among this thread's concurrent handshakes, released on drop.
struct HandshakeSlot;

impl HandshakeSlot {
    async fn acquire() -> Self {
        while HANDSHAKES.with(Cell::get) >= MAX_HANDSHAKES_PER_THREAD {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        HANDSHAKES.with(|h| h.set(h.get() + 1));
        Self
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        HANDSHAKES.with(|h| h.set(h.get().saturating_sub(1)));
    }
}

/// Opens a connection once this thread has a free handshake slot; the connect latency is
/// measured from when the slot was granted.
async fn open_gated(
    settings: &Settings,
    client_id: &str,
    rbuf_capacity: usize,
) -> Result<(Session, u64), LoadError> {
    let _slot = HandshakeSlot::acquire().await;
    let t0 = now_ns();
    let session = mqtt::open(settings, client_id, rbuf_capacity).await?;
    Ok((session, now_ns() - t0))
}

/// What every client of a run shares, fixed before it starts.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub settings: Settings,
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

    fn signal(&self) {
        self.events.fetch_add(1, Ordering::SeqCst);
        self.notify.wake();
    }

    fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// Resolves once an event newer than `seen` has been signalled.
    async fn changed(&self, seen: u64) {
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

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.failed()
    }

    fn finished(&self) -> bool {
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

    fn client_id(&self, role: char, n: u32) -> String {
        format!("{}-{role}{n}", self.cfg.client_prefix)
    }

    /// Waits for the start signal and then for the start time; `None` if the run ended first.
    async fn wait_for_start(&self) -> Option<u64> {
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

/// 1 µs to 60 s at 3 significant figures, the range of every latency the run records.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

/// Records a duration in µs (at least 1, the histogram's floor).
fn record_ns(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record((ns / 1000).max(1));
}

/// Records how late a send went out, in µs; 0 (on time) is a valid value here.
fn record_lag_ns(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record(ns / 1000);
}

/// One subscriber's view: its group and a tracker per publisher.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub id: u32,
    pub group: u32,
    pub trackers: Vec<SeqTracker>,
}

/// What one thread measured.
#[derive(Debug)]
pub struct ThreadStats {
    /// End-to-end message latency (µs), or ping round trips in the idle scenario, or connect
    /// latency in the connect scenario; warm-up excluded.
    pub latency: Histogram<u64>,
    /// TCP connect to CONNACK (µs) of every connection the run opened.
    pub connect_latency: Histogram<u64>,
    /// Open loop: how late each send went out after its intended time (µs), warm-up
    /// excluded. Large values mean the generator, not the broker, was behind.
    pub send_lag: Histogram<u64>,
    pub received: u64,
    pub received_in_window: u64,
    /// Messages without a valid header or from a publisher the subscriber should not hear.
    pub unexpected: u64,
    pub sent_in_window: u64,
    pub connects_in_window: u64,
    pub subscribers: Vec<SubscriberRecord>,
}

impl ThreadStats {
    pub fn new() -> Self {
        Self {
            latency: new_histogram(),
            connect_latency: new_histogram(),
            send_lag: new_histogram(),
            received: 0,
            received_in_window: 0,
            unexpected: 0,
            sent_in_window: 0,
            connects_in_window: 0,
            subscribers: Vec::new(),
        }
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self::new()
    }
}

type Stats = Rc<RefCell<ThreadStats>>;

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

// ---- subscribers ----

async fn subscriber(shared: Arc<Shared>, stats: Stats, spec: SubscriberSpec, slot: usize) {
    if let Err(e) = run_subscriber(&shared, &stats, &spec, slot).await {
        shared.fail(e);
    }
}

/// Per read batch: completions to hand to closed-loop QoS 0 publishers.
struct Credits {
    per_publisher: Vec<u64>,
    touched: Vec<u32>,
}

impl Credits {
    fn add(&mut self, publisher: u32) {
        let count = &mut self.per_publisher[publisher as usize];
        if *count == 0 {
            self.touched.push(publisher);
        }
        *count += 1;
    }

    fn flush(&mut self, flows: &[Flow]) {
        for p in self.touched.drain(..) {
            let n = std::mem::take(&mut self.per_publisher[p as usize]);
            flows[p as usize].complete(n);
        }
    }
}

/// Where a subscriber's batch falls in the run.
#[derive(Clone, Copy)]
struct Window {
    now: u64,
    warmup_end: u64,
    measuring: bool,
}

impl Window {
    fn at(shared: &Shared, now: u64) -> Self {
        let warmup_end = shared.start().map_or(u64::MAX, |s| shared.warmup_end_ns(s));
        Self {
            now,
            warmup_end,
            measuring: now >= warmup_end && !shared.stop.load(Ordering::Relaxed),
        }
    }
}

async fn run_subscriber(
    shared: &Shared,
    stats: &Stats,
    spec: &SubscriberSpec,
    slot: usize,
) -> Result<(), LoadError> {
    let cfg = &shared.cfg;
    let version = cfg.settings.version;
    let client = shared.client_id('s', spec.id);
    let (mut session, connect_ns) = open_gated(&cfg.settings, &client, SUBSCRIBER_READ_BUF).await?;
    record_ns(&mut stats.borrow_mut().connect_latency, connect_ns);
    mqtt::subscribe(&mut session, &cfg.settings, &spec.filter, cfg.qos, &client).await?;
    let expected: Vec<bool> = (0..shared.plan.publishers.len() as u32)
        .map(|p| shared.plan.expects(spec.group, p))
        .collect();
    // Closed-loop QoS 0 publishers count their window in receptions.
    let closed_loop_qos0 = cfg.qos == QoS::AtMostOnce && cfg.rate <= 0.0;
    let mut credits = closed_loop_qos0.then(|| Credits {
        per_publisher: vec![0; expected.len()],
        touched: Vec::new(),
    });
    let inbox = Inbox { slot, expected };
    let track_gaps = !shared.plan.shared_groups;
    shared.ready.fetch_add(1, Ordering::AcqRel);

    let Session {
        mut stream,
        mut rbuf,
        ..
    } = session;
    let mut wbuf = BytesMut::with_capacity(WRITE_BUF);
    // Bytes read with SUBACK may already hold messages: decode them before the first read.
    let mut need_read = rbuf.is_empty();
    loop {
        if need_read {
            mqtt::fill(
                &mut stream,
                &mut rbuf,
                SUBSCRIBER_READ_BUF,
                &client,
                "subscribed",
            )
            .await?;
        }
        need_read = true;
        let window = Window::at(shared, now_ns());
        let (received, gaps_delta) = {
            let mut st = stats.borrow_mut();
            let mut batch = Batch::default();
            while let Some(packet) = mqtt::decode_one(&mut rbuf, version, &client)? {
                match packet {
                    Packet::Publish(publish) => {
                        on_publish(
                            &mut st,
                            &inbox,
                            &publish.payload,
                            window,
                            &mut batch,
                            credits.as_mut(),
                        );
                        match (publish.qos, publish.packet_id) {
                            (QoS::AtLeastOnce, Some(id)) => mqtt::encode_packet(
                                &mut wbuf,
                                version,
                                &Packet::PubAck(PubResp::new(id)),
                            )?,
                            (QoS::ExactlyOnce, Some(id)) => mqtt::encode_packet(
                                &mut wbuf,
                                version,
                                &Packet::PubRec(PubResp::new(id)),
                            )?,
                            _ => {}
                        }
                    }
                    Packet::PubRel(rel) => mqtt::encode_packet(
                        &mut wbuf,
                        version,
                        &Packet::PubComp(PubResp::new(rel.packet_id)),
                    )?,
                    Packet::PingResp => {}
                    Packet::Disconnect(d) => {
                        return Err(LoadError::Refused {
                            client,
                            what: "the subscription (broker sent DISCONNECT)",
                            reason: d.reason,
                        });
                    }
                    other => return Err(mqtt::unexpected(&client, &other, "on a subscriber")),
                }
            }
            (batch.received, batch.gaps_delta)
        };
        if !wbuf.is_empty() {
            mqtt::write_batch(&mut stream, &mut wbuf, &client).await?;
        }
        if let Some(credits) = credits.as_mut() {
            credits.flush(&shared.flows);
        }
        shared
            .progress
            .received
            .fetch_add(received, Ordering::Relaxed);
        if track_gaps && gaps_delta != 0 {
            shared
                .progress
                .gaps
                .fetch_add(gaps_delta as u64, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Batch {
    received: u64,
    /// Change in open sequence gaps (wrapping: may be negative).
    gaps_delta: i64,
}

/// Which subscriber record a subscriber writes to and which publishers it should hear.
struct Inbox {
    slot: usize,
    expected: Vec<bool>,
}

fn on_publish(
    st: &mut ThreadStats,
    inbox: &Inbox,
    payload: &[u8],
    window: Window,
    batch: &mut Batch,
    credits: Option<&mut Credits>,
) {
    let Some(header) = Header::read_from(payload) else {
        st.unexpected += 1;
        return;
    };
    if !inbox
        .expected
        .get(header.publisher as usize)
        .copied()
        .unwrap_or(false)
    {
        st.unexpected += 1;
        return;
    }
    let tracker = &mut st.subscribers[inbox.slot].trackers[header.publisher as usize];
    if !tracker.plausible(header.seq) {
        st.unexpected += 1;
        return;
    }
    let gaps_before = tracker.gaps();
    tracker.record(header.seq);
    batch.gaps_delta += tracker.gaps() as i64 - gaps_before as i64;
    batch.received += 1;
    st.received += 1;
    if window.measuring {
        st.received_in_window += 1;
    }
    if header.sent_ns >= window.warmup_end {
        record_ns(&mut st.latency, window.now.saturating_sub(header.sent_ns));
    }
    if let Some(credits) = credits {
        credits.add(header.publisher);
    }
}

// ---- publishers ----

/// Packet identifiers in use on one connection.
#[derive(Debug)]
pub struct IdPool {
    in_use: Vec<u64>,
    used: usize,
    next: u16,
}

impl Default for IdPool {
    fn default() -> Self {
        Self {
            in_use: vec![0; 1024],
            used: 0,
            next: 0,
        }
    }
}

impl IdPool {
    /// Identifiers still free (65,535 exist; 0 is never valid [MQTT-2.2.1-3]).
    pub fn free(&self) -> u64 {
        (u64::from(u16::MAX) - self.used as u64).min(u64::from(u16::MAX))
    }

    pub fn in_use(&self) -> usize {
        self.used
    }

    /// The next free identifier after the last one handed out.
    pub fn alloc(&mut self) -> Option<PacketId> {
        if self.free() == 0 {
            return None;
        }
        loop {
            self.next = self.next.wrapping_add(1).max(1);
            let (word, bit) = (self.next as usize / 64, self.next % 64);
            if self.in_use[word] & (1 << bit) == 0 {
                self.in_use[word] |= 1 << bit;
                self.used += 1;
                return PacketId::new(self.next);
            }
        }
    }

    /// Releases `id`; false if it was not in use (an ack the client never asked for).
    pub fn release(&mut self, id: PacketId) -> bool {
        let (word, bit) = (id.get() as usize / 64, id.get() % 64);
        if self.in_use[word] & (1 << bit) == 0 {
            return false;
        }
        self.in_use[word] &= !(1 << bit);
        self.used -= 1;
        true
    }
}

/// What a publisher's writer and its ack reader share.
#[derive(Debug, Default)]
struct PubState {
    ids: RefCell<IdPool>,
    /// PUBREC received: PUBREL to send.
    pending_rel: RefCell<Vec<PacketId>>,
}

async fn publisher(shared: Arc<Shared>, stats: Stats, spec: PublisherSpec) {
    if let Err(e) = run_publisher(&shared, &stats, &spec).await {
        shared.fail(e);
    }
}

async fn run_publisher(
    shared: &Arc<Shared>,
    stats: &Stats,
    spec: &PublisherSpec,
) -> Result<(), LoadError> {
    let cfg = &shared.cfg;
    let client = shared.client_id('p', spec.id);
    let (session, connect_ns) = open_gated(&cfg.settings, &client, PUBLISHER_READ_BUF).await?;
    record_ns(&mut stats.borrow_mut().connect_latency, connect_ns);
    let window = u64::from(cfg.inflight.max(1));
    // MQTT 5.0: never more unacknowledged QoS 1/2 publishes than the server's Receive
    // Maximum [MQTT-3.3.4-7], open loop or closed.
    let receive_maximum = session
        .connack
        .properties
        .receive_maximum
        .map_or(u64::from(u16::MAX), u64::from);
    let topic = mqtt::topic_name(&spec.topic)?;
    shared.ready.fetch_add(1, Ordering::AcqRel);
    let Some(start) = shared.wait_for_start().await else {
        return Ok(());
    };
    let Session { stream, rbuf, .. } = session;
    let (reader, writer) = stream.into_split();
    let state = Rc::new(PubState::default());
    monoio::spawn(publisher_acks(
        shared.clone(),
        state.clone(),
        reader,
        rbuf,
        client.clone(),
        spec.id,
    ));
    let mut writer = PublisherWriter {
        shared,
        stats,
        state: &state,
        flow: &shared.flows[spec.id as usize],
        id: spec.id,
        client,
        topic,
        template: Bytes::from(vec![0u8; cfg.size]),
        wbuf: BytesMut::with_capacity(WRITE_BUF),
        writer,
        schedule: (cfg.rate > 0.0).then(|| Schedule::new(start, spec.phase_ns, cfg.rate)),
        window,
        receive_maximum,
        warmup_end: shared.warmup_end_ns(start),
        end: shared.end_ns(start),
        seq: 0,
        forgiven: 0,
        last_completed: 0,
        last_progress_ns: start,
    };
    writer.send_until_stopped().await?;
    shared.done.fetch_add(1, Ordering::AcqRel);
    writer.serve_until_finished().await
}

struct PublisherWriter<'a> {
    shared: &'a Shared,
    stats: &'a Stats,
    state: &'a PubState,
    flow: &'a Flow,
    id: u32,
    client: String,
    topic: ringmq_protocol::TopicName,
    /// Zeroes of the payload size; each message's header is written over them in place.
    template: Bytes,
    wbuf: BytesMut,
    writer: OwnedWriteHalf<TcpStream>,
    schedule: Option<Schedule>,
    window: u64,
    receive_maximum: u64,
    warmup_end: u64,
    end: u64,
    seq: u64,
    /// Closed-loop QoS 0: completions written off as lost.
    forgiven: u64,
    last_completed: u64,
    last_progress_ns: u64,
}

impl PublisherWriter<'_> {
    async fn send_until_stopped(&mut self) -> Result<(), LoadError> {
        let count = self.shared.cfg.count.unwrap_or(u64::MAX);
        loop {
            let seen = self.flow.events();
            let now = now_ns();
            if self.shared.stopping() || now >= self.end || self.seq >= count {
                return self.flush_releases().await;
            }
            let n = self.sendable(now, count).min(MAX_BATCH);
            self.encode_releases()?;
            if n == 0 {
                if !self.wbuf.is_empty() {
                    mqtt::write_batch(&mut self.writer, &mut self.wbuf, &self.client).await?;
                    continue;
                }
                self.wait(seen).await;
                continue;
            }
            self.encode_publishes(n, now)?;
            mqtt::write_batch(&mut self.writer, &mut self.wbuf, &self.client).await?;
            self.flow.sent.fetch_add(n, Ordering::Relaxed);
            self.shared.progress.sent.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// How many messages may go now: those due (open loop) or the free window (closed loop),
    /// never more packet identifiers than are free.
    fn sendable(&mut self, now: u64, count: u64) -> u64 {
        let qos0 = self.shared.cfg.qos == QoS::AtMostOnce;
        let n = match self.schedule {
            Some(schedule) => schedule.due_count(now).min(count) - self.seq,
            None if qos0 => self.qos0_window_free(now),
            None => self
                .window
                .saturating_sub(self.state.ids.borrow().in_use() as u64),
        };
        let n = n.min(count - self.seq);
        if qos0 {
            return n;
        }
        let ids = self.state.ids.borrow();
        n.min(ids.free())
            .min(self.receive_maximum.saturating_sub(ids.in_use() as u64))
    }

    /// Closed-loop QoS 0: the window is messages sent but not yet received by every group.
    fn qos0_window_free(&mut self, now: u64) -> u64 {
        let fanout = self.shared.fanout[self.id as usize];
        if fanout == 0 {
            // Nobody subscribes (e.g. `iot -s 0`): nothing can complete, so no window.
            return self.window;
        }
        let units = u64::from(fanout);
        let completed = self.flow.completed.load(Ordering::SeqCst);
        if completed != self.last_completed {
            self.last_completed = completed;
            self.last_progress_ns = now;
        }
        let outstanding_units = (self.seq * units).saturating_sub(completed + self.forgiven);
        if outstanding_units > 0 && now.saturating_sub(self.last_progress_ns) > QOS0_STALL_NS {
            self.forgiven += outstanding_units;
            self.last_progress_ns = now;
            return self.window;
        }
        self.window
            .saturating_sub(outstanding_units.div_ceil(units))
    }

    async fn wait(&mut self, seen: u64) {
        match self.schedule {
            // Open loop sleeps precisely until the next send is due (acks, PUBRECs and a
            // failure of the run wake it earlier): a late wake-up would count as latency.
            Some(schedule) => {
                let due = schedule.intended_ns(self.seq).min(self.end);
                precise::until_or(self.flow.changed(seen), due).await;
            }
            // Closed loop rechecks for a stalled QoS 0 window.
            None => {
                let _ = monoio::time::timeout(RECHECK, self.flow.changed(seen)).await;
            }
        }
    }

    fn encode_publishes(&mut self, n: u64, now: u64) -> Result<(), LoadError> {
        let cfg = &self.shared.cfg;
        let mut ids = self.state.ids.borrow_mut();
        let mut in_window = 0;
        let mut st = self.stats.borrow_mut();
        for _ in 0..n {
            let packet_id = if cfg.qos == QoS::AtMostOnce {
                None
            } else {
                ids.alloc()
            };
            let sent_ns = self.schedule.map_or(now, |s| s.intended_ns(self.seq));
            if self.schedule.is_some() && sent_ns >= self.warmup_end {
                record_lag_ns(&mut st.send_lag, now.saturating_sub(sent_ns));
            }
            let range = mqtt::encode_publish(
                &mut self.wbuf,
                cfg.settings.version,
                &self.topic,
                cfg.qos,
                packet_id,
                &self.template,
            )?;
            Header {
                publisher: self.id,
                seq: self.seq,
                sent_ns,
            }
            .write_to(&mut self.wbuf[range]);
            if sent_ns >= self.warmup_end {
                in_window += 1;
            }
            self.seq += 1;
        }
        st.sent_in_window += in_window;
        Ok(())
    }

    fn encode_releases(&mut self) -> Result<(), LoadError> {
        let version = self.shared.cfg.settings.version;
        for id in self.state.pending_rel.borrow_mut().drain(..) {
            mqtt::encode_packet(&mut self.wbuf, version, &Packet::PubRel(PubResp::new(id)))?;
        }
        Ok(())
    }

    async fn flush_releases(&mut self) -> Result<(), LoadError> {
        self.encode_releases()?;
        if !self.wbuf.is_empty() {
            mqtt::write_batch(&mut self.writer, &mut self.wbuf, &self.client).await?;
        }
        Ok(())
    }

    /// After the last send: keep the connection open (dropping the write half would shut the
    /// socket down) and keep completing QoS 2 exchanges until the run finishes.
    async fn serve_until_finished(&mut self) -> Result<(), LoadError> {
        while !self.shared.finished() && !self.shared.failed() {
            let seen = self.flow.events();
            self.flush_releases().await?;
            let _ = monoio::time::timeout(RECHECK, self.flow.changed(seen)).await;
        }
        Ok(())
    }
}

/// Reads a publisher's acks: PUBACK and PUBCOMP free the window, PUBREC queues a PUBREL.
async fn publisher_acks(
    shared: Arc<Shared>,
    state: Rc<PubState>,
    mut reader: OwnedReadHalf<TcpStream>,
    mut rbuf: BytesMut,
    client: String,
    id: u32,
) {
    let flow = &shared.flows[id as usize];
    let version = shared.cfg.settings.version;
    let result: Result<(), LoadError> = async {
        let mut need_read = rbuf.is_empty();
        loop {
            if need_read {
                mqtt::fill(
                    &mut reader,
                    &mut rbuf,
                    PUBLISHER_READ_BUF,
                    &client,
                    "publishing",
                )
                .await?;
            }
            need_read = true;
            let mut acks = 0;
            let mut releases = false;
            while let Some(packet) = mqtt::decode_one(&mut rbuf, version, &client)? {
                match packet {
                    Packet::PubAck(ack) | Packet::PubComp(ack) => {
                        if state.ids.borrow_mut().release(ack.packet_id) {
                            acks += 1;
                        }
                    }
                    Packet::PubRec(rec) if rec.reason.is_error() => {
                        if state.ids.borrow_mut().release(rec.packet_id) {
                            acks += 1;
                        }
                    }
                    Packet::PubRec(rec) => {
                        state.pending_rel.borrow_mut().push(rec.packet_id);
                        releases = true;
                    }
                    Packet::PingResp => {}
                    Packet::Disconnect(d) => {
                        return Err(LoadError::Refused {
                            client: client.clone(),
                            what: "publishing (broker sent DISCONNECT)",
                            reason: d.reason,
                        });
                    }
                    other => return Err(mqtt::unexpected(&client, &other, "on a publisher")),
                }
            }
            if acks > 0 {
                shared.progress.acked.fetch_add(acks, Ordering::Relaxed);
                flow.complete(acks);
            } else if releases {
                flow.signal();
            }
        }
    }
    .await;
    if let Err(e) = result {
        shared.fail(e);
    }
}

// ---- connection storm ----

async fn connect_worker(shared: Arc<Shared>, stats: Stats, worker: u32) {
    let Some(start) = shared.wait_for_start().await else {
        return;
    };
    let cfg = &shared.cfg;
    let client = shared.client_id('c', worker);
    let schedule = (cfg.rate > 0.0).then(|| Schedule::new(start, 0, cfg.rate));
    let (warmup_end, end) = (shared.warmup_end_ns(start), shared.end_ns(start));
    let count = cfg.count.unwrap_or(u64::MAX);
    let mut k = 0;
    while k < count && !shared.stopping() && now_ns() < end {
        let intended = match schedule {
            Some(s) => {
                let t = s.intended_ns(k);
                precise::sleep_until(t).await;
                t
            }
            None => now_ns(),
        };
        k += 1;
        match connect_once(&shared, &client).await {
            Ok(connected_ns) => {
                shared.progress.connects.fetch_add(1, Ordering::Relaxed);
                if intended >= warmup_end && connected_ns < end {
                    let mut st = stats.borrow_mut();
                    record_ns(&mut st.latency, connected_ns - intended);
                    st.connects_in_window += 1;
                }
            }
            Err(e) => {
                let failures = shared
                    .progress
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if shared.progress.connects.load(Ordering::Relaxed) == 0
                    && failures >= u64::from(shared.plan.clients)
                {
                    shared.fail(e);
                    return;
                }
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    shared.done.fetch_add(1, Ordering::AcqRel);
}

/// One connect/CONNACK/DISCONNECT; returns when CONNACK arrived.
async fn connect_once(shared: &Shared, client: &str) -> Result<u64, LoadError> {
    let version = shared.cfg.settings.version;
    let mut session = mqtt::open(&shared.cfg.settings, client, 256).await?;
    let connected = now_ns();
    let mut wbuf = BytesMut::with_capacity(16);
    mqtt::encode_packet(&mut wbuf, version, &mqtt::disconnect_packet())?;
    mqtt::write_batch(&mut session.stream, &mut wbuf, client).await?;
    Ok(connected)
}

// ---- idle connections ----

async fn open_idle_connections(index: usize, threads: usize, shared: &Arc<Shared>, stats: &Stats) {
    let mine: Vec<u32> = (0..shared.plan.clients)
        .filter(|k| *k as usize % threads == index)
        .collect();
    let settled = Rc::new(Cell::new(0usize));
    for (wave, chunk) in mine.chunks(IDLE_CONNECT_WAVE).enumerate() {
        for &n in chunk {
            monoio::spawn(idle_connection(
                shared.clone(),
                stats.clone(),
                n,
                settled.clone(),
            ));
        }
        let target = wave * IDLE_CONNECT_WAVE + chunk.len();
        while settled.get() < target && !shared.failed() && !shared.finished() {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn idle_connection(shared: Arc<Shared>, stats: Stats, n: u32, settled: Rc<Cell<usize>>) {
    let client = shared.client_id('i', n);
    let opened = open_gated(&shared.cfg.settings, &client, IDLE_READ_BUF).await;
    settled.set(settled.get() + 1);
    let (session, connect_ns) = match opened {
        Ok(opened) => opened,
        Err(e) => return shared.fail(e),
    };
    record_ns(&mut stats.borrow_mut().connect_latency, connect_ns);
    shared.ready.fetch_add(1, Ordering::AcqRel);
    let Session { stream, rbuf, .. } = session;
    let (reader, mut writer) = stream.into_split();
    let last_ping = Rc::new(Cell::new(0u64));
    monoio::spawn(idle_reader(
        shared.clone(),
        stats.clone(),
        reader,
        rbuf,
        client.clone(),
        last_ping.clone(),
    ));
    let keepalive = shared.cfg.settings.keepalive;
    if keepalive == 0 {
        while !shared.finished() {
            monoio::time::sleep(Duration::from_millis(100)).await;
        }
        return;
    }
    let interval = Duration::from_millis(u64::from(keepalive) * 500);
    let version = shared.cfg.settings.version;
    let mut wbuf = BytesMut::with_capacity(16);
    while !shared.finished() && !shared.failed() {
        monoio::time::sleep(interval).await;
        if let Err(e) = mqtt::encode_packet(&mut wbuf, version, &Packet::PingReq) {
            return shared.fail(e);
        }
        last_ping.set(now_ns());
        if let Err(e) = mqtt::write_batch(&mut writer, &mut wbuf, &client).await {
            return shared.fail(e);
        }
    }
}

async fn idle_reader(
    shared: Arc<Shared>,
    stats: Stats,
    mut reader: OwnedReadHalf<TcpStream>,
    mut rbuf: BytesMut,
    client: String,
    last_ping: Rc<Cell<u64>>,
) {
    let version = shared.cfg.settings.version;
    let result: Result<(), LoadError> = async {
        let mut need_read = rbuf.is_empty();
        loop {
            if need_read {
                mqtt::fill(&mut reader, &mut rbuf, IDLE_READ_BUF, &client, "idle").await?;
            }
            need_read = true;
            while let Some(packet) = mqtt::decode_one(&mut rbuf, version, &client)? {
                match packet {
                    Packet::PingResp => {
                        let now = now_ns();
                        shared.progress.pings.fetch_add(1, Ordering::Relaxed);
                        if let Some(start) = shared.start()
                            && last_ping.get() >= shared.warmup_end_ns(start)
                        {
                            record_ns(&mut stats.borrow_mut().latency, now - last_ping.get());
                        }
                    }
                    Packet::Disconnect(d) => {
                        return Err(LoadError::Refused {
                            client: client.clone(),
                            what: "an idle connection (broker sent DISCONNECT)",
                            reason: d.reason,
                        });
                    }
                    other => {
                        return Err(mqtt::unexpected(&client, &other, "on an idle connection"));
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        shared.fail(e);
    }
}
