//! acl_file parsing by line, per-client compilation, and the filter relations behind the
//! publish, delivery and subscribe checks.

use super::*;

fn acl(text: &str) -> AclFile {
    AclFile::parse(text.as_bytes()).expect("valid acl file in test")
}

fn name(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic name in test")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid topic filter in test")
}

fn err(text: &str) -> AclParseError {
    AclFile::parse(text.as_bytes()).expect_err("acl file should be refused")
}

/// A file in the shape of Mosquitto's `aclfile.example` and man page, plus deny rules.
const EXAMPLE: &str = "\
# anonymous clients
topic read $SYS/#
topic read public/#

user roger
topic foo/bar
topic readwrite roger/#
topic deny roger/secret/#

user ann
topic write ann/out

# every client
pattern write $SYS/broker/connection/%c/state
pattern readwrite devices/%c/#
pattern read users/%u/inbox
";

#[test]
fn anonymous_clients_get_the_rules_before_the_first_user_line() {
    let c = acl(EXAMPLE).compile("anon1", None);
    assert!(c.can_read(&name("$SYS/broker/uptime")));
    assert!(c.can_read(&name("public/news")));
    assert!(!c.can_publish(&name("public/news")));
    assert!(!c.can_read(&name("foo/bar")));
    assert!(c.can_publish(&name("devices/anon1/state")));
    // %u patterns need a user name.
    assert!(!c.can_read(&name("users/anon1/inbox")));
}

#[test]
fn a_user_gets_its_block_and_the_patterns_but_not_the_anonymous_rules() {
    let c = acl(EXAMPLE).compile("dev-7", Some("roger"));
    assert!(c.can_read(&name("foo/bar")) && c.can_publish(&name("foo/bar")));
    assert!(c.can_publish(&name("roger/notes")));
    assert!(!c.can_read(&name("public/news")));
    assert!(!c.can_read(&name("$SYS/broker/uptime")));
    assert!(c.can_read(&name("users/roger/inbox")));
    assert!(!c.can_publish(&name("users/roger/inbox")));
    assert!(c.can_publish(&name("$SYS/broker/connection/dev-7/state")));
    assert!(!c.can_publish(&name("$SYS/broker/connection/other/state")));
    assert!(!c.can_publish(&name("ann/out")));
}

#[test]
fn a_user_without_a_block_gets_only_the_patterns() {
    let c = acl(EXAMPLE).compile("x", Some("zed"));
    assert!(!c.can_read(&name("public/news")));
    assert!(c.can_read(&name("users/zed/inbox")));
    assert!(c.can_publish(&name("devices/x/temp")));
}

#[test]
fn deny_wins_wherever_it_is_written() {
    let c = acl(EXAMPLE).compile("c", Some("roger"));
    assert!(!c.can_read(&name("roger/secret/plans")));
    assert!(!c.can_publish(&name("roger/secret")));
    let file = acl("topic readwrite a/#\npattern deny a/%c\n");
    let c = file.compile("me", None);
    assert!(!c.can_publish(&name("a/me")));
    assert!(c.can_publish(&name("a/you")));
    // A deny before the allow, in the same block, wins too.
    let c = acl("topic deny a/b\ntopic a/#\n").compile("c", None);
    assert!(!c.can_read(&name("a/b")) && c.can_read(&name("a/c")));
}

#[test]
fn no_match_is_a_deny() {
    let c = acl("").compile("c", None);
    assert!(!c.can_read(&name("a")) && !c.can_publish(&name("a")));
    assert!(!c.can_subscribe(&filter("a")));
    assert!(
        !acl(EXAMPLE)
            .compile("c", None)
            .can_publish(&TopicName::empty())
    );
}

