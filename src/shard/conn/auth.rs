//! The MQTT 5.0 enhanced-authentication exchange (AUTH, section 4.12) of a CONNECT that
//! named a method: run on the socket at the home shard, before any session is touched.

use super::Shared;
use super::connect::send;
use super::link::Link;
use crate::auth::{Authentication, Reply};
use crate::protocol::{self, Connect, MqttString, Packet, ProtocolVersion, ReasonCode};
use crate::shard::state::{Authenticated, Refusal};
use bytes::{Bytes, BytesMut};

/// Why an enhanced-authentication exchange ended without success.
enum AuthFailure {
    /// Answer with CONNACK carrying this reason (never DISCONNECT before a successful
    /// CONNACK [MQTT-3.14.0-1]), then close.
    Refuse(ReasonCode),
    /// The client left or the socket failed: just close.
    Close,
}

/// Runs the AUTH exchange of a CONNECT that named `method` (4.12), bounded by the
/// configured exchange timeout and `auth::MAX_ROUNDS`. On success returns the
/// authentication and the bytes read after the last AUTH; on failure the refusing CONNACK
/// has been sent and the caller closes.
pub(super) async fn authenticate(
    state: &Shared,
    link: &mut Link,
    connect: &Connect,
    method: &MqttString,
    buf: BytesMut,
) -> Option<(Authenticated, BytesMut)> {
    let timeout = state.borrow().limits().auth_timeout;
    let data = connect.properties.authentication_data.as_ref();
    let started = Authentication::start(state.borrow().methods(), method, data);
    let result = match started {
        Ok((mut auth, reply)) => {
            let exchange = exchange(state, link, &mut auth, reply, buf);
            match monoio::time::timeout(timeout, exchange).await {
                Ok(Ok((data, rest))) => Ok((Authenticated { auth, data }, rest)),
                Ok(Err(failure)) => Err(failure),
                // An idle half-authenticated client is closed like a CONNECT that never came.
                Err(_) => Err(AuthFailure::Close),
            }
        }
        Err(reason) => Err(AuthFailure::Refuse(reason)),
    };
    match result {
        Ok(done) => Some(done),
        Err(failure) => {
            if let AuthFailure::Refuse(reason) = &failure {
                let peer = link.stream.peer_addr().ok();
                state.borrow_mut().auth_failed(connect, *reason, peer);
            }
            if let AuthFailure::Refuse(reason) = failure
                && let Some(out) = Refusal::new(connect.version, reason.into()).connack(connect)
            {
                link.write(out).await;
            }
            None
        }
    }
}

/// Sends `reply` and reads the client's next AUTH until the method decides.
async fn exchange(
    state: &Shared,
    link: &mut Link,
    auth: &mut Authentication,
    mut reply: Reply,
    mut buf: BytesMut,
) -> Result<(Option<Bytes>, BytesMut), AuthFailure> {
    let version = ProtocolVersion::V5;
    let max_packet = state.borrow().limits().max_packet_size;
    loop {
        match reply {
            Reply::Success(data) => return Ok((data, buf)),
            Reply::Fail(reason) => return Err(AuthFailure::Refuse(reason)),
            Reply::Continue(data) => {
                // [MQTT-4.12.0-2] the server asks for more with AUTH 0x18.
                let packet = auth.auth_packet(ReasonCode::ContinueAuthentication, Some(data));
                if !send(link, &packet, version).await {
                    return Err(AuthFailure::Close);
                }
            }
        }
        reply = match read_packet(link, &mut buf, version, max_packet).await? {
            Packet::Auth(packet) => auth.on_auth(state.borrow().methods(), &packet),
            Packet::Disconnect(_) => return Err(AuthFailure::Close),
            // [MQTT-3.1.2-30] only AUTH or DISCONNECT until CONNACK.
            _ => Reply::Fail(ReasonCode::ProtocolError),
        };
    }
}

/// Reads until one packet is complete.
async fn read_packet(
    link: &mut Link,
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet: usize,
) -> Result<Packet, AuthFailure> {
    loop {
        match protocol::decode(buf, version, max_packet) {
            Ok(Some(packet)) => return Ok(packet),
            Ok(None) => {}
            Err(error) => return Err(AuthFailure::Refuse(error.reason_code())),
        }
        if !link.read(buf, false).await {
            return Err(AuthFailure::Close);
        }
    }
}
