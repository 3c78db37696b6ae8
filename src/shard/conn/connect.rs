//! Before a connection has a session: reading its CONNECT, the password check, and answering
//! the connections the shard refuses (over its limits, a CONNECT it cannot serve, a failed
//! login) with a CONNACK before closing.

use super::Shared;
use super::link::Link;
use super::read::FIRST_READ_BUF;
use crate::protocol::{self, ConnAck, Connect, DecodeError, Packet, ProtocolVersion, ReasonCode};
use crate::shard::reading::Room;
use crate::shard::state::{Login, Refusal};
use bytes::BytesMut;
use std::time::Duration;

/// How long a new connection may take to send its CONNECT.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused connection (over the connection or rate limit) may take to send its
/// CONNECT and take the CONNACK: short, since these arrive when the broker is already full.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest CONNECT a refused connection may send; a larger one is closed without a
/// CONNACK, which bounds the buffer each refusal holds.
const REFUSAL_MAX_PACKET: usize = 16 * 1024;

/// Why reading the CONNECT ended without one.
pub(super) enum ConnectFailure {
    /// Answer with a CONNACK carrying this reason, then close.
    Refuse(ReasonCode, ProtocolVersion),
    Close,
}

/// Answers a connection the shard will not serve (over its connection or rate limit): reads
/// its CONNECT, within `REFUSAL_TIMEOUT` and `REFUSAL_MAX_PACKET`, so that the CONNACK can
/// be in the client's protocol version, answers with `reason`, and closes
/// [MQTT-3.2.2-7]. `ShardState::on_accept` bounds how many of these run at once.
pub async fn serve_refused(state: Shared, mut link: Link, reason: ReasonCode) {
    let max_packet = state
        .borrow()
        .limits()
        .max_packet_size
        .min(REFUSAL_MAX_PACKET);
    let answer = async {
        let _ = link.stream.set_nodelay(true);
        match read_connect(&state, &mut link, max_packet).await {
            Ok((connect, _)) => {
                let refusal = Refusal::new(connect.version, reason.into());
                refuse(&state, link, refusal.connack(&connect)).await;
            }
            Err(ConnectFailure::Refuse(reason, version)) => {
                refuse(&state, link, bare_refusal(reason, version)).await;
            }
            Err(ConnectFailure::Close) => {}
        }
    };
    // Dropping a pending read or write on timeout is fine: the connection closes.
    let _ = monoio::time::timeout(REFUSAL_TIMEOUT, answer).await;
    state.borrow_mut().end_refusal();
}

/// A refusing CONNACK to a CONNECT that could not be decoded (so its limits are unknown):
/// Session Present 0 [MQTT-3.2.2-6], no properties.
pub(super) fn bare_refusal(reason: ReasonCode, version: ProtocolVersion) -> Option<BytesMut> {
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties: Default::default(),
    });
    let mut out = BytesMut::new();
    protocol::encode(&connack, version, &mut out).ok()?;
    Some(out)
}

/// Writes the refusal CONNACK, if there is one that fits the client, then closes (after
/// lingering, so that the client reads it).
pub(super) async fn refuse(state: &Shared, mut link: Link, connack: Option<BytesMut>) {
    if let Some(out) = connack {
        link.write(out).await;
    }
    link.close(state, BytesMut::new()).await;
}

/// Writes one packet straight to the link (before the connection has a writer task).
pub(super) async fn send(link: &mut Link, packet: &Packet, version: ProtocolVersion) -> bool {
    let mut out = BytesMut::new();
    if protocol::encode(packet, version, &mut out).is_err() {
        return false;
    }
    link.write(out).await
}

/// Reads until the first packet is complete. It must be CONNECT [MQTT-3.1.0-1]; an
/// unsupported protocol level is answered with CONNACK 0x01 [MQTT-3.1.2-2].
pub(super) async fn read_connect(
    state: &Shared,
    link: &mut Link,
    max_packet: usize,
) -> Result<(Box<Connect>, BytesMut), ConnectFailure> {
    let mut buf = BytesMut::with_capacity(FIRST_READ_BUF);
    let mut room = Room::new(state, None);
    loop {
        match protocol::decode(&mut buf, ProtocolVersion::V4, max_packet) {
            Ok(Some(Packet::Connect(connect))) => return Ok((connect, buf)),
            Ok(Some(_)) => return Err(ConnectFailure::Close),
            Ok(None) => {}
            Err(DecodeError::UnsupportedProtocolVersion(_)) => {
                let reason = ReasonCode::UnsupportedProtocolVersion;
                return Err(ConnectFailure::Refuse(reason, ProtocolVersion::V4));
            }
            Err(_) => return Err(ConnectFailure::Close),
        }
        room.fit(&mut buf).await;
        if !link.read(&mut buf, true).await {
            return Err(ConnectFailure::Close);
        }
    }
}

/// The password check of a CONNECT (`auth.password_file`) and, on a listener that takes no
/// anonymous clients, the refusal of one without a user name; at the accepting shard, before
/// anything of a session is touched. The hashing runs on the blocking pool, never on the
/// shard.
pub(super) async fn log_in(
    state: &Shared,
    connect: &Connect,
    allow_anonymous: bool,
) -> Result<(), ReasonCode> {
    let verification = match state.borrow_mut().login(connect, allow_anonymous) {
        Login::Accepted => return Ok(()),
        Login::Refused(code) => return Err(code),
        Login::Verify(verification) => verification,
    };
    let login = match monoio::spawn_blocking(move || verification.run()).await {
        Ok((verification, ok)) => state.borrow_mut().verified(&verification, ok),
        Err(_) => {
            state.borrow_mut().verification_abandoned();
            Login::Refused(ReasonCode::ServerUnavailable)
        }
    };
    match login {
        Login::Refused(code) => Err(code),
        _ => Ok(()),
    }
}
