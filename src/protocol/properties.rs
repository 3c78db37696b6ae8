//! MQTT 5.0 properties (section 2.2.2): one typed struct, and which packet may carry which.

use super::string::MqttString;
use super::topic::TopicName;
use bytes::Bytes;

/// Every MQTT 5.0 property. A packet carries the subset the spec allows it; decode refuses a
/// property that appears in the wrong packet or twice (except User Property and, in PUBLISH,
/// Subscription Identifier). Empty `Vec`s do not allocate, so a PUBLISH without properties costs
/// no heap allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01
    pub payload_format_indicator: Option<u8>,
    /// 0x02, seconds
    pub message_expiry_interval: Option<u32>,
    /// 0x03
    pub content_type: Option<MqttString>,
    /// 0x08
    pub response_topic: Option<TopicName>,
    /// 0x09
    pub correlation_data: Option<Bytes>,
    /// 0x0B, variable byte integers 1..=268,435,455; several only in PUBLISH.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, seconds
    pub session_expiry_interval: Option<u32>,
    /// 0x12
    pub assigned_client_identifier: Option<MqttString>,
    /// 0x13, seconds
    pub server_keep_alive: Option<u16>,
    /// 0x15
    pub authentication_method: Option<MqttString>,
    /// 0x16
    pub authentication_data: Option<Bytes>,
    /// 0x17
    pub request_problem_information: Option<u8>,
    /// 0x18, seconds
    pub will_delay_interval: Option<u32>,
    /// 0x19
    pub request_response_information: Option<u8>,
    /// 0x1A
    pub response_information: Option<MqttString>,
    /// 0x1C
    pub server_reference: Option<MqttString>,
    /// 0x1F
    pub reason_string: Option<MqttString>,
    /// 0x21, never 0
    pub receive_maximum: Option<u16>,
    /// 0x22
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, never 0
    pub topic_alias: Option<u16>,
    /// 0x24, 0 or 1
    pub maximum_qos: Option<u8>,
    /// 0x25, 0 or 1
    pub retain_available: Option<u8>,
    /// 0x26, in order
    pub user_properties: Vec<(MqttString, MqttString)>,
    /// 0x27, never 0
    pub maximum_packet_size: Option<u32>,
    /// 0x28, 0 or 1
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, 0 or 1
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A, 0 or 1
    pub shared_subscription_available: Option<u8>,
}
