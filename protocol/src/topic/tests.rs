//! Topic names and filters: validation rule by rule, inline storage, shared subscriptions and
//! matching.

use super::*;

fn name(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic name in test")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid topic filter in test")
}

#[test]
fn topic_name_refuses_empty_mqtt_4_7_3_1() {
    assert_eq!(TopicName::try_from(""), Err(TopicError::Empty));
}

#[test]
fn topic_name_refuses_wildcards_mqtt_3_3_2_2() {
    for bad in ["a/+", "#", "a/b#", "+"] {
        assert_eq!(
            TopicName::try_from(bad),
            Err(TopicError::WildcardInName),
            "{bad}"
        );
    }
}

#[test]
fn topic_name_refuses_null_character_mqtt_1_5_4_2() {
    assert_eq!(
        TopicName::try_from("a\0"),
        Err(TopicError::String(StringError::NullCharacter))
    );
}

#[test]
fn topic_name_accepts_empty_levels_and_dollar() {
    for ok in ["/", "a//b", "$SYS/x", " "] {
        assert_eq!(name(ok).as_str(), ok);
    }
    assert!(name("$SYS/x").is_system());
    assert!(!name("SYS/$x").is_system());
}

#[test]
fn filter_accepts_valid_wildcards() {
    for ok in [
        "#",
        "+",
        "+/+",
        "sport/#",
        "sport/+/player1",
        "/+",
        "+/",
        "a//#",
        "$SYS/#",
    ] {
        assert_eq!(filter(ok).as_str(), ok);
    }
}

#[test]
fn filter_refuses_misplaced_multi_level_wildcard_mqtt_4_7_1_2() {
    for bad in ["sport/tennis#", "sport/#/ranking", "#/", "##", "a/#b"] {
        assert_eq!(
            TopicFilter::try_from(bad),
            Err(TopicError::MisplacedMultiLevelWildcard),
            "{bad}"
        );
    }
}

#[test]
fn filter_refuses_misplaced_single_level_wildcard_mqtt_4_7_1_3() {
    for bad in ["sport+", "a/+b", "++", "+a/b"] {
        assert_eq!(
            TopicFilter::try_from(bad),
            Err(TopicError::MisplacedSingleLevelWildcard),
            "{bad}"
        );
    }
}

#[test]
fn filter_refuses_empty_mqtt_4_7_3_1() {
    assert_eq!(TopicFilter::try_from(""), Err(TopicError::Empty));
}

#[test]
fn shared_filter_splits_group_and_filter() {
    let f = filter("$share/g1/sport/+");
    assert_eq!(f.share_group(), Some("g1"));
    assert_eq!(f.match_filter(), "sport/+");
    assert!(f.has_wildcards());
    assert_eq!(f.levels().collect::<Vec<_>>(), ["sport", "+"]);
    assert!(f.matches(&name("sport/tennis")));
}

#[test]
fn non_shared_filter_has_no_group() {
    let f = filter("a/b");
    assert_eq!(f.share_group(), None);
    assert_eq!(f.match_filter(), "a/b");
    assert!(!f.has_wildcards());
}

#[test]
fn shared_filter_refuses_bad_group_or_missing_filter_mqtt_4_8_2_2() {
    for bad in [
        "$share/",
        "$share//a",
        "$share/g",
        "$share/g/",
        "$share/g+/a",
        "$share/#/a",
    ] {
        assert_eq!(
            TopicFilter::try_from(bad),
            Err(TopicError::InvalidSharedSubscription),
            "{bad}"
        );
    }
}

#[test]
fn shared_filter_validates_its_inner_filter() {
    assert_eq!(
        TopicFilter::try_from("$share/g/a#"),
        Err(TopicError::MisplacedMultiLevelWildcard)
    );
}

#[test]
fn exact_filter_matches_only_same_topic() {
    assert!(filter("a/b").matches(&name("a/b")));
    assert!(!filter("a/b").matches(&name("a/b/c")));
    assert!(!filter("a/b").matches(&name("a")));
    assert!(!filter("a/b").matches(&name("a/B")));
}

#[test]
fn multi_level_wildcard_matches_parent_and_children_mqtt_4_7_1_2() {
    let f = filter("sport/tennis/player1/#");
    assert!(f.matches(&name("sport/tennis/player1")));
    assert!(f.matches(&name("sport/tennis/player1/ranking")));
    assert!(f.matches(&name("sport/tennis/player1/score/wimbledon")));
    assert!(!f.matches(&name("sport/tennis/player2")));
    assert!(filter("sport/#").matches(&name("sport")));
    assert!(filter("#").matches(&name("a/b/c")));
    assert!(filter("#").matches(&name("/")));
}

