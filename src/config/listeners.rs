//! Where clients connect: the `listen` shorthand and the `[[listeners]]` entries (bind
//! address, protocol, anonymous access, TLS), validated into `ListenerConfig`s and printed
//! back. The certificate files themselves are read when the broker starts (`crate::tls`).

use super::{ConfigError, RawConfig, RawListener, RawTls};
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the broker listens with no config at all: loopback only, like Mosquitto 2.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1883";

/// What a listener speaks above TCP (and TLS, when configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Protocol {
    /// MQTT straight over the byte stream.
    #[default]
    #[serde(rename = "mqtt")]
    Mqtt,
    /// MQTT in WebSocket binary frames (RFC 6455; any path, subprotocol `mqtt`).
    #[serde(rename = "websockets")]
    WebSockets,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::WebSockets => "websockets",
        }
    }
}

/// One address the broker accepts connections on. Every shard serves every listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The config key it came from (`listen` or `listeners[i]`), for messages.
    pub name: String,
    pub bind: SocketAddr,
    pub protocol: Protocol,
    /// Whether clients without credentials may connect here (Mosquitto's `allow_anonymous`).
    pub allow_anonymous: bool,
    pub tls: Option<TlsConfig>,
}

impl ListenerConfig {
    /// The URL scheme clients use for it: `mqtt`, `mqtts`, `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        match (self.protocol, self.tls.is_some()) {
            (Protocol::Mqtt, false) => "mqtt",
            (Protocol::Mqtt, true) => "mqtts",
            (Protocol::WebSockets, false) => "ws",
            (Protocol::WebSockets, true) => "wss",
        }
    }
}

/// TLS on a listener. Paths are as written (relative ones to the working directory, as
/// Mosquitto reads them); the files are read at start and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates, PEM, that client certificates are verified against; `None`: client
    /// certificates are not asked for.
    pub client_ca: Option<PathBuf>,
    /// Refuse the handshake of a client without a valid certificate.
    pub require_client_cert: bool,
    /// A verified client certificate's subject CN becomes the client's username.
    pub identity_as_username: bool,
}

impl RawConfig {
    /// The `listen` shorthand (one plain MQTT listener, first) and then `[[listeners]]`; with
    /// neither, the loopback default. Refuses a bad bind address, a bind address used twice,
    /// incomplete TLS settings, and a non-loopback listener that would take anonymous
    /// clients without being told to (`allow_anonymous = true`).
    pub(super) fn validate_listeners(&self) -> Result<Vec<ListenerConfig>, ConfigError> {
        let mut out: Vec<ListenerConfig> = Vec::with_capacity(self.listeners.len() + 1);
        let passwords = !self.auth.password_file.is_empty();
        let shorthand = match &self.listen {
            Some(listen) => Some(listen.as_str()),
            None if self.listeners.is_empty() => Some(DEFAULT_LISTEN),
            None => None,
        };
        if let Some(listen) = shorthand {
            let bind = listen
                .parse()
                .map_err(|_| ConfigError::BadListenAddress(listen.to_owned()))?;
            let allow_anonymous =
                allow_anonymous("listen", bind, self.auth.allow_anonymous, passwords)?;
            out.push(ListenerConfig {
                name: "listen".into(),
                bind,
                protocol: Protocol::Mqtt,
                allow_anonymous,
                tls: None,
            });
        }
        for (i, raw) in self.listeners.iter().enumerate() {
            let listener = raw.validate(
                format!("listeners[{i}]"),
                self.auth.allow_anonymous,
                passwords,
            )?;
            let twice = out
                .iter()
                .find(|l| l.bind == listener.bind && listener.bind.port() != 0);
            if let Some(first) = twice {
                return Err(ConfigError::Listener {
                    key: format!("{}.bind", listener.name),
                    reason: format!("{} is also the address of {}", listener.bind, first.name),
                });
            }
            out.push(listener);
        }
        Ok(out)
    }
}

impl RawListener {
    fn validate(
        &self,
        name: String,
        default_anonymous: Option<bool>,
        passwords: bool,
    ) -> Result<ListenerConfig, ConfigError> {
        let bind = self.bind.parse().map_err(|_| ConfigError::Listener {
            key: format!("{name}.bind"),
            reason: format!("{:?} is not an IP:port socket address", self.bind),
        })?;
        let anonymous = self.allow_anonymous.or(default_anonymous);
        let allow_anonymous = allow_anonymous(&name, bind, anonymous, passwords)?;
        let tls = match &self.tls {
            Some(tls) => Some(tls.validate(&name)?),
            None => None,
        };
        Ok(ListenerConfig {
            name,
            bind,
            protocol: self.protocol,
            allow_anonymous,
            tls,
        })
    }
}

