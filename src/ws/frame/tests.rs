//! Client frames as byte fixtures (several from RFC 6455 section 5.7), the exact reply
//! bytes, and a round trip through random fragmentation and masking keys.

use super::*;
use proptest::prelude::*;

/// The masking key of the RFC 6455 5.7 examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame: `fin`, `opcode`, the minimal length encoding, `key`.
fn client_frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(opcode, payload, &mut out);
    let mut frame = out.to_vec();
    if !fin {
        frame[0] &= 0x7F;
    }
    frame[1] |= 0x80;
    let header = frame.len() - payload.len();
    let mut masked = payload.to_vec();
    unmask(&mut masked, key, 0);
    frame.truncate(header);
    frame.extend_from_slice(&key);
    frame.extend_from_slice(&masked);
    frame
}

struct Run {
    result: Result<WsEvent, WsError>,
    mqtt: Vec<u8>,
    reply: Vec<u8>,
    left: Vec<u8>,
}

fn feed(conn: &mut WsConn, bytes: &[u8]) -> Run {
    let mut input = BytesMut::from(bytes);
    let (mut mqtt, mut reply) = (BytesMut::new(), BytesMut::new());
    let result = conn.on_bytes(&mut input, &mut mqtt, &mut reply);
    Run {
        result,
        mqtt: mqtt.to_vec(),
        reply: reply.to_vec(),
        left: input.to_vec(),
    }
}

fn run(bytes: &[u8]) -> Run {
    feed(&mut WsConn::new(WsLimits::default()), bytes)
}

/// The server's Close frame for `code` with `reason`.
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut out = vec![0x88, (2 + reason.len()) as u8];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

fn fails_with(bytes: &[u8], error: WsError) {
    let r = run(bytes);
    assert_eq!(r.result, Err(error), "{bytes:02x?}");
    assert_eq!(r.reply, close_frame(error.code().0, &error.to_string()));
}

