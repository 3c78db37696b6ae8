//! Upgrade requests as byte fixtures, and the exact response bytes.

use super::*;

/// The sample handshake of RFC 6455 section 1.2, with the MQTT subprotocol offered.
const REQUEST: &str = "GET /mqtt HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: mqtt\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn run(request: &str) -> (Result<Option<Accepted>, HandshakeError>, BytesMut, String) {
    let mut input = BytesMut::from(request.as_bytes());
    let mut reply = BytesMut::new();
    let result = accept(&mut input, &mut reply);
    let reply = String::from_utf8(reply.to_vec()).expect("responses are text");
    (result, input, reply)
}

fn refused(request: &str) -> (HandshakeError, String) {
    match run(request) {
        (Err(e), _, reply) => (e, reply),
        (other, _, _) => panic!("expected a refusal, got {other:?} for {request:?}"),
    }
}

/// `REQUEST` with one header line replaced (or removed, when `with` is empty).
fn with_header(name: &str, with: &str) -> String {
    REQUEST
        .split_inclusive("\r\n")
        .map(|line| match line.split_once(':') {
            Some((n, _)) if n.eq_ignore_ascii_case(name) => with.to_owned(),
            _ => line.to_owned(),
        })
        .collect()
}

#[test]
fn rfc_6455_1_3_sample_key_gives_the_sample_accept() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn a_valid_request_gets_the_exact_101_response_rfc_6455_4_2_2() {
    let (result, rest, reply) = run(REQUEST);
    assert_eq!(
        result,
        Ok(Some(Accepted {
            subprotocol: Subprotocol::Mqtt
        }))
    );
    assert!(rest.is_empty());
    assert_eq!(
        reply,
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    );
}

#[test]
fn an_incomplete_request_waits_without_consuming() {
    for cut in [0, 1, 20, REQUEST.len() - 1] {
        let (result, rest, reply) = run(&REQUEST[..cut]);
        assert_eq!(result, Ok(None), "cut at {cut}");
        assert_eq!(rest.len(), cut);
        assert!(reply.is_empty());
    }
}

#[test]
fn bytes_after_the_request_stay_for_the_frame_decoder() {
    let (result, rest, _) = run(&format!("{REQUEST}\u{82}\u{0}"));
    assert!(matches!(result, Ok(Some(_))));
    assert_eq!(&rest[..], "\u{82}\u{0}".as_bytes());
}

