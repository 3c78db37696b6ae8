//! A publisher: connects, waits for the start, then sends on its schedule (open loop) or as
//! its window allows (closed loop), while its ack reader frees packet identifiers and queues
//! the PUBRELs of QoS 2.

use super::WRITE_BUF;
use super::handshake::open_gated;
use super::shared::{Flow, Shared};
use super::stats::{Stats, record_lag_ns, record_ns};
use crate::clock::now_ns;
use crate::error::LoadError;
use crate::link::{ConnReader, ConnWriter};
use crate::mqtt::{self, Session};
use crate::payload::Header;
use crate::plan::PublisherSpec;
use crate::precise;
use crate::schedule::Schedule;
use bytes::{Bytes, BytesMut};
use ringmq_protocol::{Packet, PacketId, PubResp, QoS};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A publisher only reads acks (4 bytes each): a small buffer that grows if ever needed keeps
/// thousands of IoT devices cheap.
const PUBLISHER_READ_BUF: usize = 4096;
/// Publishes encoded into one write at most.
const MAX_BATCH: u64 = 1024;
/// A closed-loop QoS 0 publisher whose window has not moved for this long writes the
/// outstanding messages off as lost rather than stalling forever.
const QOS0_STALL_NS: u64 = 200_000_000;
/// How often a waiting publisher rechecks the run's phase.
const RECHECK: Duration = Duration::from_millis(20);

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

pub(super) async fn publisher(shared: Arc<Shared>, stats: Stats, spec: PublisherSpec) {
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
    writer: ConnWriter,
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
    mut reader: ConnReader,
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
