//! The AUTH flow rules with a fake method: "ok" succeeds, "more" continues, anything else
//! fails.

use super::*;

#[derive(Debug)]
struct Echo;

#[derive(Debug)]
struct EchoExchange;

impl Exchange for EchoExchange {
    fn step(&mut self, data: &[u8]) -> Step {
        match data {
            b"ok" => Step::Success(Some(Bytes::from_static(b"done"))),
            b"more" => Step::Continue(Bytes::from_static(b"again")),
            _ => Step::Failure(ReasonCode::NotAuthorized),
        }
    }
}

impl Method for Echo {
    fn name(&self) -> &str {
        "ECHO"
    }

    fn start(&self) -> Box<dyn Exchange> {
        Box::new(EchoExchange)
    }
}

fn methods() -> Methods {
    let mut methods = Methods::default();
    methods.add(Box::new(Echo));
    methods
}

fn echo() -> MqttString {
    MqttString::from_static("ECHO")
}

fn auth(reason: ReasonCode, method: &str, data: &'static [u8]) -> Auth {
    let mut auth = Auth {
        reason,
        properties: Default::default(),
    };
    auth.properties.authentication_method = MqttString::try_from(method).ok();
    auth.properties.authentication_data = Some(Bytes::from_static(data));
    auth
}

fn started(data: &'static [u8]) -> (Authentication, Reply) {
    let data = Bytes::from_static(data);
    Authentication::start(&methods(), &echo(), Some(&data)).expect("known method")
}

#[test]
fn an_unknown_method_is_a_bad_authentication_method() {
    // [MQTT-4.12.0-1]
    let other = MqttString::from_static("KERBEROS");
    let refused = Authentication::start(&methods(), &other, None);
    assert_eq!(refused.err(), Some(ReasonCode::BadAuthenticationMethod));
}

#[test]
fn the_exchange_continues_until_the_method_succeeds() {
    let (mut a, reply) = started(b"more");
    assert_eq!(reply, Reply::Continue(Bytes::from_static(b"again")));
    assert!(a.in_progress());
    let reply = a.on_auth(
        &methods(),
        &auth(ReasonCode::ContinueAuthentication, "ECHO", b"ok"),
    );
    assert_eq!(reply, Reply::Success(Some(Bytes::from_static(b"done"))));
    assert!(!a.in_progress());
}

#[test]
fn another_method_in_auth_is_a_protocol_error() {
    // [MQTT-4.12.0-5]
    let (mut a, _) = started(b"more");
    let reply = a.on_auth(
        &methods(),
        &auth(ReasonCode::ContinueAuthentication, "SCRAM", b"ok"),
    );
    assert_eq!(reply, Reply::Fail(ReasonCode::ProtocolError));
}

#[test]
fn reason_codes_must_fit_the_state_of_the_exchange() {
    let m = methods();
    // 0x19 while an exchange is in progress, 0x18 when none is, 0x00 ever.
    let (mut a, _) = started(b"more");
    let reply = a.on_auth(&m, &auth(ReasonCode::ReAuthenticate, "ECHO", b"ok"));
    assert_eq!(reply, Reply::Fail(ReasonCode::ProtocolError));
    let (mut a, _) = started(b"ok");
    let reply = a.on_auth(&m, &auth(ReasonCode::ContinueAuthentication, "ECHO", b"ok"));
    assert_eq!(reply, Reply::Fail(ReasonCode::ProtocolError));
    let (mut a, _) = started(b"ok");
    let reply = a.on_auth(&m, &auth(ReasonCode::Success, "ECHO", b"ok"));
    assert_eq!(reply, Reply::Fail(ReasonCode::ProtocolError));
}

#[test]
fn re_authentication_starts_a_fresh_exchange() {
    // [MQTT-4.12.1-1]
    let m = methods();
    let (mut a, _) = started(b"ok");
    let reply = a.on_auth(&m, &auth(ReasonCode::ReAuthenticate, "ECHO", b"more"));
    assert_eq!(reply, Reply::Continue(Bytes::from_static(b"again")));
    let reply = a.on_auth(&m, &auth(ReasonCode::ContinueAuthentication, "ECHO", b"no"));
    assert_eq!(reply, Reply::Fail(ReasonCode::NotAuthorized));
}

#[test]
fn an_endless_exchange_is_cut_off() {
    let m = methods();
    let (mut a, _) = started(b"more");
    let mut last = Reply::Continue(Bytes::new());
    for _ in 0..MAX_ROUNDS {
        last = a.on_auth(
            &m,
            &auth(ReasonCode::ContinueAuthentication, "ECHO", b"more"),
        );
    }
    assert_eq!(last, Reply::Fail(ReasonCode::NotAuthorized));
}

#[test]
fn server_auth_packets_carry_the_method() {
    let (a, _) = started(b"more");
    let Packet::Auth(p) = a.auth_packet(ReasonCode::ContinueAuthentication, None) else {
        panic!("not AUTH");
    };
    assert_eq!(p.properties.authentication_method, Some(echo()));
}
