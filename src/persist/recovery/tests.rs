//! Recovery on real files in a private directory: torn tails cut, expiry by wall clock,
//! rehoming to another shard count, the directory lock.

use super::*;
use crate::protocol::QoS;
use bytes::Bytes;

fn topic(name: &str) -> TopicName {
    TopicName::try_from(name).unwrap_or_default()
}

fn message(name: &str, payload: &str, expires_at: Option<WallTime>) -> RetainedMessage {
    RetainedMessage {
        topic: topic(name),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        properties: None,
        expires_at,
    }
}

/// Owner by the topic's first byte, so tests choose where a topic lives.
fn by_first_byte(shards: usize) -> impl Fn(&[u8]) -> usize {
    move |t| usize::from(t[0].wrapping_sub(b'0')) % shards
}

fn write_log(dir: &Path, shard: usize, records: &[Record]) -> Vec<usize> {
    let mut bytes = HEADER.to_vec();
    let mut ends = Vec::new();
    for r in records {
        assert_eq!(encode_record(r, &mut bytes), Ok(()));
        ends.push(bytes.len());
    }
    fs::write(log_path(dir, shard), &bytes).unwrap_or_else(|e| panic!("write: {e}"));
    ends
}

fn recovered(dir: &Path, shards: usize, now: u64) -> Recovered {
    match recover(dir, shards, WallTime(now), by_first_byte(shards)) {
        Ok((_lock, r)) => r,
        Err(e) => panic!("recover: {e}"),
    }
}

