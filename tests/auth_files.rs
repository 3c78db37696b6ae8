//! Mosquitto-compatible access control: `auth.password_file` checked at CONNECT,
//! `allow_anonymous` (`[auth]`'s and a listener's own), and `auth.acl_file` checked on
//! PUBLISH, SUBSCRIBE and delivery, with MQTT 3.1.1 and 5.0 clients on both shards; both
//! files reloaded on SIGHUP (all or nothing).

pub mod support;

use ringmq::auth::passwd::Hash;
use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use std::path::{Path, PathBuf};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A directory of its own for one test's files, removed at the end.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ringmq-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A password file with alice ($7$, as mosquitto_passwd 2.0 writes) and bob ($6$).
fn password_file(files: &Files) -> String {
    let alice = Hash::pbkdf2_sha512(
        b"wonderland",
        b"0123456789ab",
        std::num::NonZeroU32::new(101).expect("non-zero"),
    )
    .expect("hash");
    let bob = Hash::sha512(b"builder", b"salty-salt-1").expect("hash");
    files.write("passwd", &format!("# users\nalice:{alice}\nbob:{bob}\n"))
}

fn broker_with(auth: &str) -> Broker {
    Broker::start_with_config(&format!("[auth]\n{auth}"))
}

fn connack_of(addr: std::net::SocketAddr, connect: ConnectBuilder) -> ReasonCode {
    let version = connect.0.version;
    let mut client = RawClient::tcp(addr, version, "login");
    client.send(&connect.packet());
    client.expect_connack().reason
}

