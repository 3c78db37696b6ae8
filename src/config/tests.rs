//! Unit tests of the configuration: defaults, reading back what is printed, and the refusal
//! of each kind of bad value.

use super::validate::available_cores;
use super::*;
use crate::auth::scram;
use std::net::SocketAddr;

fn refused(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_are_valid_and_match_the_documented_values() {
    let c = Config::default();
    let [listen] = &c.listeners[..] else {
        panic!("one default listener: {:?}", c.listeners)
    };
    assert_eq!(listen.bind, SocketAddr::from(([127, 0, 0, 1], 1883)));
    assert!(listen.allow_anonymous && listen.tls.is_none());
    assert_eq!(listen.protocol, Protocol::Mqtt);
    assert_eq!(c.shards, available_cores());
    assert_eq!(c.mqtt.max_packet_size.get(), 2 * 1024 * 1024);
    assert_eq!(c.mqtt.packet_timeout, Duration::from_secs(10));
    assert_eq!(c.mqtt.max_partial_bytes, 64 * 1024 * 1024);
    assert_eq!(c.max_sessions, NonZeroUsize::new(1_000_000));
    assert_eq!(c.runtime.timer_tick, Duration::from_millis(100));
    assert_eq!(Config::from_toml_str(""), Ok(c));
}

#[test]
fn printed_config_reads_back_identically() {
    let mut c = Config::default();
    c.mqtt.max_keepalive = NonZeroU16::new(300);
    c.retained.enabled = false;
    c.listeners[0].bind = SocketAddr::from(([127, 0, 0, 1], 18830));
    c.mqtt.response_information = Some("replies/\"x\"/".into());
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
}

#[test]
fn the_partial_packet_budget_must_hold_the_largest_packet() {
    assert_eq!(
        refused("[mqtt]\nmax_packet_size = 4096\nmax_partial_bytes = 4095\n"),
        ConfigError::BelowOther {
            field: "mqtt.max_partial_bytes",
            value: 4095,
            other: "mqtt.max_packet_size",
            min: 4096,
        }
    );
    let c = Config::from_toml_str("[mqtt]\nmax_packet_size = 4096\nmax_partial_bytes = 4096\n");
    assert_eq!(c.map(|c| c.mqtt.max_partial_bytes), Ok(4096));
    assert!(matches!(
        refused("[mqtt]\npacket_timeout_ms = 10\n"),
        ConfigError::OutOfRange {
            field: "mqtt.packet_timeout_ms",
            ..
        }
    ));
}

#[test]
fn max_sessions_reads_back_and_0_means_unlimited() {
    let mut c = Config {
        max_sessions: NonZeroUsize::new(5000),
        ..Config::default()
    };
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c.clone()));
    c.max_sessions = None;
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    let off = Config::from_toml_str("max_sessions = 0\n");
    assert_eq!(off.map(|c| c.max_sessions), Ok(None));
}

#[test]
fn connection_rate_redirect_and_stall_timeout_read_back() {
    let mut c = Config::default();
    assert_eq!(c.max_connection_rate, None, "unlimited by default");
    assert_eq!(c.redirect, None, "no redirection by default");
    assert_eq!(c.queues.stall_timeout, Duration::from_secs(30));
    c.max_connection_rate = NonZeroU32::new(250);
    c.queues.stall_timeout = Duration::from_millis(1500);
    c.redirect = Some(Redirect {
        server_reference: "a:1883 \"b\":1883".into(),
        permanent: true,
    });
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
}

#[test]
fn a_server_reference_must_be_a_valid_mqtt_string() {
    assert!(matches!(
        refused("[redirect]\nserver_reference = \"a\\u0000b\""),
        ConfigError::NotMqttString {
            field: "redirect.server_reference",
            ..
        }
    ));
    let c = Config::from_toml_str("[redirect]\nserver_reference = \"\"");
    assert_eq!(c.map(|c| c.redirect), Ok(None), "empty means off");
}

