//! Idle connections: opened in waves, then kept alive with PINGREQs at half the keep alive;
//! the ping round trips are the scenario's latency.

use super::handshake::open_gated;
use super::shared::Shared;
use super::stats::{Stats, record_ns};
use crate::clock::now_ns;
use crate::error::LoadError;
use crate::link::ConnReader;
use crate::mqtt::{self, Session};
use bytes::BytesMut;
use ringmq_protocol::Packet;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Idle connections are opened in waves of this many per thread, so a large --connections does
/// not overflow the broker's listen backlog.
const IDLE_CONNECT_WAVE: usize = 128;
const IDLE_READ_BUF: usize = 256;

pub(super) async fn open_idle_connections(
    index: usize,
    threads: usize,
    shared: &Arc<Shared>,
    stats: &Stats,
) {
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
    mut reader: ConnReader,
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
