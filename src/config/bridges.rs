//! The `[[bridges]]` entries: connections to other MQTT brokers in the spirit of Mosquitto's
//! `connection` blocks (address, protocol, session, credentials, TLS, topic rules, reconnect
//! backoff), read, validated into `BridgeConfig`s and printed back. The topic rules are
//! parsed by `crate::bridge::TopicRule`; the TLS files are read when the broker starts.

use super::ConfigError;
use crate::bridge::TopicRule;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which MQTT version the bridge speaks to the remote broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeProtocol {
    Mqtt5,
    Mqtt311,
}

impl BridgeProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mqtt5 => "mqtt5",
            Self::Mqtt311 => "mqtt311",
        }
    }
}

/// One bridge: a client of a remote broker living on one shard of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Unique; names the `$SYS/broker/connection/<name>/state` topic and the local session.
    pub name: String,
    /// Tried in order, from the first again after the last.
    pub addresses: Vec<SocketAddr>,
    pub protocol: BridgeProtocol,
    /// The client id at the remote broker (default: the name).
    pub client_id: String,
    /// false keeps the remote session (and what it queued for us) across outages.
    pub clean_start: bool,
    /// Seconds; the bridge pings the remote this often and gives up on it after 1.5 times.
    pub keepalive: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<BridgeTls>,
    pub topics: Vec<TopicRule>,
    /// 3.1.1: announce the bridge with protocol level 0x84 (Mosquitto's try_private), and
    /// retry without it when the remote refuses.
    pub try_private: bool,
    /// Publish `$SYS/broker/connection/<name>/state` (retained, "1" up, "0" down).
    pub notifications: bool,
    /// Reconnect backoff: the first delay and the most it grows to.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// How long TCP connect, TLS handshake and CONNACK together may take.
    pub connect_timeout: Duration,
}

/// A bridge's TLS towards the remote broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTls {
    /// CA certificates the remote's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate and its key, both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the certificate must carry (default: the address's IP).
    pub server_name: Option<String>,
}

const DEFAULT_KEEPALIVE: u16 = 60;
const DEFAULT_RECONNECT_MIN_MS: u64 = 1_000;
const DEFAULT_RECONNECT_MAX_MS: u64 = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// The longest backoff a config may ask for: one hour.
const MAX_RECONNECT_MS: u64 = 3_600_000;

/// `address`: one `IP:port` or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawAddresses {
    One(String),
    Many(Vec<String>),
}

/// One `[[bridges]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBridge {
    pub name: String,
    pub address: RawAddresses,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    pub client_id: Option<String>,
    #[serde(default)]
    pub clean_start: bool,
    #[serde(default = "default_keepalive")]
    pub keepalive: u64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<RawBridgeTls>,
    pub topics: Vec<String>,
    #[serde(default = "yes")]
    pub try_private: bool,
    #[serde(default = "yes")]
    pub notifications: bool,
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
}

/// A bridge's `tls = { ... }` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBridgeTls {
    pub ca: String,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
}

fn default_protocol() -> String {
    BridgeProtocol::Mqtt5.name().into()
}
fn default_keepalive() -> u64 {
    u64::from(DEFAULT_KEEPALIVE)
}
fn yes() -> bool {
    true
}
fn default_reconnect_min() -> u64 {
    DEFAULT_RECONNECT_MIN_MS
}
fn default_reconnect_max() -> u64 {
    DEFAULT_RECONNECT_MAX_MS
}
fn default_connect_timeout() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

/// Validates every `[[bridges]]` entry; errors name the key (`bridges[0].topics[1]`).
pub(super) fn validate_bridges(raw: Vec<RawBridge>) -> Result<Vec<BridgeConfig>, ConfigError> {
    let mut bridges: Vec<BridgeConfig> = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let key = format!("bridges[{i}]");
        let bridge = raw.validate(&key)?;
        if bridges.iter().any(|b| b.name == bridge.name) {
            return Err(refused(
                &key,
                "name",
                format!("{:?} is the name of another bridge", bridge.name),
            ));
        }
        bridges.push(bridge);
    }
    Ok(bridges)
}

fn refused(key: &str, field: &str, reason: String) -> ConfigError {
    ConfigError::Bridge {
        key: format!("{key}.{field}"),
        reason,
    }
}

