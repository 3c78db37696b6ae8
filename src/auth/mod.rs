//! MQTT 5.0 enhanced authentication (sections 3.15 and 4.12), sans-IO: which methods the
//! broker offers, and the AUTH packet flow of one connection. No socket, no clock: the shard
//! feeds AUTH packets in and sends what comes out (AUTH, CONNACK or DISCONNECT).
//!
//! - [`Method`] / [`Exchange`]: the plug-in point. A method names itself and starts one
//!   [`Exchange`] per authentication; the exchange keeps the method's state between AUTH
//!   packets and answers each client message with a [`Step`].
//! - [`Methods`]: the registry, method name -> method, built once per shard from the config.
//! - [`Authentication`]: the rules every method shares (same method in every AUTH, which
//!   reason codes are allowed when, at most [`MAX_ROUNDS`] client messages per exchange).
//! - [`scram`]: SCRAM-SHA-256, the built-in method.
//!
//! Plain username/password and authorization, for the CONNECT path:
//!
//! - [`passwd`]: Mosquitto-compatible password files (`$6$`, `$7$`, `$argon2id$`).
//! - [`verified`]: a bounded cache of verified credentials, so reconnects skip the KDF.
//! - [`passwd_cli`]: `ringmq passwd`, the mosquitto_passwd-compatible file editor.
//! - [`acl`]: Mosquitto's `acl_file`, compiled per client into allocation-free checks.
//! - [`files`]: the password and ACL files as one unit, loaded at start and on SIGHUP, and
//!   the channels that give each shard its own copy.

pub mod acl;
pub mod files;
pub mod passwd;
pub mod passwd_cli;
pub mod scram;
pub mod verified;

use crate::protocol::{Auth, MqttString, Packet, ReasonCode};
use bytes::Bytes;
use std::fmt;

/// Client messages one exchange may take before it fails: SCRAM needs two; a client that
/// keeps answering without ever succeeding is cut off.
pub const MAX_ROUNDS: u8 = 8;

/// What a method answers to one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More is needed: send these bytes as the server's Authentication Data (AUTH 0x18).
    Continue(Bytes),
    /// Authenticated; the optional bytes are the server's final Authentication Data.
    Success(Option<Bytes>),
    /// Refused with this reason code (0x87 Not authorized unless the method knows better).
    Failure(ReasonCode),
}

/// One authentication in progress: the state a method keeps between client messages.
pub trait Exchange: fmt::Debug {
    /// Takes the client's Authentication Data (empty when the packet carried none).
    fn step(&mut self, data: &[u8]) -> Step;
}

/// An authentication method the broker offers.
pub trait Method: fmt::Debug {
    /// The Authentication Method name clients put in CONNECT, e.g. `SCRAM-SHA-256`.
    fn name(&self) -> &str;
    /// A fresh exchange, for a CONNECT or a re-authentication.
    fn start(&self) -> Box<dyn Exchange>;
}

/// The methods a shard offers, by name. Empty unless the config sets some up.
#[derive(Debug, Default)]
pub struct Methods {
    methods: Vec<Box<dyn Method>>,
}

impl Methods {
    /// The built-in methods that have users configured.
    pub fn from_credentials(scram: &[scram::ScramCredential]) -> Self {
        let mut methods = Self::default();
        if !scram.is_empty() {
            methods.add(Box::new(scram::Scram::new(scram.to_vec())));
        }
        methods
    }

    /// Offers `method` (replacing one of the same name).
    pub fn add(&mut self, method: Box<dyn Method>) {
        self.methods.retain(|m| m.name() != method.name());
        self.methods.push(method);
    }

    pub fn find(&self, name: &str) -> Option<&dyn Method> {
        self.methods.iter().find(|m| m.name() == name).map(|m| &**m)
    }
}