/// RFC 6455 5.7's single-frame masked "Hello", as a binary frame (0x82 for 0x81).
#[test]
fn a_masked_binary_frame_yields_its_payload_rfc_6455_5_7() {
    let r = run(&[
        0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    assert_eq!(r.result, Ok(WsEvent::Open));
    assert_eq!(r.mqtt, b"Hello");
    assert!(r.reply.is_empty() && r.left.is_empty());
}

/// RFC 6455 5.7's unmasked "Hello" is fine from a server, not from a client.
#[test]
fn an_unmasked_client_frame_is_closed_with_1002_rfc_6455_5_1() {
    fails_with(
        &[0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        WsError::Unmasked,
    );
    assert_eq!(WsError::Unmasked.code(), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn a_text_frame_is_closed_with_1003_mqtt_6_0_0_1() {
    fails_with(
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        WsError::TextFrame,
    );
    assert_eq!(WsError::TextFrame.code(), CloseCode(1003));
}

/// RFC 6455 5.7's fragmented "Hel" + "lo", masked, in binary.
#[test]
fn fragments_are_joined_in_order_rfc_6455_5_4() {
    let mut bytes = client_frame(false, OP_BINARY, b"Hel", KEY);
    bytes.extend(client_frame(true, OP_CONTINUATION, b"lo", [1, 2, 3, 4]));
    let r = run(&bytes);
    assert_eq!(
        (r.result, r.mqtt.as_slice()),
        (Ok(WsEvent::Open), &b"Hello"[..])
    );
}

/// RFC 6455 5.5.2/5.5.3 and 5.7's ping "Hello": the pong echoes the body, unmasked; a ping
/// may come between fragments (5.4).
#[test]
fn a_ping_gets_a_pong_even_inside_a_fragmented_message_rfc_6455_5_5_2() {
    let mut bytes = client_frame(false, OP_BINARY, b"ab", KEY);
    bytes.extend(client_frame(true, OP_PING, b"Hello", KEY));
    bytes.extend(client_frame(true, OP_CONTINUATION, b"cd", KEY));
    let r = run(&bytes);
    assert_eq!(r.result, Ok(WsEvent::Open));
    assert_eq!(r.mqtt, b"abcd");
    assert_eq!(r.reply, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn a_pong_is_ignored_rfc_6455_5_5_3() {
    let r = run(&[
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    assert_eq!(
        (r.result, r.reply.len(), r.mqtt.len()),
        (Ok(WsEvent::Open), 0, 0)
    );
}

#[test]
fn several_frames_in_one_read_and_one_frame_over_many_reads_give_the_same_stream() {
    let mut bytes = Vec::new();
    for part in [
        &b"\x10\x0c\x00\x04MQTT"[..],
        b"\x05\x02\x00\x3c",
        b"\x00\x00",
    ] {
        bytes.extend(client_frame(true, OP_BINARY, part, KEY));
    }
    let whole = run(&bytes);
    let mut conn = WsConn::new(WsLimits::default());
    let (mut input, mut mqtt, mut reply) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
    for &b in &bytes {
        input.extend_from_slice(&[b]);
        let event = conn.on_bytes(&mut input, &mut mqtt, &mut reply);
        assert_eq!(event, Ok(WsEvent::Open));
    }
    assert_eq!(whole.mqtt, b"\x10\x0c\x00\x04MQTT\x05\x02\x00\x3c\x00\x00");
    assert_eq!(mqtt.to_vec(), whole.mqtt);
    assert!(input.is_empty() && reply.is_empty());
}

#[test]
fn an_incomplete_header_stays_in_the_input() {
    let frame = client_frame(true, OP_BINARY, &[7; 300], KEY);
    for cut in 1..8 {
        let r = run(&frame[..cut]);
        assert_eq!(r.result, Ok(WsEvent::Open));
        assert_eq!(r.left, &frame[..cut], "cut {cut}");
        assert!(r.mqtt.is_empty());
    }
    // With the header complete, payload bytes stream out at once.
    let r = run(&frame[..8 + 10]);
    assert_eq!((r.mqtt, r.left.len()), (vec![7; 10], 0));
}

#[test]
fn continuation_and_data_frames_out_of_order_are_1002_rfc_6455_5_4() {
    fails_with(
        &client_frame(true, OP_CONTINUATION, b"x", KEY),
        WsError::UnexpectedContinuation,
    );
    let mut bytes = client_frame(false, OP_BINARY, b"x", KEY);
    bytes.extend(client_frame(true, OP_BINARY, b"y", KEY));
    let r = run(&bytes);
    assert_eq!(r.result, Err(WsError::ExpectedContinuation));
    assert_eq!(r.mqtt, b"x");
}

#[test]
fn control_frames_must_be_short_and_whole_rfc_6455_5_5() {
    fails_with(
        &client_frame(true, OP_PING, &[0; 126], KEY),
        WsError::ControlTooLong,
    );
    fails_with(
        &client_frame(false, OP_PING, b"x", KEY),
        WsError::FragmentedControl,
    );
    // 125 bytes is the largest allowed.
    let r = run(&client_frame(true, OP_PING, &[9; 125], KEY));
    assert_eq!(r.result, Ok(WsEvent::Open));
    assert_eq!(r.reply.len(), 2 + 125);
}

#[test]
fn reserved_bits_and_opcodes_are_1002_rfc_6455_5_2() {
    for rsv in [0x40, 0x20, 0x10] {
        let mut frame = client_frame(true, OP_BINARY, b"x", KEY);
        frame[0] |= rsv;
        fails_with(&frame, WsError::ReservedBits);
    }
    for op in [0x3, 0x7, 0xB, 0xF] {
        fails_with(
            &client_frame(true, op, b"x", KEY),
            WsError::ReservedOpcode(op),
        );
    }
}

#[test]
fn lengths_must_be_minimally_encoded_rfc_6455_5_2() {
    let mut short_in_16 = vec![0x82, 0xFE, 0x00, 0x05];
    short_in_16.extend(KEY);
    fails_with(&short_in_16, WsError::BadLength);
    let mut short_in_64 = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
    short_in_64.extend(KEY);
    fails_with(&short_in_64, WsError::BadLength);
    let mut top_bit = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    top_bit.extend(KEY);
    fails_with(&top_bit, WsError::BadLength);
}

#[test]
fn frames_and_messages_over_the_limits_are_1009_rfc_6455_7_4_1() {
    let limits = WsLimits {
        max_frame: 10,
        max_message: 15,
    };
    // Refused from the header alone, before any payload arrives.
    let frame = client_frame(true, OP_BINARY, &[0; 11], KEY);
    let r = feed(&mut WsConn::new(limits), &frame[..2 + 4]);
    assert_eq!(r.result, Err(WsError::TooBig));
    assert_eq!(r.reply, close_frame(1009, &WsError::TooBig.to_string()));
    let mut bytes = client_frame(false, OP_BINARY, &[0; 10], KEY);
    bytes.extend(client_frame(true, OP_CONTINUATION, &[0; 6], KEY));
    let r = feed(&mut WsConn::new(limits), &bytes);
    assert_eq!(r.result, Err(WsError::TooBig));
    let mut bytes = client_frame(false, OP_BINARY, &[0; 10], KEY);
    bytes.extend(client_frame(true, OP_CONTINUATION, &[0; 5], KEY));
    bytes.extend(client_frame(true, OP_BINARY, &[0; 10], KEY));
    let r = feed(&mut WsConn::new(limits), &bytes);
    assert_eq!((r.result, r.mqtt.len()), (Ok(WsEvent::Open), 25));
}

#[test]
fn a_close_is_echoed_with_its_code_and_ends_the_connection_rfc_6455_5_5_1() {
    let mut body = 1000u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"bye");
    let mut bytes = client_frame(true, OP_CLOSE, &body, KEY);
    bytes.extend(client_frame(true, OP_BINARY, b"late", KEY));
    let mut conn = WsConn::new(WsLimits::default());
    let r = feed(&mut conn, &bytes);
    assert_eq!(r.result, Ok(WsEvent::Closed));
    assert_eq!(r.reply, [0x88, 0x02, 0x03, 0xE8]);
    assert!(r.mqtt.is_empty());
    // Nothing more is read.
    let r = feed(&mut conn, &client_frame(true, OP_BINARY, b"x", KEY));
    assert_eq!((r.result, r.left.len()), (Ok(WsEvent::Closed), 7));
    // An empty close gets an empty close.
    let r = run(&client_frame(true, OP_CLOSE, b"", KEY));
    assert_eq!((r.result, r.reply), (Ok(WsEvent::Closed), vec![0x88, 0x00]));
}

#[test]
fn bad_close_bodies_are_refused_rfc_6455_7_4() {
    fails_with(
        &client_frame(true, OP_CLOSE, &[0x03], KEY),
        WsError::CloseBodyTooShort,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        let body = code.to_be_bytes();
        fails_with(
            &client_frame(true, OP_CLOSE, &body, KEY),
            WsError::BadCloseCode(code),
        );
    }
    for code in [1000u16, 1001, 1011, 1014, 3000, 4999] {
        let r = run(&client_frame(true, OP_CLOSE, &code.to_be_bytes(), KEY));
        assert_eq!(r.result, Ok(WsEvent::Closed), "{code}");
    }
    let mut body = 1000u16.to_be_bytes().to_vec();
    body.push(0xFF);
    fails_with(
        &client_frame(true, OP_CLOSE, &body, KEY),
        WsError::CloseReasonNotUtf8,
    );
    assert_eq!(WsError::CloseReasonNotUtf8.code(), CloseCode(1007));
}

#[test]
fn after_a_server_close_client_data_is_dropped_until_its_close() {
    let mut conn = WsConn::new(WsLimits::default());
    let mut reply = BytesMut::new();
    conn.close(CloseCode::GOING_AWAY, &mut reply);
    conn.close(CloseCode::NORMAL, &mut reply);
    assert_eq!(reply.to_vec(), [0x88, 0x02, 0x03, 0xE9]);
    let mut bytes = client_frame(true, OP_BINARY, b"ignored", KEY);
    bytes.extend(client_frame(true, OP_PING, b"p", KEY));
    bytes.extend(client_frame(true, OP_CLOSE, &1001u16.to_be_bytes(), KEY));
    let r = feed(&mut conn, &bytes);
    // The client's close answers ours: nothing is echoed, no pong after our close.
    assert_eq!(r.result, Ok(WsEvent::Closed));
    assert!(r.mqtt.is_empty() && r.reply.is_empty());
}

#[test]
fn after_an_error_nothing_more_is_read_or_sent() {
    let mut conn = WsConn::new(WsLimits::default());
    let r = feed(&mut conn, &[0x82, 0x01, 0x00]);
    assert_eq!(r.result, Err(WsError::Unmasked));
    let r = feed(&mut conn, &client_frame(true, OP_PING, b"", KEY));
    assert_eq!((r.result, r.reply.len()), (Ok(WsEvent::Closed), 0));
    let mut reply = BytesMut::new();
    conn.close(CloseCode::NORMAL, &mut reply);
    assert!(reply.is_empty());
}

/// RFC 6455 5.7: 256 bytes take a 16-bit length, 65536 bytes a 64-bit one; server frames
/// are not masked (5.1).
#[test]
fn server_frames_use_the_minimal_length_and_no_mask_rfc_6455_5_7() {
    let cases: [(usize, &[u8]); 4] = [
        (5, &[0x82, 0x05]),
        (125, &[0x82, 0x7D]),
        (256, &[0x82, 0x7E, 0x01, 0x00]),
        (65536, &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
    ];
    for (len, header) in cases {
        let payload = vec![0xAB; len];
        let mut out = BytesMut::new();
        encode_binary(&payload, &mut out);
        assert_eq!(&out[..header.len()], header, "{len}");
        assert_eq!(&out[header.len()..], &payload[..]);
    }
}

#[test]
fn close_reasons_are_cut_to_fit_at_a_character_boundary() {
    let mut out = BytesMut::new();
    encode_close(
        CloseCode::POLICY_VIOLATION,
        "é".repeat(100).as_bytes(),
        &mut out,
    );
    // 2 + 122 bytes: 61 two-byte characters, the 62nd would pass 125.
    assert_eq!(&out[..4], [0x88, 124, 0x03, 0xF0]);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

#[test]
fn unmask_matches_the_byte_at_a_time_definition_rfc_6455_5_3() {
    let data: Vec<u8> = (0..=255).collect();
    for offset in 0..4 {
        for len in [0, 1, 7, 8, 9, 31, 256] {
            let mut fast = data[..len].to_vec();
            unmask(&mut fast, KEY, offset);
            let slow: Vec<u8> = (0..len).map(|i| data[i] ^ KEY[(offset + i) % 4]).collect();
            assert_eq!(fast, slow, "offset {offset} len {len}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any byte stream, cut into messages and fragments at random, masked with random keys,
    /// interleaved with pings and fed in random read sizes, comes out whole and in order.
    #[test]
    fn random_framing_and_reads_round_trip(
        stream in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec((1usize..400, any::<bool>(), any::<[u8; 4]>(), any::<bool>()), 1..40),
        reads in prop::collection::vec(1usize..200, 1..60),
    ) {
        let mut wire = Vec::new();
        let (mut at, mut in_message, mut pings) = (0, false, 0);
        let mut cut = cuts.iter().cycle();
        while at < stream.len() || in_message {
            let Some(&(len, fin, key, ping)) = cut.next() else { break };
            let end = (at + len).min(stream.len());
            // The stream ends: close any open message.
            let fin = fin || end == stream.len();
            let opcode = if in_message { OP_CONTINUATION } else { OP_BINARY };
            wire.extend(client_frame(fin, opcode, &stream[at..end], key));
            if ping {
                wire.extend(client_frame(true, OP_PING, &key, key));
                pings += 1;
            }
            in_message = !fin;
            at = end;
        }
        let mut conn = WsConn::new(WsLimits::default());
        let (mut input, mut mqtt, mut reply) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
        let mut sizes = reads.iter().cycle();
        let mut fed = 0;
        while fed < wire.len() {
            let n = (*sizes.next().unwrap_or(&1)).min(wire.len() - fed);
            input.extend_from_slice(&wire[fed..fed + n]);
            fed += n;
            prop_assert_eq!(conn.on_bytes(&mut input, &mut mqtt, &mut reply), Ok(WsEvent::Open));
        }
        prop_assert!(input.is_empty());
        prop_assert_eq!(mqtt.to_vec(), stream);
        // Every pong is 2 + 4 bytes: the ping's 4-byte body echoed.
        prop_assert_eq!(reply.len(), pings * 6);
    }
}