fn mqtt_string(key: &str, field: &str, value: &str) -> Result<(), ConfigError> {
    crate::protocol::string::validate(value.as_bytes())
        .map_err(|e| refused(key, field, format!("not a valid MQTT string: {e:?}")))
}

fn range_ms(key: &str, field: &str, value: u64, max: u64) -> Result<Duration, ConfigError> {
    if !(1..=max).contains(&value) {
        return Err(refused(key, field, format!("{value} is outside 1..={max}")));
    }
    Ok(Duration::from_millis(value))
}

/// An optional string where `""` means none (as the issue's example writes `username = ""`).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl RawBridge {
    fn validate(self, key: &str) -> Result<BridgeConfig, ConfigError> {
        let name = self.name;
        if name.is_empty() || name.contains(['/', '+', '#']) {
            return Err(refused(
                key,
                "name",
                format!(
                    "{name:?} must be non-empty, without '/', '+' or '#' (it is a topic level)"
                ),
            ));
        }
        mqtt_string(key, "name", &name)?;
        let written = match self.address {
            RawAddresses::One(a) => vec![a],
            RawAddresses::Many(list) => list,
        };
        if written.is_empty() {
            return Err(refused(key, "address", "no address".into()));
        }
        let mut addresses = Vec::with_capacity(written.len());
        // The first host name given, the name a TLS remote's certificate must then carry.
        let mut host = None;
        for (j, a) in written.iter().enumerate() {
            if let Ok(ip) = a.parse::<SocketAddr>() {
                addresses.push(ip);
                continue;
            }
            addresses
                .extend(resolve(a).map_err(|why| refused(key, &format!("address[{j}]"), why))?);
            if host.is_none() {
                host = a.rsplit_once(':').map(|(h, _)| h.to_owned());
            }
        }
        let protocol = match self.protocol.as_str() {
            "mqtt5" => BridgeProtocol::Mqtt5,
            "mqtt311" => BridgeProtocol::Mqtt311,
            other => {
                return Err(refused(
                    key,
                    "protocol",
                    format!("{other:?} is not one of \"mqtt5\", \"mqtt311\""),
                ));
            }
        };
        let client_id = non_empty(self.client_id).unwrap_or_else(|| name.clone());
        mqtt_string(key, "client_id", &client_id)?;
        let keepalive = u16::try_from(self.keepalive)
            .ok()
            .filter(|k| *k > 0)
            .ok_or_else(|| {
                refused(
                    key,
                    "keepalive",
                    format!("{} is outside 1..=65535", self.keepalive),
                )
            })?;
        let username = non_empty(self.username);
        let password = non_empty(self.password);
        if let Some(u) = &username {
            mqtt_string(key, "username", u)?;
        }
        if password.is_some() && username.is_none() && protocol == BridgeProtocol::Mqtt311 {
            // [MQTT-3.1.2-22] 3.1.1: no password without a user name.
            return Err(refused(
                key,
                "password",
                "needs a username with mqtt311".into(),
            ));
        }
        let mut tls = self.tls.map(|t| t.validate(key)).transpose()?;
        if let Some(t) = &mut tls
            && t.server_name.is_none()
        {
            t.server_name = host;
        }
        if self.topics.is_empty() {
            return Err(refused(
                key,
                "topics",
                "no rule: the bridge would carry nothing".into(),
            ));
        }
        let mut topics = Vec::with_capacity(self.topics.len());
        for (j, text) in self.topics.iter().enumerate() {
            let rule = TopicRule::parse(text)
                .map_err(|e| refused(key, &format!("topics[{j}]"), format!("{text:?}: {e}")))?;
            topics.push(rule);
        }
        let reconnect_min = range_ms(
            key,
            "reconnect_min_ms",
            self.reconnect_min_ms,
            MAX_RECONNECT_MS,
        )?;
        let reconnect_max = range_ms(
            key,
            "reconnect_max_ms",
            self.reconnect_max_ms,
            MAX_RECONNECT_MS,
        )?;
        if reconnect_max < reconnect_min {
            return Err(refused(
                key,
                "reconnect_max_ms",
                format!(
                    "{} is below reconnect_min_ms ({})",
                    self.reconnect_max_ms, self.reconnect_min_ms
                ),
            ));
        }
        Ok(BridgeConfig {
            name,
            addresses,
            protocol,
            client_id,
            clean_start: self.clean_start,
            keepalive,
            username,
            password,
            tls,
            topics,
            try_private: self.try_private,
            notifications: self.notifications,
            reconnect_min,
            reconnect_max,
            connect_timeout: range_ms(key, "connect_timeout_ms", self.connect_timeout_ms, 600_000)?,
        })
    }
}