/// What the shard sends for an AUTH packet (or for the CONNECT that started the exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// AUTH 0x18 Continue authentication with this Authentication Data.
    Continue(Bytes),
    /// CONNACK 0x00 (first authentication) or AUTH 0x00 (re-authentication), carrying the
    /// method and this data.
    Success(Option<Bytes>),
    /// CONNACK (before CONNACK was sent) or DISCONNECT with this reason, then close.
    Fail(ReasonCode),
}

/// The enhanced authentication of one connection: the method it chose in CONNECT and the
/// exchange in progress, if any. Lives as long as the connection, for re-authentication.
#[derive(Debug)]
pub struct Authentication {
    method: MqttString,
    exchange: Option<Box<dyn Exchange>>,
    rounds: u8,
}

impl Authentication {
    /// A CONNECT named `method` with `data`. An unknown method is refused with 0x8C
    /// [MQTT-4.12.0-1].
    pub fn start(
        methods: &Methods,
        method: &MqttString,
        data: Option<&Bytes>,
    ) -> Result<(Self, Reply), ReasonCode> {
        let found = methods
            .find(method.as_str())
            .ok_or(ReasonCode::BadAuthenticationMethod)?;
        let mut auth = Self {
            method: method.clone(),
            exchange: Some(found.start()),
            rounds: 0,
        };
        let reply = auth.step(data);
        Ok((auth, reply))
    }

    /// The method chosen in CONNECT.
    pub fn method(&self) -> &MqttString {
        &self.method
    }

    /// An exchange (first or re-authentication) is waiting for the client.
    pub fn in_progress(&self) -> bool {
        self.exchange.is_some()
    }

    /// An AUTH packet from the client. Protocol errors come back as `Fail(0x82)`.
    pub fn on_auth(&mut self, methods: &Methods, auth: &Auth) -> Reply {
        // [MQTT-4.12.0-5] every AUTH carries the method of the CONNECT; [MQTT-4.12.1-1] so
        // does a re-authentication.
        if auth.properties.authentication_method.as_ref() != Some(&self.method) {
            return Reply::Fail(ReasonCode::ProtocolError);
        }
        match (auth.reason, self.exchange.is_some()) {
            // [MQTT-4.12.0-3] the client answers the server's AUTH with 0x18.
            (ReasonCode::ContinueAuthentication, true) => {}
            // [MQTT-4.12.1-1] 0x19 starts a re-authentication, once the last one is over.
            (ReasonCode::ReAuthenticate, false) => match methods.find(self.method.as_str()) {
                Some(method) => {
                    self.exchange = Some(method.start());
                    self.rounds = 0;
                }
                None => return Reply::Fail(ReasonCode::BadAuthenticationMethod),
            },
            // 0x00 is the server's to send; 0x18 with nothing to continue, or 0x19 in the
            // middle of an exchange, breaks the flow of 4.12.
            _ => return Reply::Fail(ReasonCode::ProtocolError),
        }
        self.step(auth.properties.authentication_data.as_ref())
    }

    fn step(&mut self, data: Option<&Bytes>) -> Reply {
        let Some(exchange) = self.exchange.as_mut() else {
            return Reply::Fail(ReasonCode::ProtocolError);
        };
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            self.exchange = None;
            return Reply::Fail(ReasonCode::NotAuthorized);
        }
        let data = data.map_or(&[][..], |d| &d[..]);
        match exchange.step(data) {
            Step::Continue(data) => Reply::Continue(data),
            Step::Success(data) => {
                self.exchange = None;
                Reply::Success(data)
            }
            Step::Failure(reason) => {
                self.exchange = None;
                Reply::Fail(reason)
            }
        }
    }

    /// An AUTH packet from the server with this connection's method [MQTT-4.12.0-5].
    pub fn auth_packet(&self, reason: ReasonCode, data: Option<Bytes>) -> Packet {
        let mut auth = Auth {
            reason,
            properties: Default::default(),
        };
        auth.properties.authentication_method = Some(self.method.clone());
        auth.properties.authentication_data = data;
        Packet::Auth(auth)
    }
}

#[cfg(test)]
mod tests;