#[test]
fn read_and_write_are_separate_and_readwrite_is_both() {
    let c = acl("topic read r\ntopic write w\ntopic readwrite rw\ntopic both\n").compile("c", None);
    assert!(c.can_read(&name("r")) && !c.can_publish(&name("r")));
    assert!(!c.can_read(&name("w")) && c.can_publish(&name("w")));
    assert!(c.can_read(&name("rw")) && c.can_publish(&name("rw")));
    assert!(c.can_read(&name("both")) && c.can_publish(&name("both")));
}

/// [MQTT-4.7.2-1], as Mosquitto applies it to ACL rules: only a rule starting with `$`
/// reaches `$`-topics.
#[test]
fn dollar_topics_need_a_rule_starting_with_dollar_mqtt_4_7_2_1() {
    let c = acl("topic readwrite #\ntopic read +/monitor\n").compile("c", None);
    assert!(c.can_read(&name("a/b")));
    assert!(!c.can_read(&name("$SYS/uptime")));
    assert!(!c.can_read(&name("$SYS/monitor")));
    assert!(!c.can_publish(&name("$share/g/x")));
    let c = acl("topic read $SYS/#\n").compile("c", None);
    assert!(c.can_read(&name("$SYS/uptime")));
    assert!(c.can_read(&name("$SYS")));
}

#[test]
fn patterns_substitute_whole_levels_only() {
    let c = acl("pattern read a/x%c\npattern read b/%c/%u/#\n").compile("id", Some("u"));
    assert!(!c.can_read(&name("a/xid")));
    assert!(c.can_read(&name("a/x%c")));
    assert!(c.can_read(&name("b/id/u")));
    assert!(c.can_read(&name("b/id/u/deep/er")));
    assert!(!c.can_read(&name("b/u/id")));
}

#[test]
fn values_that_are_not_one_level_grant_nothing() {
    let file = acl("topic read open\npattern readwrite dev/%c/#\npattern read home/%u\n");
    for (id, user) in [
        ("a/b", Some("ok")),
        ("a+", Some("ok")),
        ("#", Some("ok")),
        ("ok", Some("x/y")),
        ("ok", Some("+")),
    ] {
        let c = file.compile(id, user);
        assert!(!c.can_read(&name("dev/a/b")), "{id} {user:?}");
        assert!(!c.can_read(&name("dev/a/b/c")), "{id} {user:?}");
        assert!(!c.can_subscribe(&filter("dev/+/#")), "{id} {user:?}");
        assert!(!c.can_read(&name("home/x/y")), "{id} {user:?}");
    }
    // The tainted value spoils only the patterns that use it.
    let c = file.compile("a/b", Some("ok"));
    assert!(c.can_read(&name("home/ok")));
    // An id that is fine for %c still leaves a bad user name's pattern out.
    let c = file.compile("fine", Some("x/y"));
    assert!(c.can_publish(&name("dev/fine/t")));
}

#[test]
fn a_deny_pattern_that_cannot_be_substituted_denies_everything() {
    let file = acl("topic readwrite #\npattern deny private/%c/#\n");
    let c = file.compile("a/b", None);
    assert!(!c.can_read(&name("anything")));
    assert!(!c.can_publish(&name("private/a/b/x")));
    assert!(!c.can_subscribe(&filter("anything")));
    // %u does not apply to a client without a user name, so this deny does nothing.
    let c = acl("topic readwrite #\npattern deny private/%u\n").compile("c", None);
    assert!(c.can_read(&name("private/c")));
}

#[test]
fn a_value_starting_with_dollar_cannot_open_dollar_topics() {
    let file = acl("pattern readwrite %c/#\n");
    let c = file.compile("$SYS", None);
    assert!(!c.can_read(&name("$SYS/broker/uptime")));
    assert!(
        !file
            .compile("$share", None)
            .can_publish(&name("$share/g/x"))
    );
    let c = file.compile("dev", None);
    assert!(c.can_read(&name("dev/x")));
    // Inside a level other than the first, `$` is an ordinary character.
    let c = acl("pattern read d/%c\n").compile("$x", None);
    assert!(c.can_read(&name("d/$x")));
}