#[test]
fn response_information_is_optional_and_must_be_a_valid_mqtt_string() {
    let c = Config::from_toml_str("[mqtt]\nresponse_information = \"replies/\"");
    assert_eq!(
        c.map(|c| c.mqtt.response_information),
        Ok(Some("replies/".to_owned()))
    );
    let off = Config::from_toml_str("");
    assert_eq!(off.map(|c| c.mqtt.response_information), Ok(None));
    assert!(matches!(
        refused("[mqtt]\nresponse_information = \"a\\u0000b\""),
        ConfigError::NotMqttString {
            field: "mqtt.response_information",
            ..
        }
    ));
}

#[test]
fn partial_files_keep_defaults_for_the_rest() {
    let c = Config::from_toml_str("shards = 3\n[mqtt]\nmax_inflight = 10\n");
    let c = c.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.shards.get(), 3);
    assert_eq!(c.mqtt.max_inflight.get(), 10);
    assert_eq!(c.mqtt.receive_maximum.get(), 64);
}

#[test]
fn unknown_keys_and_wrong_types_are_parse_errors() {
    assert!(matches!(refused("colour = 3"), ConfigError::Parse(_)));
    assert!(matches!(
        refused("[mqtt]\nmax_inflight = \"x\""),
        ConfigError::Parse(_)
    ));
    assert!(matches!(
        refused("[mqtt]\nmax_inflight = 70000"),
        ConfigError::Parse(_)
    ));
}

#[test]
fn a_bad_listen_address_is_named() {
    assert_eq!(
        refused("listen = \"localhost\""),
        ConfigError::BadListenAddress("localhost".into())
    );
}

const TLS_LISTENER: &str = r#"
[[listeners]]
bind = "0.0.0.0:8883"
allow_anonymous = false
[listeners.tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
require_client_cert = true
identity_as_username = true

[[listeners]]
bind = "[::1]:8080"
protocol = "websockets"
"#;

#[test]
fn listeners_are_read_in_order_and_print_back_identically() {
    let c = Config::from_toml_str(TLS_LISTENER).unwrap_or_else(|e| panic!("{e}"));
    let [tls, ws] = &c.listeners[..] else {
        panic!(
            "no default listener beside [[listeners]]: {:?}",
            c.listeners
        )
    };
    assert_eq!(tls.name, "listeners[0]");
    assert_eq!(tls.scheme(), "mqtts");
    assert!(!tls.allow_anonymous);
    let t = tls.tls.as_ref().unwrap_or_else(|| panic!("tls"));
    assert_eq!(t.cert, std::path::Path::new("server.pem"));
    assert_eq!(t.client_ca.as_deref(), Some(std::path::Path::new("ca.pem")));
    assert!(t.require_client_cert && t.identity_as_username);
    assert_eq!((ws.protocol, ws.scheme()), (Protocol::WebSockets, "ws"));
    assert!(ws.allow_anonymous, "loopback: anonymous by default");
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    // `listen` adds a plain listener in front, and prints back as `listen`.
    let both = format!("listen = \"127.0.0.1:1884\"\n{TLS_LISTENER}");
    let c = Config::from_toml_str(&both).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["listen", "listeners[0]", "listeners[1]"]);
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    // `[auth] allow_anonymous` is the default of the entries that set none.
    let closed =
        format!("listen = \"0.0.0.0:1884\"\n{TLS_LISTENER}\n[auth]\nallow_anonymous = false\n");
    let c = Config::from_toml_str(&closed).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listeners.iter().all(|l| !l.allow_anonymous), "{c:?}");
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
}

