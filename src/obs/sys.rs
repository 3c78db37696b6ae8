//! The `$SYS/broker/...` topics, with Mosquitto's names where it has them: the values of
//! every shard's snapshot summed (and each shard's own under `$SYS/broker/shard/N/...`), the
//! broker's version and uptime, the most clients connected at once, and 1, 5 and 15 minute
//! load averages. Pure: the shard that publishes them keeps a `SysTopics` and asks it for
//! the topics and payloads at each interval.

use super::metrics::{Scalar, Snapshot};
use std::time::Duration;

/// The load averages Mosquitto publishes, as `$SYS/broker/load/{name}/{1min,5min,15min}`.
const LOADS: [&str; 8] = [
    "messages/received",
    "messages/sent",
    "publish/received",
    "publish/sent",
    "publish/dropped",
    "bytes/received",
    "bytes/sent",
    "connections",
];
const PERIODS: [(&str, f64); 3] = [("1min", 60.0), ("5min", 300.0), ("15min", 900.0)];

/// The counter behind each load average, from the summed snapshot.
fn load_counters(sum: &Snapshot) -> [u64; LOADS.len()] {
    [
        sum.get(Scalar::PacketsReceived),
        sum.get(Scalar::PacketsSent),
        sum.received.iter().sum(),
        sum.sent.iter().sum(),
        sum.dropped.iter().sum(),
        sum.get(Scalar::BytesReceived),
        sum.get(Scalar::BytesSent),
        sum.get(Scalar::ConnectionsAccepted),
    ]
}

/// What `$SYS` remembers between publications.
#[derive(Debug, Clone, Default)]
pub struct SysTopics {
    maximum_connected: u64,
    /// The counters at the last publication, for the load averages.
    last: Option<[u64; LOADS.len()]>,
    /// Per load and period: an exponentially weighted rate per minute.
    loads: [[f64; PERIODS.len()]; LOADS.len()],
}

impl SysTopics {
    /// The topics and payloads to publish now, `elapsed` after the previous publication,
    /// from every shard's latest snapshot (by shard id) and the broker's `uptime`.
    pub fn publish(
        &mut self,
        shards: &[Snapshot],
        uptime: Duration,
        elapsed: Duration,
    ) -> Vec<(String, String)> {
        let mut sum = Snapshot::new(shards.len());
        shards.iter().for_each(|s| sum.add(s));
        self.maximum_connected = self.maximum_connected.max(connected(&sum));
        self.update_loads(&sum, elapsed);
        let mut out = vec![
            (
                "version".to_owned(),
                format!("ringmq {}", env!("CARGO_PKG_VERSION")),
            ),
            ("uptime".to_owned(), format!("{} seconds", uptime.as_secs())),
            (
                "clients/maximum".to_owned(),
                self.maximum_connected.to_string(),
            ),
        ];
        // Each shard holds the whole retained store: its count is not summed.
        let retained = shards
            .first()
            .map_or(0, |s| s.get(Scalar::RetainedMessages));
        let retained_bytes = shards.first().map_or(0, |s| s.get(Scalar::RetainedBytes));
        out.extend(counts("", &sum));
        out.push(("retained messages/count".to_owned(), retained.to_string()));
        let stored = retained + sum.get(Scalar::Queued) + sum.get(Scalar::Inflight);
        out.push(("store/messages/count".to_owned(), stored.to_string()));
        out.push((
            "store/messages/bytes".to_owned(),
            retained_bytes.to_string(),
        ));
        for (name, per_period) in LOADS.iter().zip(&self.loads) {
            for ((period, _), value) in PERIODS.iter().zip(per_period) {
                out.push((format!("load/{name}/{period}"), format!("{value:.2}")));
            }
        }
        for (id, shard) in shards.iter().enumerate() {
            out.extend(counts(&format!("shard/{id}/"), shard));
        }
        for (topic, _) in &mut out {
            topic.insert_str(0, "$SYS/broker/");
        }
        out
    }

    fn update_loads(&mut self, sum: &Snapshot, elapsed: Duration) {
        let now = load_counters(sum);
        let secs = elapsed.as_secs_f64();
        if let Some(last) = self.last.filter(|_| secs > 0.0) {
            for ((per_period, now), last) in self.loads.iter_mut().zip(now).zip(last) {
                let per_minute = now.saturating_sub(last) as f64 * 60.0 / secs;
                for (value, (_, period)) in per_period.iter_mut().zip(PERIODS) {
                    let decay = (-secs / period).exp();
                    *value = *value * decay + per_minute * (1.0 - decay);
                }
            }
        }
        self.last = Some(now);
    }
}

