//! Unit tests of the configuration: defaults, reading back what is printed, and the refusal
//! of each kind of bad value.

use super::validate::available_cores;
use super::*;
use crate::auth::scram;

fn refused(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_are_valid_and_match_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.listen, SocketAddr::from(([0, 0, 0, 0], 1883)));
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
    c.listen = SocketAddr::from(([127, 0, 0, 1], 18830));
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