#[test]
fn a_non_loopback_listener_needs_an_explicit_allow_anonymous() {
    // Mosquitto 2's default: anonymous access only on loopback unless the config says so.
    let e = refused("listen = \"0.0.0.0:1883\"");
    assert!(
        matches!(&e, ConfigError::Listener { key, .. } if key == "listen"),
        "{e:?}"
    );
    assert!(e.to_string().contains("allow_anonymous = true"), "{e}");
    let e = refused("[[listeners]]\nbind = \"0.0.0.0:1883\"");
    assert!(
        e.to_string().starts_with("listeners[0]: 0.0.0.0:1883"),
        "{e}"
    );
    for ok in [
        "listen = \"0.0.0.0:1883\"\n[auth]\nallow_anonymous = true",
        "[[listeners]]\nbind = \"0.0.0.0:1883\"\n[auth]\nallow_anonymous = true",
        "[[listeners]]\nbind = \"0.0.0.0:1883\"\nallow_anonymous = false",
    ] {
        assert!(Config::from_toml_str(ok).is_ok(), "{ok}");
    }
    // With a password file, a public listener that says nothing takes no anonymous clients.
    let passwd = std::env::temp_dir().join(format!("ringmq-cfg-passwd-{}", std::process::id()));
    assert!(std::fs::write(&passwd, "").is_ok());
    let text = format!(
        "listen = \"0.0.0.0:1883\"\n[auth]\npassword_file = {:?}\n",
        passwd.display().to_string()
    );
    let c = Config::from_toml_str(&text);
    let _ = std::fs::remove_file(&passwd);
    let c = c.unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.listeners[0].allow_anonymous);
    // A top-level `allow_anonymous` is not a key: it lives in [auth] (or a listener).
    assert!(matches!(
        refused("allow_anonymous = true"),
        ConfigError::Parse(_)
    ));
}

