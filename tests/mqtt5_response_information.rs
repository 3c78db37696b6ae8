//! MQTT 5.0 Request Response Information against the real `ringmq` binary: the CONNACK carries
//! the configured Response Information only to a client that asked for it.
//!
//! 5.0 section 3.1.2.11.7: "The Client uses this value to request the Server to return Response
//! Information in the CONNACK. A value of 0 indicates that the Server MUST NOT return Response
//! Information [MQTT-3.1.2-28]. If the value is 1 the Server MAY return Response Information in
//! the CONNACK packet." Section 3.2.2.3.15: the Response Information is "used as the basis for
//! creating a Response Topic".

pub mod support;

use ringmq::protocol::ProtocolVersion;
use support::*;

const CONFIG: &str = "[mqtt]\nresponse_information = \"replies/\"\n";

fn connack_response_information(broker: &Broker, request: Option<u8>) -> Option<String> {
    let mut builder = ConnectBuilder::new(ProtocolVersion::V5, "asker");
    builder.0.properties.request_response_information = request;
    let (_client, connack) = RawClient::connect_with(broker.addr, builder);
    connack
        .properties
        .response_information
        .as_ref()
        .map(|r| r.as_str().to_owned())
}

#[test]
fn a_client_that_requests_response_information_gets_the_configured_basis() {
    // 3.1.2.11.7: with Request Response Information 1 the server MAY return it.
    let broker = Broker::start_with_config(CONFIG);
    assert_eq!(
        connack_response_information(&broker, Some(1)).as_deref(),
        Some("replies/")
    );
}

#[test]
fn a_client_that_does_not_request_it_gets_no_response_information_mqtt_3_1_2_28() {
    // [MQTT-3.1.2-28] 0 (or the property absent, which means 0) forbids it.
    let broker = Broker::start_with_config(CONFIG);
    assert_eq!(connack_response_information(&broker, Some(0)), None);
    assert_eq!(connack_response_information(&broker, None), None);
}

#[test]
fn without_a_configured_basis_no_response_information_is_sent() {
    // The default config has none: asking is allowed, the server MAY decline.
    let broker = Broker::start();
    assert_eq!(connack_response_information(&broker, Some(1)), None);
}