fn toml_path(path: &str) -> String {
    toml_string(Path::new(path).to_str().expect("utf-8 path"))
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

#[test]
fn the_right_password_connects_and_a_wrong_or_missing_one_gets_0x86_or_0x04() {
    // 5.0 section 3.2.2.2: 0x86 Bad User Name or Password; 3.1.1 section 3.2.2.3: return
    // code 0x04 "bad user name or password". Each format a Mosquitto password file holds.
    let files = Files::new("passwords");
    let path = password_file(&files);
    let broker = broker_with(&format!("password_file = {}\n", toml_path(&path)));
    for (version, refused) in [
        (V5, ReasonCode::BadUserNameOrPassword),
        (V4, ReasonCode::BadUserNameOrPassword),
    ] {
        for (user, password) in [("alice", &b"wonderland"[..]), ("bob", b"builder")] {
            for round in 0..2 {
                // The second login of the same credentials is served from the shard's cache.
                let id = format!("{user}-{version:?}-{round}");
                let ok = ConnectBuilder::new(version, &id).credentials(user, password);
                assert_eq!(connack_of(broker.addr, ok), ReasonCode::Success, "{id}");
            }
            let wrong = ConnectBuilder::new(version, user).credentials(user, b"nope");
            assert_eq!(
                connack_of(broker.addr, wrong),
                refused,
                "{user}: wrong password"
            );
        }
        let unknown = ConnectBuilder::new(version, "mallory").credentials("mallory", b"x");
        assert_eq!(connack_of(broker.addr, unknown), refused, "unknown user");
        let mut no_password = ConnectBuilder::new(version, "alice");
        no_password.0.username = Some(mqtt_string("alice"));
        assert_eq!(connack_of(broker.addr, no_password), refused, "no password");
    }
}

#[test]
fn anonymous_clients_are_refused_with_0x87_or_0x05_unless_allowed() {
    // 5.0 section 3.2.2.2: 0x87 Not authorized; 3.1.1: return code 0x05 "not authorized".
    let files = Files::new("anonymous");
    let path = password_file(&files);
    let closed = broker_with(&format!(
        "password_file = {}\nallow_anonymous = false\n",
        toml_path(&path)
    ));
    for version in [V5, V4] {
        let anonymous = ConnectBuilder::new(version, "anon");
        assert_eq!(
            connack_of(closed.addr, anonymous),
            ReasonCode::NotAuthorized
        );
        let alice = ConnectBuilder::new(version, "alice").credentials("alice", b"wonderland");
        assert_eq!(connack_of(closed.addr, alice), ReasonCode::Success);
    }
    let open = broker_with(&format!("password_file = {}\n", toml_path(&path)));
    let anonymous = ConnectBuilder::new(V5, "anon");
    assert_eq!(connack_of(open.addr, anonymous), ReasonCode::Success);
}

#[test]
fn a_listener_s_own_allow_anonymous_overrides_the_auth_default() {
    // `--listen` (the `listen` shorthand) takes `[auth] allow_anonymous`; a `[[listeners]]`
    // entry may set its own.
    let broker = Broker::start_with_config(
        "[[listeners]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\n\
         [auth]\nallow_anonymous = true\n",
    );
    let closed = broker.listener("listeners[0]");
    for (version, code) in [
        (V5, ReasonCode::NotAuthorized),
        (V4, ReasonCode::NotAuthorized),
    ] {
        assert_eq!(
            connack_of(broker.addr, ConnectBuilder::new(version, "anon")),
            ReasonCode::Success
        );
        assert_eq!(
            connack_of(closed, ConnectBuilder::new(version, "anon")),
            code,
            "{version:?}"
        );
    }
}

fn acl_broker(files: &Files) -> Broker {
    let acl = files.write(
        "acl",
        "# anonymous clients\n\
         topic read public/#\n\
         \n\
         user alice\n\
         topic readwrite sensors/#\n\
         topic deny sensors/secret\n\
         topic read $SYS/#\n\
         \n\
         pattern readwrite devices/%c/#\n\
         pattern read users/%u/inbox\n",
    );
    let passwd = password_file(files);
    broker_with(&format!(
        "password_file = {}\nacl_file = {}\n",
        toml_path(&passwd),
        toml_path(&acl)
    ))
}

fn alice(addr: std::net::SocketAddr, version: ProtocolVersion, id: &str) -> RawClient {
    let connect = ConnectBuilder::new(version, id).credentials("alice", b"wonderland");
    RawClient::connect_with(addr, connect).0
}

#[test]
fn a_filter_the_acl_does_not_let_the_client_read_gets_suback_0x87_or_0x80() {
    // 5.0 section 3.9.3: 0x87 Not authorized; 3.1.1 [MQTT-3.9.3-2]: 0x80 Failure. Unlike
    // Mosquitto, SUBSCRIBE itself is checked: a filter must be covered by a read rule and
    // touch no denied topic.
    let files = Files::new("acl-subscribe");
    let broker = acl_broker(&files);
    let [a5, a4] = ids_on_distinct_shards("acl-sub");
    for (version, id, refused) in [
        (V5, a5, ReasonCode::NotAuthorized),
        (V4, a4, ReasonCode::UnspecifiedError),
    ] {
        let mut client = alice(broker.addr, version, &id);
        let codes = client.subscribe(
            1,
            &[
                ("sensors/kitchen/#", 1),
                ("sensors/#", 1), // touches the denied sensors/secret
                ("other/#", 0),
                (&format!("devices/{id}/cmd"), 1), // the %c pattern
                ("devices/someone-else/cmd", 1),
                ("$SYS/broker/uptime", 0),
                ("users/alice/inbox", 0), // the %u pattern
            ],
        );
        let ok1 = ReasonCode::GrantedQoS1;
        let ok0 = ReasonCode::GRANTED_QOS0;
        assert_eq!(
            codes,
            [ok1, refused, refused, ok1, refused, ok0, ok0],
            "{id}"
        );
    }
    // Rules before the first `user` line are the anonymous clients'.
    let mut anonymous = RawClient::connect(broker.addr, V5, "acl-anon");
    let codes = anonymous.subscribe(1, &[("public/news", 0), ("sensors/a", 0), ("$SYS/#", 0)]);
    let refused = ReasonCode::NotAuthorized;
    assert_eq!(
        codes,
        [ReasonCode::GRANTED_QOS0, refused, refused],
        "$SYS only by rule"
    );
}

#[test]
fn a_publish_the_acl_forbids_gets_puback_or_pubrec_0x87_in_5_0_and_is_dropped_in_3_1_1() {
    // 5.0 sections 3.4.2.1 / 3.5.2.1: 0x87 Not authorized refuses that message only; 3.1.1
    // has no such code, so the message is acknowledged and not routed (as Mosquitto does).
    let files = Files::new("acl-publish");
    let broker = acl_broker(&files);
    let [watch_id, p5] = ids_on_distinct_shards("acl-pub");
    let p4 = id_on_shard("acl-pub-c", 1);
    let mut watcher = alice(broker.addr, V5, &watch_id);
    watcher.subscribe_ok(1, &[("sensors/kitchen/#", 1)]);
    let mut anonymous_watcher = RawClient::connect(broker.addr, V5, "acl-pub-anon");
    anonymous_watcher.subscribe_ok(1, &[("public/#", 1)]);

    let mut v5 = alice(broker.addr, V5, &p5);
    v5.send(&publish_packet("public/news", b"no", 1, Some(7), false));
    let ack = v5.expect_puback(7);
    assert_eq!(
        ack.reason,
        ReasonCode::NotAuthorized,
        "alice may not write public/"
    );
    v5.send(&publish_packet("public/news", b"no", 2, Some(8), false));
    let rec = v5.expect_pubrec(8);
    assert_eq!(rec.reason, ReasonCode::NotAuthorized);
    v5.publish("sensors/kitchen/t", b"v5 ok", 1, false);

    let mut v4 = alice(broker.addr, V4, &p4);
    v4.publish("public/news", b"dropped", 1, false); // PUBACK, then nothing routed
    v4.publish("public/news", b"dropped", 2, false); // the whole QoS 2 flow, nothing routed
    v4.publish("sensors/kitchen/t", b"v4 ok", 2, false);

    let got = collect_payloads(&mut watcher, QUIET);
    assert_eq!(got, ["v5 ok", "v4 ok"]);
    anonymous_watcher.expect_nothing(QUIET);
}

#[test]
fn a_bad_password_or_acl_file_is_refused_at_start_naming_the_key_and_line() {
    let files = Files::new("bad-files");
    let bad_passwd = files.write("passwd", "alice:$7$101$notbase64!$x\n");
    let bad_acl = files.write("acl", "user alice\ntopic sometimes a/b\n");
    let missing = files.0.join("missing").display().to_string();
    for (auth, key, detail) in [
        (
            format!("password_file = {}", toml_path(&bad_passwd)),
            "auth.password_file",
            "line 1",
        ),
        (
            format!("acl_file = {}", toml_path(&bad_acl)),
            "auth.acl_file",
            "line 2",
        ),
        (
            format!("password_file = {}", toml_path(&missing)),
            "auth.password_file",
            "missing",
        ),
    ] {
        let config = files.write("ringmq.toml", &format!("[auth]\n{auth}\n"));
        let out = broker_command()
            .args(["--listen", "127.0.0.1:0", "--config", &config])
            .output()
            .expect("run ringmq");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: the broker must not start");
        assert!(
            stderr.contains(key) && stderr.contains(detail),
            "{key}: the error names the key and {detail:?}: {stderr}"
        );
    }
}

#[test]
fn the_acl_read_check_holds_for_retained_messages_at_subscribe() {
    // A retained message on a topic the subscriber may read reaches it [MQTT-3.3.1-6]; the
    // read check is made on every delivery, retained ones included.
    let files = Files::new("acl-retained");
    let broker = acl_broker(&files);
    let mut writer = alice(broker.addr, V5, "acl-ret-w");
    writer.publish("sensors/kitchen/t", b"warm", 1, true);
    let mut reader = alice(broker.addr, V5, "acl-ret-r");
    reader.subscribe_ok(1, &[("sensors/kitchen/#", 1)]);
    let got = reader.expect_publish_acked();
    assert_eq!((got.retain, &got.payload[..]), (true, &b"warm"[..]));
    let anything_else = reader.recv(QUIET);
    assert!(
        !matches!(anything_else, Recv::Packet(Packet::Publish(_))),
        "{anything_else:?}"
    );
}

/// A password file of `users` (name, password), salted SHA-512 (`$6$`, cheap to verify).
fn write_passwords(files: &Files, users: &[(&str, &[u8])]) -> String {
    let mut text = String::from("# users\n");
    for (user, password) in users {
        let hash = Hash::sha512(password, b"salty-salt-2").expect("hash");
        text.push_str(&format!("{user}:{hash}\n"));
    }
    files.write("passwd", &text)
}

fn user(addr: std::net::SocketAddr, id: &str, name: &str, password: &[u8]) -> RawClient {
    RawClient::connect_with(
        addr,
        ConnectBuilder::new(V5, id).credentials(name, password),
    )
    .0
}

/// Sends SIGHUP and returns the next log line containing `wanted` (`config reload: ` when
/// the files went to every shard, `config reload failed` when nothing changed). The logger
/// is asynchronous, so the line is polled for.
fn sighup_and_wait(broker: &Broker, wanted: &str) -> String {
    let seen = |b: &Broker| -> Vec<String> {
        let lines = b.log_lines().into_iter();
        lines.filter(|l| l.contains(wanted)).collect()
    };
    let before = seen(broker).len();
    broker.sighup();
    eventually(&format!("a `{wanted}` log line"), || {
        seen(broker)
            .get(before)
            .cloned()
            .ok_or_else(|| "not logged".to_string())
    })
}

#[test]
fn after_sighup_the_new_acl_decides_publish_subscribe_and_delivery() {
    // 5.0 section 3.4.2.1: PUBACK 0x87 Not authorized, 3.9.3: SUBACK 0x87, now by the
    // reloaded rules. A subscription made under the old rules stays, but the read check on
    // every delivery (as Mosquitto makes it) stops what the new rules deny.
    let files = Files::new("acl-reload");
    let passwd = password_file(&files);
    let acl = files.write(
        "acl",
        "user alice\ntopic readwrite sensors/#\nuser bob\ntopic read sensors/#\n",
    );
    let broker = broker_with(&format!(
        "password_file = {}\nacl_file = {}\n",
        toml_path(&passwd),
        toml_path(&acl)
    ));
    let bob = |id: &str| user(broker.addr, id, "bob", b"builder");
    // The message crosses the mesh: each shard's copy of the rules counts.
    let [reader_id, writer_id] = ids_on_distinct_shards("acl-reload");
    let mut reader = bob(&reader_id);
    reader.subscribe_ok(1, &[("sensors/#", 1)]);
    let mut writer = alice(broker.addr, V5, &writer_id);
    writer.publish("sensors/kitchen", b"before", 1, false);
    assert_eq!(payload_str(&reader.expect_publish_acked()), "before");

    files.write(
        "acl",
        "user alice\ntopic readwrite sensors/#\ntopic deny sensors/kitchen\n\
         user bob\ntopic read sensors/garden\n",
    );
    let line = sighup_and_wait(&broker, "config reload: ");
    assert!(
        line.contains("auth.acl_file"),
        "names what it reloaded: {line}"
    );
    // Each shard takes the new rules up at its next tick; a SUBSCRIBE is checked on the
    // subscriber's home shard, so a probe homed on each shows when both have.
    let mut probe = 0;
    eventually("both shards check by the new acl", || {
        probe += 1;
        let codes: Vec<_> = (0..SHARDS)
            .map(|shard| {
                let mut c = bob(&id_on_shard(&format!("acl-probe-{probe}"), shard));
                c.subscribe(1, &[("sensors/#", 1)])
            })
            .collect();
        match codes.iter().all(|c| c == &[ReasonCode::NotAuthorized]) {
            true => Ok(()),
            false => Err(format!("SUBACK {codes:?}")),
        }
    });

    writer.send(&publish_packet("sensors/kitchen", b"no", 1, Some(9), false));
    let ack = writer.expect_puback(9);
    assert_eq!(
        ack.reason,
        ReasonCode::NotAuthorized,
        "allowed before, denied now"
    );
    let mut late = bob(&id_on_shard("acl-reload-late", 0));
    let codes = late.subscribe(1, &[("sensors/#", 1), ("sensors/garden", 1)]);
    assert_eq!(
        codes,
        [ReasonCode::NotAuthorized, ReasonCode::GrantedQoS1],
        "granted before, denied now; what the new rules grant is granted"
    );
    writer.publish("sensors/hall", b"hidden", 1, false);
    writer.publish("sensors/garden", b"after", 1, false);
    let got = collect_payloads(&mut reader, QUIET);
    assert_eq!(
        got,
        ["after"],
        "the old subscription delivers only what bob may read now"
    );
}

#[test]
fn after_sighup_the_new_password_file_decides_new_connects() {
    // 5.0 section 3.2.2.2: CONNACK 0x86 Bad User Name or Password; 3.1.1 section 3.2.2.3:
    // return code 0x04. A changed password and a removed user are refused at once, even
    // though the shards' caches of verified passwords had both.
    let files = Files::new("passwd-reload");
    let path = write_passwords(&files, &[("alice", b"wonderland"), ("bob", b"builder")]);
    let broker = broker_with(&format!("password_file = {}\n", toml_path(&path)));
    let mut n = 0;
    let mut login = |version: ProtocolVersion, name: &str, password: &[u8]| {
        n += 1;
        let connect = ConnectBuilder::new(version, &format!("pw-{n}")).credentials(name, password);
        connack_of(broker.addr, connect)
    };
    let ok = ReasonCode::Success;
    let refused = ReasonCode::BadUserNameOrPassword;
    // Several logins each: every shard verifies and caches them (the kernel picks the shard
    // that accepts, and that shard checks the password).
    for _ in 0..4 {
        for version in [V5, V4] {
            assert_eq!(login(version, "alice", b"wonderland"), ok);
            assert_eq!(login(version, "bob", b"builder"), ok);
        }
    }
    let live = ConnectBuilder::new(V5, "pw-live").credentials("bob", b"builder");
    let mut live = RawClient::connect_with(broker.addr, live).0;

    // alice's password changed, bob removed.
    write_passwords(&files, &[("alice", b"looking-glass")]);
    let line = sighup_and_wait(&broker, "config reload: ");
    assert!(
        line.contains("auth.password_file"),
        "names what it reloaded: {line}"
    );
    eventually("every shard checks by the new password file", || {
        for version in [V5, V4].repeat(3) {
            for (name, password, want) in [
                ("alice", &b"wonderland"[..], refused),
                ("bob", b"builder", refused),
                ("alice", b"looking-glass", ok),
            ] {
                let got = login(version, name, password);
                if got != want {
                    return Err(format!("{name} {version:?}: {got:?}"));
                }
            }
        }
        Ok(())
    });
    // Mosquitto keeps a connected client whose password was removed, and so does ringmq:
    // a password is checked at CONNECT.
    live.ping();
}

#[test]
fn a_broken_file_on_sighup_changes_nothing_and_the_error_names_key_file_and_line() {
    let files = Files::new("broken-reload");
    let passwd = write_passwords(&files, &[("alice", b"wonderland")]);
    let acl = files.write("acl", "user alice\ntopic readwrite sensors/#\n");
    let broker = broker_with(&format!(
        "password_file = {}\nacl_file = {}\n",
        toml_path(&passwd),
        toml_path(&acl)
    ));
    let works = |id: &str, password: &[u8]| {
        let mut client = user(broker.addr, id, "alice", password);
        client.subscribe_ok(1, &[("sensors/#", 1)]);
        client.publish("sensors/a", id.as_bytes(), 1, false);
        payload_str(&client.expect_publish_acked()) == id
    };
    assert!(works("broken-0", b"wonderland"));

    // A bad line in the ACL file and a good new password file: a reload is all or nothing,
    // so neither is used.
    write_passwords(&files, &[("alice", b"looking-glass")]);
    files.write(
        "acl",
        "user alice\ntopic readwrite sensors/#\ntopic sometimes other/#\n",
    );
    let line = sighup_and_wait(&broker, "config reload failed");
    for part in ["auth.acl_file", acl.as_str(), "line 3"] {
        assert!(line.contains(part), "the error names {part:?}: {line}");
    }
    // A password file that cannot be read.
    std::fs::remove_file(&passwd).expect("remove");
    let line = sighup_and_wait(&broker, "config reload failed");
    for part in ["auth.password_file", passwd.as_str()] {
        assert!(line.contains(part), "the error names {part:?}: {line}");
    }
    // The broker kept serving, with the old files on every shard.
    for shard in 0..SHARDS {
        let id = id_on_shard("broken-old", shard);
        assert!(
            works(&id, b"wonderland"),
            "the old files still hold on shard {shard}"
        );
    }
    let new_password = ConnectBuilder::new(V5, "broken-new").credentials("alice", b"looking-glass");
    assert_eq!(
        connack_of(broker.addr, new_password),
        ReasonCode::BadUserNameOrPassword,
        "the new password file was not taken up"
    );
}
