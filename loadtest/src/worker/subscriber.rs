//! A subscriber: connects, subscribes, then reads and decodes batches of PUBLISHes, tracking
//! each publisher's sequence, recording latency, acknowledging QoS 1/2, and crediting
//! closed-loop QoS 0 publishers with what it received.

use super::WRITE_BUF;
use super::handshake::open_gated;
use super::shared::{Flow, Shared};
use super::stats::{Stats, ThreadStats, record_ns};
use crate::clock::now_ns;
use crate::error::LoadError;
use crate::mqtt::{self, Session};
use crate::payload::Header;
use crate::plan::SubscriberSpec;
use bytes::BytesMut;
use ringmq_protocol::{Packet, PubResp, QoS};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Subscribers read into (at least) this much free buffer: one read takes thousands of
/// messages, all decoded before the next read.
const SUBSCRIBER_READ_BUF: usize = 512 * 1024;

pub(super) async fn subscriber(
    shared: Arc<Shared>,
    stats: Stats,
    spec: SubscriberSpec,
    slot: usize,
) {
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
    let (mut session, connect_ns) =
        open_gated(&cfg.sub_settings, &client, SUBSCRIBER_READ_BUF).await?;
    record_ns(&mut stats.borrow_mut().connect_latency, connect_ns);
    mqtt::subscribe(
        &mut session,
        &cfg.sub_settings,
        &spec.filter,
        cfg.qos,
        &client,
    )
    .await?;
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