#[test]
fn empty_values_match_nothing() {
    let c = acl("pattern read a/%c\npattern read b/%u\n").compile("", Some(""));
    assert!(!c.can_read(&name("a/")));
    assert!(!c.can_read(&name("b/")));
}

#[test]
fn subscribe_needs_one_read_rule_covering_the_filter() {
    let c = acl("topic read a/#\ntopic read b/+/c\ntopic write w/#\n").compile("c", None);
    for ok in ["a", "a/#", "a/+", "a/b/+/d", "b/x/c", "b/+/c"] {
        assert!(c.can_subscribe(&filter(ok)), "{ok}");
    }
    for bad in ["#", "+/#", "b/#", "b/+/+", "b/x/c/d", "b/+", "w/x", "c"] {
        assert!(!c.can_subscribe(&filter(bad)), "{bad}");
    }
}

#[test]
fn subscribe_is_refused_when_a_deny_rule_intersects_the_filter() {
    let c = acl("topic read a/#\ntopic deny a/secret\ntopic deny +/private/#\n").compile("c", None);
    assert!(c.can_subscribe(&filter("a/public/#")));
    assert!(!c.can_subscribe(&filter("a/#")));
    assert!(!c.can_subscribe(&filter("a/+")));
    assert!(!c.can_subscribe(&filter("a/private")));
    assert!(!c.can_subscribe(&filter("a/+/x")));
    assert!(c.can_subscribe(&filter("a/secret/x")));
    assert!(c.can_read(&name("a/other")) && !c.can_read(&name("a/secret")));
}

#[test]
fn rules_that_cover_a_filter_only_together_do_not_allow_it() {
    let c = acl("topic read a\ntopic read a/+/#\n").compile("c", None);
    assert!(c.can_read(&name("a")) && c.can_read(&name("a/b/c")));
    assert!(!c.can_subscribe(&filter("a/#")));
}

#[test]
fn shared_subscriptions_are_checked_by_their_inner_filter() {
    let c = acl("topic read jobs/#\n").compile("c", None);
    assert!(c.can_subscribe(&filter("$share/workers/jobs/+")));
    assert!(!c.can_subscribe(&filter("$share/workers/other")));
    // The group name is not a topic level the ACL sees.
    let c = acl("topic read x/#\n").compile("c", None);
    assert!(!c.can_subscribe(&filter("$share/x/y")));
}

#[test]
fn dollar_filters_need_dollar_rules_to_subscribe_mqtt_4_7_2_1() {
    let c = acl("topic read #\n").compile("c", None);
    assert!(c.can_subscribe(&filter("#")));
    assert!(!c.can_subscribe(&filter("$SYS/#")));
    let c = acl("topic read $SYS/#\ntopic deny #\n").compile("c", None);
    // `#` reaches no `$`-topic, so it does not intersect `$SYS/uptime`.
    assert!(c.can_subscribe(&filter("$SYS/uptime")));
    assert!(!c.can_subscribe(&filter("a")));
}

#[test]
fn matches_agrees_with_the_protocol_filter_matching() {
    let filters = [
        "#", "+", "a/#", "a/+", "+/+", "a/b", "/+", "a//#", "$SYS/#", "+/b/#",
    ];
    let topics = [
        "a", "a/b", "a/b/c", "/x", "a//", "$SYS/x", "$SYS", "b", "x/b",
    ];
    for f in filters {
        for t in topics {
            assert_eq!(
                matches(f, t),
                filter(f).matches(&name(t)),
                "filter {f} topic {t}"
            );
        }
    }
}