#[test]
fn bad_listener_settings_are_refused_naming_the_key() {
    let key_of = |text: &str| match refused(text) {
        ConfigError::Listener { key, .. } => key,
        other => panic!("{text}: {other:?}"),
    };
    let tls =
        |body: &str| format!("[[listeners]]\nbind = \"127.0.0.1:8883\"\n[listeners.tls]\n{body}");
    assert_eq!(
        key_of("[[listeners]]\nbind = \"localhost:1883\""),
        "listeners[0].bind"
    );
    assert_eq!(
        key_of("listen = \"127.0.0.1:1883\"\n[[listeners]]\nbind = \"127.0.0.1:1883\""),
        "listeners[0].bind",
    );
    assert_eq!(
        key_of(&tls("cert = \"\"\nkey = \"k.pem\"")),
        "listeners[0].tls.cert"
    );
    assert_eq!(
        key_of(&tls(
            "cert = \"c.pem\"\nkey = \"k.pem\"\nrequire_client_cert = true"
        )),
        "listeners[0].tls.require_client_cert"
    );
    assert_eq!(
        key_of(&tls(
            "cert = \"c.pem\"\nkey = \"k.pem\"\nidentity_as_username = true"
        )),
        "listeners[0].tls.identity_as_username"
    );
    // Unknown keys, a missing key and an unknown protocol are format errors naming them.
    for (text, named) in [
        (tls("cert = \"c\"\nkey = \"k\"\ncafile = \"ca\""), "cafile"),
        (tls("cert = \"c\"\n"), "key"),
        ("[[listeners]]\nport = 1883".into(), "port"),
        (
            "[[listeners]]\nbind = \"127.0.0.1:1\"\nprotocol = \"quic\"".into(),
            "quic",
        ),
    ] {
        match refused(&text) {
            ConfigError::Parse(msg) => assert!(msg.contains(named), "{named}: {msg}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn zero_limits_are_refused() {
    assert_eq!(
        refused("max_connections = 0"),
        ConfigError::Zero("max_connections")
    );
    assert_eq!(
        refused("[mqtt]\nreceive_maximum = 0"),
        ConfigError::Zero("mqtt.receive_maximum")
    );
    assert_eq!(
        refused("[queues]\noutbound_buffer_limit = 0"),
        ConfigError::Zero("queues.outbound_buffer_limit")
    );
}

#[test]
fn out_of_range_values_are_refused() {
    assert!(matches!(
        refused("[mqtt]\nmax_packet_size = 10"),
        ConfigError::OutOfRange {
            field: "mqtt.max_packet_size",
            ..
        }
    ));
    assert!(matches!(
        refused("[mqtt]\nmax_packet_size = 300000000"),
        ConfigError::OutOfRange {
            field: "mqtt.max_packet_size",
            ..
        }
    ));
    assert!(matches!(
        refused("[queues]\nstall_timeout_ms = 0"),
        ConfigError::OutOfRange {
            field: "queues.stall_timeout_ms",
            ..
        }
    ));
    assert!(matches!(
        refused("[runtime]\ntimer_tick_ms = 0"),
        ConfigError::OutOfRange {
            field: "runtime.timer_tick_ms",
            ..
        }
    ));
    assert!(matches!(
        refused("[mqtt]\nmax_keepalive = 60\nzero_keepalive = 120"),
        ConfigError::OutOfRange {
            field: "mqtt.zero_keepalive",
            ..
        }
    ));
    assert_eq!(
        refused("[runtime]\nio_uring_entries = 1000"),
        ConfigError::NotPowerOfTwo {
            field: "runtime.io_uring_entries",
            value: 1000
        }
    );
}

#[test]
fn keepalive_is_capped_and_zero_may_be_overridden() {
    let mut m = Config::default().mqtt;
    assert_eq!(m.effective_keepalive(0), 0);
    assert_eq!(m.effective_keepalive(600), 600);
    m.max_keepalive = NonZeroU16::new(120);
    assert_eq!(m.effective_keepalive(600), 120);
    assert_eq!(m.effective_keepalive(30), 30);
    assert_eq!(m.effective_keepalive(0), 0);
    m.zero_keepalive = NonZeroU16::new(60);
    assert_eq!(m.effective_keepalive(0), 60);
}

#[test]
fn scram_users_keep_keys_not_passwords_and_print_back_identically() {
    let text = "[auth]\nexchange_timeout_ms = 500\n\
                [[auth.scram]]\nusername = \"alice\"\npassword = \"wonderland\"\n";
    let c = Config::from_toml_str(text).expect("valid");
    assert_eq!(c.auth.exchange_timeout, Duration::from_millis(500));
    let [alice] = &c.auth.scram[..] else {
        panic!("one user: {:?}", c.auth.scram)
    };
    assert_eq!(alice.salt.len(), scram::SALT_LEN);
    let printed = c.to_toml();
    assert!(!printed.contains("wonderland") && printed.contains("stored_key = "));
    assert!(!format!("{c:?}").contains("wonderland"));
    // The stored form reads back to the same keys (the password is not needed again).
    assert_eq!(Config::from_toml_str(&printed), Ok(c));
}

#[test]
fn unusable_scram_users_are_refused() {
    let user = |body: &str| format!("[[auth.scram]]\nusername = \"u\"\n{body}");
    for body in [
        "",
        "password = \"p\"\nsalt = \"AAAA\"",
        "password = \"p\"\niterations = 1000",
        "salt = \"AAAA\"\nstored_key = \"AAAA\"\nserver_key = \"AAAA\"",
    ] {
        assert!(
            matches!(refused(&user(body)), ConfigError::AuthUser { .. }),
            "{body}"
        );
    }
    let twice = format!(
        "{}{}",
        user("password = \"a\"\n"),
        user("password = \"b\"\n")
    );
    assert_eq!(
        refused(&twice).to_string(),
        "auth.scram user \"u\": listed twice"
    );
}

#[test]
fn errors_read_clearly() {
    let e = ConfigError::OutOfRange {
        field: "mqtt.max_packet_size",
        value: 10,
        min: 128,
        max: 268_435_460,
    };
    assert_eq!(
        e.to_string(),
        "mqtt.max_packet_size = 10 is outside 128..=268435460"
    );
}
