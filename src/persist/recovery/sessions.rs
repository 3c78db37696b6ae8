//! The sessions of a replay: each persistent session's last state, its outbound QoS 1/2
//! messages still owed (in the order the session took them) with the stage each reached,
//! and its inbound QoS 2 packet ids awaiting PUBREL; and the records that write them into a
//! log again (rehoming to another shard count).

use crate::persist::error::RecordError;
use crate::persist::frame::encode_record;
use crate::persist::record::{OutMessage, Record, SessionRecord, StoredMessage};
use crate::protocol::PacketId;
use hashbrown::HashMap;
use std::collections::{BTreeMap, BTreeSet};

/// A persistent session as recovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSession {
    pub state: SessionRecord,
    /// Outbound messages not yet retired, by their number in the session.
    pub messages: BTreeMap<u64, RecoveredOut>,
    /// Inbound QoS 2 packet ids awaiting PUBREL.
    pub inbound_qos2: BTreeSet<u16>,
}

/// An outbound message not yet retired: queued (`packet_id` none), or in flight with the
/// stage its exchange reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredOut {
    pub packet_id: Option<PacketId>,
    /// The message; `None` once its PUBREC came (QoS 2): PUBREL is owed, not the PUBLISH.
    pub message: Option<StoredMessage>,
}

/// The sessions of one replay, by client id, with the log each was found in.
#[derive(Debug, Default)]
pub(super) struct SessionReplay {
    pub live: HashMap<String, (usize, RecoveredSession)>,
}

impl SessionReplay {
    /// Applies one session record found in log `index`. A message record for a session
    /// with no state record is ignored: its session ended, or never was persistent.
    pub fn apply(&mut self, index: usize, record: Record) {
        match record {
            Record::SessionState(state) => match self.live.get_mut(&state.client_id) {
                Some((log, s)) => {
                    *log = index;
                    s.state = state;
                }
                None => {
                    let session = RecoveredSession {
                        state,
                        messages: BTreeMap::new(),
                        inbound_qos2: BTreeSet::new(),
                    };
                    let id = session.state.client_id.clone();
                    self.live.insert(id, (index, session));
                }
            },
            Record::SessionEnd(client_id) => {
                self.live.remove(&client_id);
            }
            Record::OutQueued(OutMessage {
                client_id,
                n,
                packet_id,
                message,
            }) => {
                if let Some((_, s)) = self.live.get_mut(&client_id) {
                    let out = RecoveredOut {
                        packet_id,
                        message: Some(message),
                    };
                    s.messages.insert(n, out);
                }
            }
            Record::OutSent {
                client_id,
                n,
                packet_id,
            } => {
                if let Some(m) = self.message(&client_id, n) {
                    m.packet_id = Some(packet_id);
                }
            }
            Record::OutReleased { client_id, n } => {
                if let Some(m) = self.message(&client_id, n) {
                    m.message = None;
                }
            }
            Record::OutPubRel {
                client_id,
                n,
                packet_id,
            } => {
                if let Some((_, s)) = self.live.get_mut(&client_id) {
                    let out = RecoveredOut {
                        packet_id: Some(packet_id),
                        message: None,
                    };
                    s.messages.insert(n, out);
                }
            }
            Record::OutDone { client_id, n } => {
                if let Some((_, s)) = self.live.get_mut(&client_id) {
                    s.messages.remove(&n);
                }
            }
            Record::InQos2 {
                client_id,
                packet_id,
            } => {
                if let Some((_, s)) = self.live.get_mut(&client_id) {
                    s.inbound_qos2.insert(packet_id.get());
                }
            }
            Record::InQos2Done {
                client_id,
                packet_id,
            } => {
                if let Some((_, s)) = self.live.get_mut(&client_id) {
                    s.inbound_qos2.remove(&packet_id.get());
                }
            }
            Record::RetainedSet(_) | Record::RetainedClear(_) => {}
        }
    }

    fn message(&mut self, client_id: &str, n: u64) -> Option<&mut RecoveredOut> {
        self.live.get_mut(client_id)?.1.messages.get_mut(&n)
    }
}

/// Appends the records that recreate `session` to `out`: its state, each message owed (with
/// the stage it reached), each inbound QoS 2 id. What compaction and rehoming write.
pub fn encode_session(session: &RecoveredSession, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let client_id = &session.state.client_id;
    encode_record(&Record::SessionState(session.state.clone()), out)?;
    for (&n, m) in &session.messages {
        let client_id = client_id.clone();
        let record = match (&m.message, m.packet_id) {
            (Some(message), packet_id) => Record::OutQueued(OutMessage {
                client_id,
                n,
                packet_id,
                message: message.clone(),
            }),
            (None, Some(packet_id)) => Record::OutPubRel {
                client_id,
                n,
                packet_id,
            },
            // Released without an id never happens; nothing to resend.
            (None, None) => continue,
        };
        encode_record(&record, out)?;
    }
    for &id in &session.inbound_qos2 {
        if let Some(packet_id) = PacketId::new(id) {
            let client_id = client_id.clone();
            encode_record(
                &Record::InQos2 {
                    client_id,
                    packet_id,
                },
                out,
            )?;
        }
    }
    Ok(())
}
