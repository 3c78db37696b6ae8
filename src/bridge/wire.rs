//! The client id of a bridge's local session, reserved for bridges, and the topic of a
//! bridge's state. (Mosquitto's private
//! protocol level, which marks a bridge's CONNECT at the remote, is the codec's:
//! `Connect::bridge`, `protocol::BRIDGE_LEVEL_BIT`.)

/// Where every bridge's local session id starts. Network clients may not use it (admission
/// refuses them), so no client can take over a bridge's session.
pub const LOCAL_ID_PREFIX: &str = "$bridge/";

/// The client id of bridge `name`'s local session; its home shard is where the bridge runs.
pub fn local_client_id(name: &str) -> String {
    format!("{LOCAL_ID_PREFIX}{name}")
}

/// The topic where bridge `name`'s state is kept (retained, "1" up, "0" down), on this broker
/// and at the remote, as Mosquitto names it; `None` if the name makes no valid topic.
pub fn state_topic(name: &str) -> Option<crate::protocol::TopicName> {
    crate::protocol::TopicName::try_from(format!("$SYS/broker/connection/{name}/state").as_str())
        .ok()
}