#[test]
fn single_level_wildcard_matches_one_level_including_empty_mqtt_4_7_1_3() {
    let f = filter("sport/tennis/+");
    assert!(f.matches(&name("sport/tennis/player1")));
    assert!(!f.matches(&name("sport/tennis/player1/ranking")));
    assert!(filter("sport/+").matches(&name("sport/")));
    assert!(!filter("sport/+").matches(&name("sport")));
    assert!(filter("+/+").matches(&name("/finance")));
    assert!(filter("/+").matches(&name("/finance")));
    assert!(!filter("+").matches(&name("/finance")));
    assert!(filter("+/+/#").matches(&name("a/b")));
}

#[test]
fn wildcard_first_filters_skip_dollar_topics_mqtt_4_7_2_1() {
    assert!(!filter("#").matches(&name("$SYS/monitor/Clients")));
    assert!(!filter("+/monitor/Clients").matches(&name("$SYS/monitor/Clients")));
    assert!(filter("$SYS/#").matches(&name("$SYS/monitor/Clients")));
    assert!(filter("$SYS/monitor/+").matches(&name("$SYS/monitor/Clients")));
    assert!(!filter("$share/g/#").matches(&name("$SYS/x")));
}

fn hash_of(t: &TopicName) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(t)
}

/// The same text stored shared (`Repr::Shared` built directly, bypassing the inline copy).
fn shared(s: &str) -> TopicName {
    let string = MqttString::try_from(s).expect("valid string in test");
    TopicName(Repr::Shared(string))
}

#[test]
fn topic_name_is_at_most_40_bytes() {
    assert!(size_of::<TopicName>() <= 40, "{}", size_of::<TopicName>());
}

#[test]
fn inline_and_shared_names_with_the_same_text_are_equal_and_hash_alike() {
    for text in [
        "a",
        "sensors/room1/temperature",
        &"x".repeat(INLINE_TOPIC_LEN),
    ] {
        let (inline, shared) = (name(text), shared(text));
        assert!(inline.is_inline() && !shared.is_inline());
        assert_eq!(inline, shared);
        assert_eq!(inline.cmp(&shared), std::cmp::Ordering::Equal);
        assert_eq!(hash_of(&inline), hash_of(&shared));
        assert_eq!(format!("{inline:?}"), format!("{shared:?}"));
    }
    assert!(name("a/b") < shared("a/c") && shared("a/b") < name("a/c"));
    assert_ne!(name("a/b"), shared("a/b/c"));
}

#[test]
fn names_up_to_the_inline_length_are_inline_and_longer_ones_shared() {
    for len in [
        1,
        INLINE_TOPIC_LEN - 1,
        INLINE_TOPIC_LEN,
        INLINE_TOPIC_LEN + 1,
        300,
    ] {
        let text = "ab/".repeat(len).chars().take(len).collect::<String>();
        let inline = len <= INLINE_TOPIC_LEN;
        let from_bytes = TopicName::new(Bytes::from(text.clone())).expect("valid");
        let from_string =
            TopicName::from_mqtt_string(MqttString::try_from(text.as_str()).expect("valid"))
                .expect("valid");
        for t in [name(&text), from_bytes, from_string] {
            assert_eq!(t.is_inline(), inline, "len {len}");
            assert_eq!(t.as_str(), text);
            assert_eq!(t.len(), len);
            assert_eq!(
                t.levels().collect::<Vec<_>>(),
                text.split('/').collect::<Vec<_>>()
            );
            assert_eq!(t.clone(), t);
        }
    }
}

#[test]
fn long_shared_name_keeps_the_caller_buffer() {
    let bytes = Bytes::from("l/".repeat(INLINE_TOPIC_LEN));
    let t = TopicName::new(bytes.clone()).expect("valid");
    assert_eq!(t.as_bytes().as_ptr(), bytes.as_ptr());
}

#[test]
fn long_names_are_validated_like_short_ones() {
    let long = "a/".repeat(INLINE_TOPIC_LEN);
    assert_eq!(
        TopicName::try_from(format!("{long}+").as_str()),
        Err(TopicError::WildcardInName)
    );
    assert_eq!(
        TopicName::try_from(format!("{long}\0").as_str()),
        Err(TopicError::String(StringError::NullCharacter))
    );
    assert!(name(&format!("$SYS/{long}")).is_system());
}

#[test]
fn filters_match_inline_and_shared_names_alike() {
    let long = format!("sport/{}", "t".repeat(INLINE_TOPIC_LEN));
    assert!(filter("sport/+").matches(&name(&long)));
    assert!(filter("sport/+").matches(&shared("sport/x")));
    assert!(!filter("#").matches(&shared("$SYS/x")));
}

#[test]
fn empty_name_is_inline_and_equals_default() {
    assert!(TopicName::empty().is_empty() && TopicName::empty().is_inline());
    assert_eq!(TopicName::default(), TopicName::empty());
}

#[test]
fn empty_alias_topic_matches_nothing() {
    assert!(!filter("#").matches(&TopicName::empty()));
}
