//! Tests of messages to the client: the in-flight window and the queue behind it, QoS 2
//! outbound flow, packet ids, resends on reconnect, expiry and discards.

use super::*;
use crate::session::outbound::PACKET_ID_SPACE;

#[test]
fn delivery_window_bounds_inflight_and_queues_the_rest_in_order() {
    let limits = Limits {
        max_inflight: 2,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, true, limits);
    let first = sent_id(s.deliver(&message("t/1", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    sent_id(s.deliver(&message("t/2", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t/3", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    assert_eq!(s.inflight_len(), 2);
    let mut out = Vec::new();
    s.on_packet(Packet::PubAck(PubResp::new(first)), &mut out);
    match out.as_slice() {
        [Action::Deliver(o)] => {
            assert_eq!(o.msg.topic.as_str(), "t/3");
            assert!(!o.dup);
            assert!(o.packet_id.is_some());
        }
        other => panic!("expected the queued message released, got {other:?}"),
    }
    assert_eq!(s.queued_len(), 0);
}

#[test]
fn client_receive_maximum_caps_the_window() {
    let mut c = connect(ProtocolVersion::V5, true);
    c.properties.receive_maximum = Some(1);
    let mut s = Session::new("c1".into(), &c, Limits::default());
    sent_id(s.deliver(&message("t", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t", QoS::ExactlyOnce), QoS::ExactlyOnce, false),
        Delivery::Queued
    );
}

#[test]
fn qos2_outbound_flow_sends_pubrel_and_frees_slot_on_pubcomp() {
    let limits = Limits {
        max_inflight: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, true, limits);
    let pid = sent_id(s.deliver(&message("t", QoS::ExactlyOnce), QoS::ExactlyOnce, false));
    let mut out = Vec::new();
    s.on_packet(Packet::PubRec(PubResp::new(pid)), &mut out);
    assert_eq!(out, vec![Action::Send(Packet::PubRel(PubResp::new(pid)))]);
    assert_eq!(s.inflight_len(), 1, "the PUBREL still holds the slot");
    out.clear();
    s.on_packet(Packet::PubComp(PubResp::new(pid)), &mut out);
    assert_eq!(s.inflight_len(), 0);
}

#[test]
fn qos0_is_dropped_and_counted_when_offline_or_not_writable() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    let mut out = Vec::new();
    s.set_writable(false, &mut out);
    assert_eq!(
        s.deliver(&message("t", QoS::AtMostOnce), QoS::AtMostOnce, false),
        Delivery::Dropped
    );
    s.detach(false);
    assert_eq!(
        s.deliver(&message("t", QoS::AtMostOnce), QoS::AtMostOnce, false),
        Delivery::Dropped
    );
    assert_eq!(s.stats().dropped_qos0, 2);
}

#[test]
fn offline_queue_is_bounded_by_count_and_bytes() {
    let limits = Limits {
        max_queued_messages: 2,
        max_queued_bytes: 1000,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    s.detach(false);
    let m = message("t", QoS::AtLeastOnce);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Dropped);
    assert_eq!(s.stats().dropped_queue_full, 1);

    // The byte bound counts what a queued message costs: its bytes plus the queue entry.
    let limits = Limits {
        max_queued_bytes: m.queued_size() + m.queued_size() / 2,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    s.detach(false);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Dropped);
}

#[test]
fn reconnect_resends_unacked_publish_with_dup_and_pubrel_in_order_mqtt_4_4_0_1() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    let a = sent_id(s.deliver(&message("t/a", QoS::ExactlyOnce), QoS::ExactlyOnce, false));
    let b = sent_id(s.deliver(&message("t/b", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    let mut out = Vec::new();
    s.on_packet(Packet::PubRec(PubResp::new(a)), &mut out);
    s.detach(true);
    assert_eq!(
        s.deliver(&message("t/c", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    out.clear();
    s.resume(&connect(ProtocolVersion::V4, false), &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Action::Send(Packet::PubRel(PubResp::new(a))));
    match &out[1] {
        Action::Deliver(o) => {
            assert_eq!(o.packet_id, Some(b), "original packet id");
            assert!(o.dup, "DUP=1 on resend [MQTT-3.3.1-1]");
            assert_eq!(o.msg.topic.as_str(), "t/b");
        }
        other => panic!("expected resend of t/b, got {other:?}"),
    }
    match &out[2] {
        Action::Deliver(o) => {
            assert_eq!(o.msg.topic.as_str(), "t/c");
            assert!(!o.dup);
        }
        other => panic!("expected queued t/c, got {other:?}"),
    }
}

#[test]
fn delivered_qos_and_retain_follow_the_subscriber() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    s.detach(false);
    let mut m = message("t", QoS::ExactlyOnce);
    m.retain = true;
    s.deliver(&m, QoS::AtLeastOnce, false);
    let mut out = Vec::new();
    s.resume(&connect(ProtocolVersion::V4, false), &mut out);
    match out.as_slice() {
        [Action::Deliver(o)] => {
            assert_eq!(o.msg.qos, QoS::AtLeastOnce);
            assert!(!o.msg.retain);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn packet_ids_wrap_and_skip_ids_still_in_flight() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let m = message("t", QoS::AtLeastOnce);
    let stuck = sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
    let mut out = Vec::new();
    for _ in 0..PACKET_ID_SPACE + 5 {
        let pid = sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
        assert_ne!(pid, stuck, "an id in flight is never reused [MQTT-2.2.1-3]");
        s.on_packet(Packet::PubAck(PubResp::new(pid)), &mut out);
    }
    assert_eq!(s.inflight_len(), 1);
}

#[test]
fn message_expiry_counts_down_and_rounds_up_mqtt_3_3_2_6() {
    let mut m = message("t", QoS::AtLeastOnce);
    let start = crate::timer::test_clock();
    m.stamp_expiry(start);
    assert_eq!(
        m.expires_at, None,
        "no Message Expiry Interval, no deadline"
    );
    assert_eq!(m.with_remaining_expiry(start), None);

    let properties = Properties::from(PropertyValues {
        message_expiry_interval: Some(10),
        ..PropertyValues::default()
    });
    m.properties = Some(std::sync::Arc::new(properties));
    m.stamp_expiry(start);
    let later = start + std::time::Duration::from_millis(3500);
    let sent = m.with_remaining_expiry(later).expect("has an expiry");
    let interval = sent
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    assert_eq!(interval, Some(7), "10 s minus 3.5 s waited, rounded up");
    assert!(!m.is_expired(later));
    assert!(m.is_expired(start + std::time::Duration::from_secs(10)));
}

#[test]
fn discarding_an_expired_release_frees_its_slot_for_the_next() {
    let limits = Limits {
        max_inflight: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    let first = sent_id(s.deliver(&message("t/1", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t/2", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    let mut out = Vec::new();
    s.on_packet(Packet::PubAck(PubResp::new(first)), &mut out);
    let Some(Action::Deliver(released)) = out.pop() else {
        panic!("t/2 is released")
    };
    out.clear();
    s.discard(released.packet_id, Discard::Expired, &mut out);
    assert_eq!(s.inflight_len(), 0);
    assert_eq!(s.stats().expired, 1);
}

#[test]
fn a_connected_session_queue_is_bounded_by_bytes_only() {
    let m = message("t", QoS::AtLeastOnce);
    let limits = Limits {
        max_inflight: 1,
        max_queued_messages: 2,
        max_queued_bytes: 8 * m.queued_size() + 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
    for _ in 0..8 {
        assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    }
    assert_eq!(
        s.deliver(&m, QoS::AtLeastOnce, false),
        Delivery::Dropped,
        "the byte bound, queue entries included"
    );
}

#[test]
fn while_publishers_are_held_back_the_queue_takes_twice_its_byte_bound_for_what_is_in_flight() {
    // Messages acknowledged on another shard before it heard of the congestion are still in
    // the mesh; they must not be dropped (section 4.3.2: an acknowledged QoS 1 message is
    // delivered at least once), and the queue stays bounded.
    let m = message("t", QoS::AtLeastOnce);
    let limits = Limits {
        max_inflight: 1,
        max_queued_bytes: 4 * m.queued_size(),
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
    s.set_congested(true);
    for _ in 0..8 {
        assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    }
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Dropped);
    s.set_congested(false);
    assert_eq!(
        s.deliver(&m, QoS::AtLeastOnce, false),
        Delivery::Dropped,
        "over the plain bound once the hold ends"
    );
}

#[test]
fn a_message_the_acl_does_not_let_the_client_read_is_not_delivered_and_is_counted() {
    // The read check of `auth.acl_file` happens on every delivery, in `deliver_via`.
    let acl = crate::auth::acl::AclFile::parse(b"topic read open/#\n").expect("valid ACL");
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    s.set_acl(Some(acl.compile("c1", None)));
    let closed = message("closed/t", QoS::AtLeastOnce);
    assert_eq!(
        s.deliver(&closed, QoS::AtLeastOnce, false),
        Delivery::NotAuthorized
    );
    assert_eq!(s.inflight_len() + s.queued_len(), 0, "no window slot taken");
    sent_id(s.deliver(
        &message("open/t", QoS::AtLeastOnce),
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(s.stats().not_authorized, 1);
}

#[test]
fn a_reloaded_acl_drops_queued_messages_the_client_may_no_longer_read() {
    // `reauthorize` (SIGHUP): the new rules decide the next delivery, and what waits in the
    // queue (never sent) on topics now denied goes too; what is in flight stays.
    let old = crate::auth::acl::AclFile::parse(b"topic read a/#\n").expect("valid ACL");
    let new = crate::auth::acl::AclFile::parse(b"topic read a/open\n").expect("valid ACL");
    let limits = Limits {
        max_inflight: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V5, true, limits);
    s.set_acl(Some(old.compile("c1", None)));
    let (open, closed) = (
        message("a/open", QoS::AtLeastOnce),
        message("a/closed", QoS::AtLeastOnce),
    );
    sent_id(s.deliver(&closed, QoS::AtLeastOnce, false));
    for m in [&closed, &open, &closed] {
        assert_eq!(s.deliver(m, QoS::AtLeastOnce, false), Delivery::Queued);
    }
    assert_eq!(s.reauthorize(Some(&new)), 2, "the two queued on a/closed");
    assert_eq!((s.inflight_len(), s.queued_len()), (1, 1));
    assert_eq!(s.queued_bytes(), open.queued_size());
    assert_eq!(
        s.deliver(&closed, QoS::AtLeastOnce, false),
        Delivery::NotAuthorized
    );
    assert_eq!(s.stats().not_authorized, 3);
    assert_eq!(s.reauthorize(None), 0, "no acl_file: everything");
    assert_eq!(
        s.deliver(&closed, QoS::AtLeastOnce, false),
        Delivery::Queued
    );
}