fn topics(r: &Recovered) -> Vec<String> {
    let mut t: Vec<String> = r.retained.iter().map(|m| m.topic.to_string()).collect();
    t.sort();
    t
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

#[test]
fn sets_and_clears_replay_to_the_live_set_and_expired_messages_are_dropped() {
    let dir = tempdir();
    write_log(
        dir.path(),
        0,
        &[
            Record::RetainedSet(message("0/a", "1", None)),
            Record::RetainedSet(message("0/b", "1", None)),
            Record::RetainedSet(message("0/a", "2", None)),
            Record::RetainedClear(topic("0/b")),
            Record::RetainedSet(message("0/old", "x", Some(WallTime(1_000)))),
            Record::RetainedSet(message("0/new", "y", Some(WallTime(3_000)))),
        ],
    );
    let r = recovered(dir.path(), 1, 2_000);
    assert_eq!(topics(&r), ["0/a", "0/new"]);
    assert_eq!(r.expired, 1);
    assert!(
        r.retained.iter().any(|m| m.payload == "2"),
        "the later set wins"
    );
    assert_eq!((r.truncated, r.rehomed), (0, false));
}

#[test]
fn a_torn_tail_is_cut_at_the_last_good_record() {
    let dir = tempdir();
    let ends = write_log(
        dir.path(),
        0,
        &[
            Record::RetainedSet(message("0/a", "1", None)),
            Record::RetainedSet(message("0/b", "2", None)),
        ],
    );
    let path = log_path(dir.path(), 0);
    let full = fs::read(&path).unwrap_or_default();
    fs::write(&path, &full[..ends[1] - 3]).unwrap_or_else(|e| panic!("{e}"));
    let r = recovered(dir.path(), 1, 0);
    assert_eq!(topics(&r), ["0/a"]);
    assert_eq!(r.truncated, 1);
    assert_eq!(
        fs::metadata(&path).map(|m| m.len()).ok(),
        Some(ends[0] as u64)
    );
    // Recovered again, the log is clean.
    assert_eq!(recovered(dir.path(), 1, 0).truncated, 0);
}

#[test]
fn a_file_of_garbage_is_cut_to_nothing_not_refused() {
    let dir = tempdir();
    let path = log_path(dir.path(), 0);
    fs::write(&path, b"not a log at all").unwrap_or_else(|e| panic!("{e}"));
    let r = recovered(dir.path(), 1, 0);
    assert!(r.retained.is_empty());
    assert_eq!(r.truncated, 1);
    assert_eq!(fs::metadata(&path).map(|m| m.len()).ok(), Some(0));
}

#[test]
fn a_log_of_a_newer_format_is_refused_untouched() {
    let dir = tempdir();
    let path = log_path(dir.path(), 0);
    let mut header = HEADER;
    header[6] = 9;
    fs::write(&path, header).unwrap_or_else(|e| panic!("{e}"));
    let result = recover(dir.path(), 1, WallTime(0), by_first_byte(1));
    assert!(matches!(
        result,
        Err(PersistError::NewerFormat { version: 9, .. })
    ));
    assert_eq!(fs::read(&path).ok(), Some(header.to_vec()));
}

#[test]
fn a_log_of_an_older_format_is_read_and_rewritten_with_this_version() {
    // Version 2 had neither the will's Message Expiry Interval nor connection wills; its
    // records are a subset of version 3's.
    let dir = tempdir();
    write_log(dir.path(), 0, &[session("0a", None, true)]);
    let path = log_path(dir.path(), 0);
    let mut bytes = fs::read(&path).unwrap_or_default();
    bytes[6] = 2;
    fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let r = recovered(dir.path(), 1, 0);
    assert_eq!(r.sessions.len(), 1);
    let will = r.sessions[0].1.state.will.as_ref();
    assert_eq!(will.map(|w| w.expiry_interval), Some(None));
    let rewritten = fs::read(&path).unwrap_or_default();
    assert_eq!(rewritten.get(..HEADER.len()), Some(&HEADER[..]));
}

#[test]
fn another_shard_count_rehomes_every_message_to_its_owner() {
    let dir = tempdir();
    // Two shards: topics starting with an even digit on 0, odd on 1.
    write_log(
        dir.path(),
        0,
        &[
            Record::RetainedSet(message("0/a", "0", None)),
            Record::RetainedSet(message("2/a", "2", None)),
        ],
    );
    write_log(
        dir.path(),
        1,
        &[
            Record::RetainedSet(message("1/a", "1", None)),
            Record::RetainedSet(message("3/a", "3", None)),
        ],
    );
    let r = recovered(dir.path(), 3, 0);
    assert!(r.rehomed);
    assert_eq!(topics(&r), ["0/a", "1/a", "2/a", "3/a"]);
    // Each log now holds exactly what its shard owns of three.
    let owned = |shard: usize| -> Vec<String> {
        let bytes = fs::read(log_path(dir.path(), shard)).unwrap_or_default();
        let replay = Replay::new(&bytes).unwrap_or_else(|v| panic!("version {v}"));
        let mut topics: Vec<String> = replay
            .filter_map(|item| match item {
                Ok((Record::RetainedSet(m), _)) => Some(m.topic.to_string()),
                _ => None,
            })
            .collect();
        topics.sort();
        topics
    };
    assert_eq!(owned(0), ["0/a", "3/a"]);
    assert_eq!(owned(1), ["1/a"]);
    assert_eq!(owned(2), ["2/a"]);
    // And back to one shard: the logs of shards 1 and 2 are gone.
    let r = recovered(dir.path(), 1, 0);
    assert_eq!(topics(&r), ["0/a", "1/a", "2/a", "3/a"]);
    assert!(!log_path(dir.path(), 1).exists() && !log_path(dir.path(), 2).exists());
    let again = recovered(dir.path(), 1, 0);
    assert!(!again.rehomed, "a matching layout is left as it is");
}

#[test]
fn the_directory_is_locked_while_its_recovery_lives() {
    let dir = tempdir();
    let held = DirLock::take(dir.path());
    assert!(held.is_ok());
    let started = Instant::now();
    let second = recover(dir.path(), 1, WallTime(0), by_first_byte(1));
    assert!(matches!(second, Err(PersistError::Locked(_))));
    assert!(started.elapsed() >= LOCK_WAIT);
    drop(held);
    assert!(DirLock::take(dir.path()).is_ok());
}

fn session(client_id: &str, expires_at: Option<WallTime>, will: bool) -> Record {
    use crate::persist::record::{SessionRecord, StoredMessage, WillRecord};
    Record::SessionState(SessionRecord {
        client_id: client_id.into(),
        version: crate::protocol::ProtocolVersion::V4,
        expiry_interval: 60,
        expires_at,
        will: will.then(|| WillRecord {
            message: StoredMessage {
                retain: false,
                message: message("0/will", "gone", None),
            },
            delay: 0,
            due: Some(WallTime(500)),
            expiry_interval: None,
        }),
        subscriptions: vec![],
    })
}

fn queued(client_id: &str, n: u64, packet_id: Option<u16>) -> Record {
    use crate::persist::record::{OutMessage, StoredMessage};
    Record::OutQueued(OutMessage {
        client_id: client_id.into(),
        n,
        packet_id: packet_id.and_then(crate::protocol::PacketId::new),
        message: StoredMessage {
            retain: false,
            message: message("0/q", &n.to_string(), None),
        },
    })
}

fn pid(id: u16) -> crate::protocol::PacketId {
    crate::protocol::PacketId::new(id).unwrap_or_else(|| panic!("{id} is a packet id"))
}

#[test]
fn sessions_replay_to_what_they_still_owe_and_expired_ones_end_unless_a_will_is_owed() {
    let dir = tempdir();
    let records = [
        session("0a", None, false),
        queued("0a", 0, Some(1)),
        queued("0a", 1, Some(2)),
        queued("0a", 2, None),
        queued("0a", 3, None),
        Record::OutDone {
            client_id: "0a".into(),
            n: 0,
        },
        Record::OutReleased {
            client_id: "0a".into(),
            n: 1,
        },
        Record::OutSent {
            client_id: "0a".into(),
            n: 2,
            packet_id: pid(3),
        },
        Record::InQos2 {
            client_id: "0a".into(),
            packet_id: pid(9),
        },
        Record::InQos2 {
            client_id: "0a".into(),
            packet_id: pid(10),
        },
        Record::InQos2Done {
            client_id: "0a".into(),
            packet_id: pid(9),
        },
        // Ended: it and its messages are gone.
        session("0b", None, false),
        queued("0b", 0, None),
        Record::SessionEnd("0b".into()),
        // Expired while down (now = 2000): ended, unless it owes a will.
        session("0c", Some(WallTime(1_000)), false),
        session("0d", Some(WallTime(1_000)), true),
        session("0e", Some(WallTime(9_000)), false),
        // A message of a session never logged is ignored.
        queued("0z", 0, None),
    ];
    write_log(dir.path(), 0, &records);
    let r = recovered(dir.path(), 1, 2_000);
    let mut ids: Vec<&str> = r
        .sessions
        .iter()
        .map(|(_, s)| s.state.client_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["0a", "0d", "0e"]);
    assert_eq!(r.sessions_expired, 1);
    let Some((home, a)) = r.sessions.iter().find(|(_, s)| s.state.client_id == "0a") else {
        panic!("0a recovered")
    };
    assert_eq!(*home, 0);
    let owed: Vec<(u64, Option<u16>, bool)> = a
        .messages
        .iter()
        .map(|(&n, m)| (n, m.packet_id.map(|p| p.get()), m.message.is_some()))
        .collect();
    assert_eq!(
        owed,
        [(1, Some(2), false), (2, Some(3), true), (3, None, true)],
        "in order; 1 awaits PUBCOMP, 2 was sent, 3 is queued"
    );
    assert_eq!(a.inbound_qos2.iter().copied().collect::<Vec<_>>(), [10]);

    // The expired session was dropped from the log too, and a restart with two shards
    // finds every session at its home, with the same state.
    let again = recovered(dir.path(), 2, 2_000);
    assert_eq!(again.sessions_expired, 0);
    assert_eq!(again.sessions.len(), 3);
    for (home, s) in &again.sessions {
        assert_eq!(
            *home,
            usize::from(s.state.client_id.as_bytes()[0] - b'0') % 2
        );
        let before = r
            .sessions
            .iter()
            .find(|(_, b)| b.state.client_id == s.state.client_id);
        assert_eq!(before.map(|(_, b)| b), Some(s), "{}", s.state.client_id);
    }
}
