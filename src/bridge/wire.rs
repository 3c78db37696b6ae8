//! The client id of a bridge's local session, reserved for bridges. (Mosquitto's private
//! protocol level, which marks a bridge's CONNECT at the remote, is the codec's:
//! `Connect::bridge`, `protocol::BRIDGE_LEVEL_BIT`.)

/// Where every bridge's local session id starts. Network clients may not use it (admission
/// refuses them), so no client can take over a bridge's session.
pub const LOCAL_ID_PREFIX: &str = "$bridge/";

/// The client id of bridge `name`'s local session; its home shard is where the bridge runs.
pub fn local_client_id(name: &str) -> String {
    format!("{LOCAL_ID_PREFIX}{name}")
}