impl RawBridgeTls {
    fn validate(self, key: &str) -> Result<BridgeTls, ConfigError> {
        let key = format!("{key}.tls");
        if self.ca.is_empty() {
            return Err(refused(
                &key,
                "ca",
                "a CA file is needed to check the remote".into(),
            ));
        }
        let cert = non_empty(self.cert).map(PathBuf::from);
        let private_key = non_empty(self.key).map(PathBuf::from);
        if cert.is_some() != private_key.is_some() {
            return Err(refused(&key, "cert", "cert and key go together".into()));
        }
        Ok(BridgeTls {
            ca: PathBuf::from(self.ca),
            cert,
            key: private_key,
            server_name: non_empty(self.server_name),
        })
    }
}

/// The addresses of `host:port`, resolved once, at start: a shard never waits for DNS, so a
/// remote that moves to another address is found again at the next start.
fn resolve(written: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let found: Vec<SocketAddr> = written
        .to_socket_addrs()
        .map_err(|e| format!("{written:?} is neither IP:port nor a host:port that resolves: {e}"))?
        .collect();
    if found.is_empty() {
        return Err(format!("{written:?} resolves to no address"));
    }
    Ok(found)
}

/// The `[[bridges]]` entries as TOML (a commented example when there are none).
pub(super) fn bridges_toml(bridges: &[BridgeConfig]) -> String {
    let mut out = String::from(
        "# Bridges to other MQTT brokers (docs/bridge.md), e.g.\n\
         #   [[bridges]]\n\
         #   name = \"cloud\"\n\
         #   address = \"127.0.0.1:1884\"    # or a list, tried in order\n\
         #   protocol = \"mqtt5\"            # or \"mqtt311\"\n\
         #   topics = [\"sensors/# out 1 site1/ cloud/site1/\", \"cmd/# in 1 site1/ cloud/site1/\"]\n",
    );
    let s = |v: &str| toml::Value::String(v.to_owned());
    for b in bridges {
        let addresses: Vec<String> = b
            .addresses
            .iter()
            .map(|a| s(&a.to_string()).to_string())
            .collect();
        let topics: Vec<String> = b
            .topics
            .iter()
            .map(|t| s(&t.to_text()).to_string())
            .collect();
        let _ = write!(
            out,
            "\n[[bridges]]\nname = {}\naddress = [{}]\nprotocol = \"{}\"\nclient_id = {}\n\
             clean_start = {}\nkeepalive = {}\ntopics = [{}]\ntry_private = {}\n\
             notifications = {}\nreconnect_min_ms = {}\nreconnect_max_ms = {}\n\
             connect_timeout_ms = {}\n",
            s(&b.name),
            addresses.join(", "),
            b.protocol.name(),
            s(&b.client_id),
            b.clean_start,
            b.keepalive,
            topics.join(", "),
            b.try_private,
            b.notifications,
            b.reconnect_min.as_millis(),
            b.reconnect_max.as_millis(),
            b.connect_timeout.as_millis(),
        );
        if let Some(u) = &b.username {
            let _ = writeln!(out, "username = {}", s(u));
        }
        if let Some(p) = &b.password {
            let _ = writeln!(out, "password = {}", s(p));
        }
        if let Some(t) = &b.tls {
            let path = |p: &PathBuf| s(&p.display().to_string());
            let mut table = format!("ca = {}", path(&t.ca));
            if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
                let _ = write!(table, ", cert = {}, key = {}", path(cert), path(key));
            }
            if let Some(n) = &t.server_name {
                let _ = write!(table, ", server_name = {}", s(n));
            }
            let _ = writeln!(out, "tls = {{ {table} }}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::Direction;
    use crate::config::Config;
    use crate::protocol::QoS;

    const ISSUE_EXAMPLE: &str = r#"
[[bridges]]
name = "cloud"
address = "127.0.0.1:1884"
protocol = "mqtt5"
clean_start = false
keepalive = 60
username = ""
password = ""
topics = ["sensors/# out 1 site1/ cloud/site1/", "cmd/# in 1 site1/ cloud/site1/"]
"#;

    #[test]
    fn the_issue_example_reads_into_typed_values() {
        let config = Config::from_toml_str(ISSUE_EXAMPLE).expect("valid");
        let [b] = &config.bridges[..] else {
            panic!("one bridge: {:?}", config.bridges)
        };
        assert_eq!(b.name, "cloud");
        assert_eq!(b.client_id, "cloud");
        assert_eq!(b.addresses, vec!["127.0.0.1:1884".parse().expect("addr")]);
        assert_eq!(b.protocol, BridgeProtocol::Mqtt5);
        assert_eq!((b.username.as_ref(), b.password.as_ref()), (None, None));
        assert_eq!(b.topics[0].direction, Direction::Out);
        assert_eq!(b.topics[1].direction, Direction::In);
        assert_eq!(b.topics[1].qos, QoS::AtLeastOnce);
        assert!(b.try_private && b.notifications && !b.clean_start);
        assert_eq!(b.reconnect_min, Duration::from_secs(1));
        assert_eq!(b.reconnect_max, Duration::from_secs(30));
    }

    #[test]
    fn a_host_name_is_resolved_at_start_and_names_the_tls_remote() {
        let text = "[[bridges]]\nname = \"b\"\naddress = [\"localhost:1884\", \"127.0.0.2:1\"]\n\
                    topics = [\"#\"]\ntls = { ca = \"/ca.pem\" }\n";
        let config = Config::from_toml_str(text).expect("valid");
        let b = &config.bridges[0];
        assert!(
            b.addresses[..b.addresses.len() - 1]
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 1884),
            "{:?}",
            b.addresses
        );
        assert_eq!(
            b.addresses.last(),
            Some(&"127.0.0.2:1".parse().expect("addr"))
        );
        let tls = b.tls.as_ref().expect("tls");
        assert_eq!(tls.server_name.as_deref(), Some("localhost"));
    }

    #[test]
    fn bridges_print_and_read_back() {
        let text = r##"
[[bridges]]
name = "b"
address = ["127.0.0.1:1", "[::1]:2"]
protocol = "mqtt311"
client_id = "site-1"
username = "u"
password = "p\"w"
clean_start = true
keepalive = 5
tls = { ca = "/ca.pem", cert = "/c.pem", key = "/k.pem", server_name = "remote" }
topics = ["# both 2 \"\" r/", "\"\" out 1 l/t r/t"]
try_private = false
reconnect_min_ms = 10
reconnect_max_ms = 20
"##;
        let config = Config::from_toml_str(text).expect("valid");
        assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config.clone()));
        assert!(Config::default().bridges.is_empty());
    }

    #[test]
    fn bad_bridge_values_are_refused_naming_the_key() {
        let entry = |extra: &str| {
            format!(
                "[[bridges]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\ntopics = [\"#\"]\n{extra}"
            )
        };
        for (text, key) in [
            (
                entry("").replace("topics = [\"#\"]", "topics = [\"#\", \"a out 7\"]"),
                "bridges[0].topics[1]",
            ),
            (
                entry("").replace("topics = [\"#\"]", "topics = []"),
                "bridges[0].topics",
            ),
            (
                entry("").replace("127.0.0.1:1", "localhost"),
                "bridges[0].address[0]",
            ),
            (entry("protocol = \"mqtt3\""), "bridges[0].protocol"),
            (entry("keepalive = 0"), "bridges[0].keepalive"),
            (entry("keepalive = 70000"), "bridges[0].keepalive"),
            (entry("reconnect_min_ms = 0"), "bridges[0].reconnect_min_ms"),
            (
                entry("reconnect_min_ms = 500\nreconnect_max_ms = 100"),
                "bridges[0].reconnect_max_ms",
            ),
            (
                entry("tls = { ca = \"/ca\", cert = \"/c\" }"),
                "bridges[0].tls.cert",
            ),
            (
                entry("").replace("name = \"b\"", "name = \"a/b\""),
                "bridges[0].name",
            ),
            (format!("{}\n{}", entry(""), entry("")), "bridges[1].name"),
            (
                entry("protocol = \"mqtt311\"\npassword = \"p\""),
                "bridges[0].password",
            ),
            (entry("colour = \"red\""), "colour"),
        ] {
            match Config::from_toml_str(&text) {
                Ok(_) => panic!("{text:?} was accepted"),
                Err(e) => assert!(e.to_string().contains(key), "{text:?}: {e}"),
            }
        }
    }
}
