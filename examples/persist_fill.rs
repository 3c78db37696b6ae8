//! Writes persistence logs as a broker would leave them, for the restart-time benchmark
//! (`loadtest/persistence-bench.sh`): N retained messages and S offline persistent sessions
//! (one subscription each), each record in the log of the shard that owns it, so that a
//! broker started on the directory recovers them as if it had received them.
//!
//! `cargo run --release --example persist_fill -- DIR SHARDS RETAINED SESSIONS [PAYLOAD]`

use ringmq::persist::{
    HEADER, Record, RetainedMessage, SessionRecord, SubscriptionRecord, encode_record, log_path,
};
use ringmq::protocol::{ProtocolVersion, QoS, SubscriptionOptions, TopicFilter, TopicName};
use ringmq::shard::home_shard;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .map_or(Ok(default), |a| a.parse::<usize>())
            .map_err(|e| format!("argument {}: {e}", i + 1))
    };
    let parsed = (|| -> Result<_, String> {
        let dir = PathBuf::from(
            args.first()
                .ok_or("usage: DIR SHARDS RETAINED SESSIONS [PAYLOAD]")?,
        );
        Ok((
            dir,
            number(1, 1)?.max(1),
            number(2, 0)?,
            number(3, 0)?,
            number(4, 64)?,
        ))
    })();
    let (dir, shards, retained, sessions, payload) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("persist_fill: {e}");
            return ExitCode::FAILURE;
        }
    };
    match fill(&dir, shards, (retained, sessions, payload)) {
        Ok(bytes) => {
            println!(
                "persist_fill: {retained} retained messages and {sessions} sessions in {shards} \
                 logs under {} ({bytes} bytes)",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("persist_fill: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fill(
    dir: &std::path::Path,
    shards: usize,
    (retained, sessions, payload): (usize, usize, usize),
) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut logs: Vec<std::io::BufWriter<std::fs::File>> = Vec::new();
    for shard in 0..shards {
        let path = log_path(dir, shard);
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut log = std::io::BufWriter::new(file);
        log.write_all(&HEADER).map_err(|e| e.to_string())?;
        logs.push(log);
    }
    let body = bytes::Bytes::from(vec![b'r'; payload]);
    let mut buf = Vec::new();
    let mut write = |key: &[u8], record: &Record, logs: &mut Vec<std::io::BufWriter<_>>| {
        buf.clear();
        encode_record(record, &mut buf).map_err(|e| e.to_string())?;
        let log = logs
            .get_mut(home_shard(key, shards))
            .ok_or("no such shard")?;
        log.write_all(&buf).map_err(|e| e.to_string())
    };
    for i in 0..retained {
        let topic = TopicName::try_from(format!("bench/retained/{}/{i}", i % 1000).as_str())
            .map_err(|e| format!("{e:?}"))?;
        let record = Record::RetainedSet(RetainedMessage {
            topic: topic.clone(),
            payload: body.clone(),
            qos: QoS::AtLeastOnce,
            properties: None,
            expires_at: None,
        });
        write(topic.as_bytes(), &record, &mut logs)?;
    }
    for i in 0..sessions {
        let client_id = format!("bench-offline-{i}");
        let filter = TopicFilter::try_from(format!("bench/sessions/{i}/#").as_str())
            .map_err(|e| format!("{e:?}"))?;
        let record = Record::SessionState(SessionRecord {
            client_id: client_id.clone(),
            version: ProtocolVersion::V4,
            expiry_interval: u32::MAX,
            expires_at: None,
            will: None,
            subscriptions: vec![SubscriptionRecord {
                filter,
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..SubscriptionOptions::default()
                },
                id: 0,
            }],
        });
        write(client_id.as_bytes(), &record, &mut logs)?;
    }
    let mut bytes = 0;
    for (shard, log) in logs.into_iter().enumerate() {
        let file = log.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        bytes += std::fs::metadata(log_path(dir, shard)).map_or(0, |m| m.len());
    }
    Ok(bytes)
}
