//! The connection storm: each worker connects, waits for CONNACK and disconnects, over and
//! over, on a schedule or as fast as it can; the latency is intended time to CONNACK.

use super::shared::Shared;
use super::stats::{Stats, record_ns};
use crate::clock::now_ns;
use crate::error::LoadError;
use crate::mqtt;
use crate::precise;
use crate::schedule::Schedule;
use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) async fn connect_worker(shared: Arc<Shared>, stats: Stats, worker: u32) {
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