#[test]
fn header_names_and_upgrade_tokens_are_case_insensitive_rfc_6455_4_2_1() {
    let request = REQUEST
        .replace("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "CONNECTION: keep-alive, upgrade")
        .replace("Sec-WebSocket-Key", "sec-websocket-key")
        .replace("Sec-WebSocket-Version", "SEC-WEBSOCKET-VERSION");
    assert!(matches!(run(&request).0, Ok(Some(_))));
}

#[test]
fn any_path_is_accepted() {
    for path in ["/", "/ws", "/a/b?c=d", "*"] {
        let request = REQUEST.replace("GET /mqtt ", &format!("GET {path} "));
        assert!(matches!(run(&request).0, Ok(Some(_))), "{path}");
    }
}

#[test]
fn mqtt_is_preferred_and_mqttv3_1_is_accepted_mqtt_6_0_0_4() {
    let offer = |list: &str| {
        with_header(
            "sec-websocket-protocol",
            &format!("Sec-WebSocket-Protocol: {list}\r\n"),
        )
    };
    let (_, _, reply) = run(&offer("mqttv3.1, mqtt"));
    assert!(
        reply.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
        "{reply}"
    );
    let (result, _, reply) = run(&offer("mqttv3.1"));
    assert_eq!(
        result,
        Ok(Some(Accepted {
            subprotocol: Subprotocol::MqttV31
        }))
    );
    assert!(reply.contains("Sec-WebSocket-Protocol: mqttv3.1\r\n"));
    // Listed over two header lines.
    let two = offer("chat").replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n");
    assert!(matches!(run(&two).0, Ok(Some(_))));
}

#[test]
fn a_request_without_the_mqtt_subprotocol_is_refused_mqtt_6_0_0_3() {
    for list in [
        "",
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
        "Sec-WebSocket-Protocol: MQTT\r\n",
    ] {
        let (e, reply) = refused(&with_header("sec-websocket-protocol", list));
        assert_eq!(e, HandshakeError::NoMqttSubprotocol, "{list:?}");
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
}

#[test]
fn the_400_response_is_exact_and_names_the_reason() {
    let (e, reply) = refused(&with_header("upgrade", ""));
    assert_eq!(e, HandshakeError::NotWebSocket);
    let body = "[RFC 6455 4.2.1] Upgrade does not include websocket\n";
    assert_eq!(
        reply,
        format!(
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    );
}

#[test]
fn a_version_other_than_13_gets_426_with_the_supported_version_rfc_6455_4_2_2() {
    let (e, reply) = refused(&with_header(
        "sec-websocket-version",
        "Sec-WebSocket-Version: 8\r\n",
    ));
    assert_eq!(e, HandshakeError::Version);
    assert!(reply.starts_with("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
    let (e, _) = refused(&with_header("sec-websocket-version", ""));
    assert_eq!(e, HandshakeError::Version);
}

#[test]
fn each_required_header_is_checked_rfc_6455_4_2_1() {
    let cases = [
        (with_header("host", ""), HandshakeError::Host),
        (
            REQUEST.replace("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n"),
            HandshakeError::Host,
        ),
        (
            with_header("upgrade", "Upgrade: h2c\r\n"),
            HandshakeError::NotWebSocket,
        ),
        (
            with_header("connection", ""),
            HandshakeError::NoConnectionUpgrade,
        ),
        (
            with_header("connection", "Connection: keep-alive\r\n"),
            HandshakeError::NoConnectionUpgrade,
        ),
        (with_header("sec-websocket-key", ""), HandshakeError::Key),
        // 15 bytes, and not base64 at all.
        (
            with_header(
                "sec-websocket-key",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n",
            ),
            HandshakeError::Key,
        ),
        (
            with_header("sec-websocket-key", "Sec-WebSocket-Key: ???\r\n"),
            HandshakeError::Key,
        ),
        (
            REQUEST.replace(
                "Origin",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin",
            ),
            HandshakeError::Key,
        ),
    ];
    for (request, want) in cases {
        assert_eq!(refused(&request).0, want, "{request:?}");
    }
}

#[test]
fn the_request_line_must_be_get_http_1_1() {
    let cases = [
        ("POST /mqtt HTTP/1.1", HandshakeError::NotGet),
        ("get /mqtt HTTP/1.1", HandshakeError::NotGet),
        ("GET /mqtt HTTP/1.0", HandshakeError::NotHttp11),
        ("GET /mqtt", HandshakeError::BadRequestLine),
        ("GET  /mqtt HTTP/1.1", HandshakeError::BadRequestLine),
        ("GET /mqtt HTTP/1.1 x", HandshakeError::BadRequestLine),
    ];
    for (line, want) in cases {
        let request = REQUEST.replace("GET /mqtt HTTP/1.1", line);
        assert_eq!(refused(&request).0, want, "{line}");
    }
}

#[test]
fn malformed_header_lines_are_refused_rfc_7230_3_2() {
    for bad in [
        "NoColon\r\n",
        ": no name\r\n",
        "Bad Name: x\r\n",
        "Name : x\r\n",
        " folded: x\r\n",
        "Bare: lf\n",
        "Ctl: a\u{1}b\r\n",
    ] {
        let request = REQUEST.replace("Origin", &format!("{bad}Origin"));
        assert_eq!(refused(&request).0, HandshakeError::BadHeader, "{bad:?}");
    }
}

#[test]
fn a_request_over_8_kib_is_refused_without_waiting_for_more() {
    let filler = format!("X-Filler: {}\r\n", "a".repeat(MAX_REQUEST));
    let request = REQUEST.replace("Origin", &format!("{filler}Origin"));
    let (e, reply) = refused(&request);
    assert_eq!(e, HandshakeError::TooLarge);
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    // Incomplete and already at the limit: refused rather than waiting forever.
    let (e, _) = refused(&"G".repeat(MAX_REQUEST));
    assert_eq!(e, HandshakeError::TooLarge);
    // Just under the limit and complete: fine.
    let pad = MAX_REQUEST - REQUEST.len() - "X: \r\n".len();
    let request = REQUEST.replace("Origin", &format!("X: {}\r\nOrigin", "a".repeat(pad)));
    assert_eq!(request.len(), MAX_REQUEST);
    assert!(matches!(run(&request).0, Ok(Some(_))));
}