impl RawTls {
    fn validate(&self, listener: &str) -> Result<TlsConfig, ConfigError> {
        let refuse = |key: &str, reason: &str| ConfigError::Listener {
            key: format!("{listener}.tls.{key}"),
            reason: reason.to_owned(),
        };
        let path = |key: &str, value: &str| {
            if value.is_empty() {
                Err(refuse(key, "must name a PEM file"))
            } else {
                Ok(PathBuf::from(value))
            }
        };
        let client_ca = match &self.client_ca {
            Some(ca) => Some(path("client_ca", ca)?),
            None => None,
        };
        if client_ca.is_none() {
            // Only a certificate verified against a CA can be required or name a user.
            if self.require_client_cert {
                return Err(refuse("require_client_cert", "needs client_ca"));
            }
            if self.identity_as_username {
                return Err(refuse("identity_as_username", "needs client_ca"));
            }
        }
        Ok(TlsConfig {
            cert: path("cert", &self.cert)?,
            key: path("key", &self.key)?,
            client_ca,
            require_client_cert: self.require_client_cert,
            identity_as_username: self.identity_as_username,
        })
    }
}

/// Mosquitto 2's rule: where nothing says otherwise, anonymous clients are allowed only on a
/// loopback address. Elsewhere a password file makes it `false`; without one the config must
/// say which it is (the listener's or `[auth]`'s `allow_anonymous`).
fn allow_anonymous(
    name: &str,
    bind: SocketAddr,
    configured: Option<bool>,
    passwords: bool,
) -> Result<bool, ConfigError> {
    match configured {
        Some(allowed) => Ok(allowed),
        None if bind.ip().is_loopback() => Ok(true),
        None if passwords => Ok(false),
        None => Err(ConfigError::Listener {
            key: name.to_owned(),
            reason: format!(
                "{bind} is not a loopback address and no password file is configured: set \
                 allow_anonymous = true (in the listener or in [auth]) to accept anonymous \
                 clients on it, or configure [auth] password_file"
            ),
        }),
    }
}

/// The listeners as the TOML that reads back to them: the `listen` shorthand as the
/// top-level `listen` key with its `allow_anonymous` as `[auth]`'s (the second string, a
/// line for that section), the rest as `[[listeners]]` tables (the third, to be placed after
/// every other table). `allow_anonymous` is left out where the loopback default gives the
/// same, so that a printed config edited to a public address refuses to start rather than
/// take anonymous clients there unasked.
pub(super) fn listeners_toml(listeners: &[ListenerConfig]) -> (String, String, String) {
    let string = |s: &str| toml::Value::String(s.to_owned());
    let path = |p: &PathBuf| string(&p.display().to_string());
    let implicit = |l: &ListenerConfig| l.allow_anonymous && l.bind.ip().is_loopback();
    let mut top = String::new();
    let mut auth =
        String::from("# allow_anonymous = true (the default on loopback listeners only)\n");
    let mut tables = String::new();
    // `[auth] allow_anonymous` is also the default of every `[[listeners]]` entry.
    let mut auth_anonymous = false;
    for l in listeners {
        if l.name == "listen" {
            let _ = writeln!(top, "listen = {}", string(&l.bind.to_string()));
            if !implicit(l) {
                auth_anonymous = true;
                auth = format!("allow_anonymous = {}\n", l.allow_anonymous);
            }
            continue;
        }
        let _ = write!(
            tables,
            "\n[[listeners]]\nbind = {}\nprotocol = {}\n",
            string(&l.bind.to_string()),
            string(l.protocol.name()),
        );
        if auth_anonymous || !implicit(l) {
            let _ = writeln!(tables, "allow_anonymous = {}", l.allow_anonymous);
        }
        if let Some(tls) = &l.tls {
            let _ = write!(
                tables,
                "[listeners.tls]\ncert = {}\nkey = {}\n",
                path(&tls.cert),
                path(&tls.key)
            );
            if let Some(ca) = &tls.client_ca {
                let _ = writeln!(tables, "client_ca = {}", path(ca));
            }
            let _ = write!(
                tables,
                "require_client_cert = {}\nidentity_as_username = {}\n",
                tls.require_client_cert, tls.identity_as_username
            );
        }
    }
    (top, auth, tables)
}