/// `covers` and `intersects` checked against brute force over a small topic universe (no
/// empty topic: [MQTT-4.7.3-1], which is why `#` is covered by `+/#`).
#[test]
fn covers_and_intersects_agree_with_brute_force() {
    let levels = ["a", "b", "", "$x"];
    let mut topics: Vec<String> = Vec::new();
    let mut frontier = vec![String::new()];
    for depth in 0..3 {
        let mut next = Vec::new();
        for prefix in &frontier {
            for level in levels {
                // `$` matters only as the first character of a topic.
                if depth > 0 && level.starts_with('$') {
                    continue;
                }
                next.push(match depth {
                    0 => level.to_owned(),
                    _ => format!("{prefix}/{level}"),
                });
            }
        }
        topics.extend(next.iter().filter(|t| !t.is_empty()).cloned());
        frontier = next;
    }
    let filters = [
        "#", "+", "a", "a/#", "a/+", "+/#", "+/+", "a/b", "+/b", "a/+/#", "$x", "$x/#", "$x/+",
        "+/+/+", "a/b/#", "/#", "/+/#", "+/", "a/", "b/+/a", "//#", "/", "/+",
    ];
    for x in filters {
        for y in filters {
            let in_x = |t: &&String| matches(x, t);
            let in_y = |t: &&String| matches(y, t);
            let brute_cover = topics.iter().filter(in_y).all(|t| in_x(&t));
            let brute_meet = topics.iter().any(|t| in_x(&t) && in_y(&t));
            assert_eq!(covers(x, y), brute_cover, "covers({x}, {y})");
            assert_eq!(intersects(x, y), brute_meet, "intersects({x}, {y})");
        }
    }
}

#[test]
fn access_word_topic_and_spaces_parse_as_mosquitto_does() {
    let c = acl("  topic   read   with space/#  \r\ntopic\tplain\n").compile("c", None);
    assert!(c.can_read(&name("with space/x")));
    assert!(c.can_publish(&name("plain")));
    let c = acl("user  two words \ntopic t\n").compile("c", Some("two words"));
    assert!(c.can_read(&name("t")));
}

#[test]
fn user_blocks_with_the_same_name_merge() {
    let c = acl("user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n")
        .compile("c", Some("u"));
    assert!(c.can_read(&name("a")) && c.can_read(&name("c")) && !c.can_read(&name("b")));
}

#[test]
fn parse_errors_name_the_line_and_keyword() {
    let cases = [
        (
            "topic read a\nfoo bar\n",
            2,
            "unknown keyword 'foo' (want user, topic or pattern)",
        ),
        ("\n\nuser\n", 3, "user: no user name"),
        ("topic\n", 1, "topic: no topic"),
        ("pattern read\n", 1, "pattern: access 'read' but no topic"),
        (
            "topic red a/b\n",
            1,
            "topic: access 'red' is not read, write, readwrite or deny",
        ),
        (
            "# c\ntopic read a/#/b\n",
            2,
            "topic: invalid topic filter 'a/#/b': [MQTT-4.7.1-2] '#' not alone in the last level",
        ),
        (
            "pattern write a/%c+\n",
            1,
            "pattern: invalid topic filter 'a/%c+': [MQTT-4.7.1-3] '+' not alone in its level",
        ),
        (
            "topic read $share/g/a\n",
            1,
            "topic: '$share/g/a' is a shared subscription; write the topic filter without \
             $share/{group}/",
        ),
    ];
    for (text, line, message) in cases {
        let e = err(text);
        assert_eq!(e.line, line, "{text:?}");
        assert_eq!(e.to_string(), format!("line {line}: {message}"), "{text:?}");
    }
    let not_utf8 = AclFile::parse(b"topic a\n\xff\n").expect_err("refused");
    assert_eq!((not_utf8.line, not_utf8.error), (2, AclLineError::NotUtf8));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("acl");
    assert!(AclFile::load(&path).is_err());
    std::fs::write(&path, "topic read a\nnope\n").expect("write");
    assert_eq!(
        AclFile::load(&path).expect_err("refused").to_string(),
        format!(
            "acl file {}, line 2: unknown keyword 'nope' (want user, topic or pattern)",
            path.display()
        )
    );
    std::fs::write(&path, EXAMPLE).expect("write");
    assert!(AclFile::load(&path).is_ok());
}