fn connected(s: &Snapshot) -> u64 {
    s.get(Scalar::SessionsOnline)
}

/// The topics with a value per shard and in sum, under `prefix`.
fn counts(prefix: &str, s: &Snapshot) -> Vec<(String, String)> {
    let connected = connected(s);
    let disconnected = s.get(Scalar::SessionsOffline);
    let values = [
        ("clients/connected", connected),
        ("clients/disconnected", disconnected),
        ("clients/total", connected + disconnected),
        ("clients/expired", s.get(Scalar::SessionsExpired)),
        ("messages/received", s.get(Scalar::PacketsReceived)),
        ("messages/sent", s.get(Scalar::PacketsSent)),
        ("publish/messages/received", s.received.iter().sum()),
        ("publish/messages/sent", s.sent.iter().sum()),
        ("publish/messages/dropped", s.dropped.iter().sum()),
        ("bytes/received", s.get(Scalar::BytesReceived)),
        ("bytes/sent", s.get(Scalar::BytesSent)),
        ("subscriptions/count", s.get(Scalar::Subscriptions)),
        ("messages/inflight", s.get(Scalar::Inflight)),
        ("mesh/overflows", s.get(Scalar::MeshOverflows)),
    ];
    values
        .into_iter()
        .map(|(topic, value)| (format!("{prefix}{topic}"), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(topics: &'a [(String, String)], topic: &str) -> &'a str {
        topics
            .iter()
            .find(|(t, _)| t == topic)
            .map_or_else(|| panic!("no {topic}"), |(_, v)| v.as_str())
    }

    #[test]
    fn shards_are_summed_and_each_published_on_its_own() {
        let mut a = Snapshot::new(2);
        a.set(Scalar::SessionsOnline, 2);
        a.set(Scalar::RetainedMessages, 5);
        a.received = [1, 2, 3];
        let mut b = Snapshot::new(2);
        b.set(Scalar::SessionsOnline, 1);
        b.set(Scalar::SessionsOffline, 4);
        b.set(Scalar::RetainedMessages, 5);
        let mut sys = SysTopics::default();
        let topics = sys.publish(&[a, b], Duration::from_secs(7), Duration::from_secs(10));
        assert_eq!(value(&topics, "$SYS/broker/clients/connected"), "3");
        assert_eq!(value(&topics, "$SYS/broker/clients/total"), "7");
        assert_eq!(value(&topics, "$SYS/broker/clients/maximum"), "3");
        assert_eq!(value(&topics, "$SYS/broker/publish/messages/received"), "6");
        assert_eq!(value(&topics, "$SYS/broker/retained messages/count"), "5");
        assert_eq!(value(&topics, "$SYS/broker/uptime"), "7 seconds");
        assert_eq!(value(&topics, "$SYS/broker/shard/1/clients/connected"), "1");
        assert_eq!(
            value(&topics, "$SYS/broker/shard/0/publish/messages/received"),
            "6"
        );
        assert!(value(&topics, "$SYS/broker/version").starts_with("ringmq "));
    }

    #[test]
    fn the_maximum_stays_and_loads_follow_the_rate() {
        let mut sys = SysTopics::default();
        let mut s = Snapshot::new(1);
        s.set(Scalar::SessionsOnline, 4);
        let _ = sys.publish(&[s.clone()], Duration::ZERO, Duration::from_secs(10));
        s.set(Scalar::SessionsOnline, 1);
        // 600 PUBLISHes in 60 s: 600 a minute.
        s.received[0] = 600;
        let topics = sys.publish(&[s], Duration::ZERO, Duration::from_secs(60));
        assert_eq!(value(&topics, "$SYS/broker/clients/maximum"), "4");
        let one: f64 = value(&topics, "$SYS/broker/load/publish/received/1min")
            .parse()
            .unwrap_or_default();
        let fifteen: f64 = value(&topics, "$SYS/broker/load/publish/received/15min")
            .parse()
            .unwrap_or_default();
        // After one minute the 1 minute average has come 1 - 1/e of the way.
        assert!(
            (one - 600.0 * (1.0 - (-1.0f64).exp())).abs() < 0.01,
            "{one}"
        );
        assert!(fifteen > 0.0 && fifteen < one, "{fifteen}");
    }
}
