//! Admission of new connections: the shard's connection limit and connection rate limit
//! (checked when a socket is accepted, before its CONNECT is read), bounds on the refused
//! connections being answered and on the TLS handshakes in progress, server redirection (checked on the CONNECT), and what the
//! broker offers every client: enhanced-authentication methods and Response Information.

use super::{Refusal, ShardState};
use crate::auth::Methods;
use crate::auth::acl::AclFile;
use crate::config::Redirect;
use crate::protocol::{MqttString, ProtocolVersion, ReasonCode};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// Refused connections a shard answers at once. Each holds a socket, a read buffer and a task
/// for up to the refusal timeout; beyond this bound a refused connection is closed without a
/// CONNACK, so a flood of connections cannot pile them up.
pub const MAX_REFUSING: usize = 64;
/// Connections a shard lets be in their TLS or WebSocket handshake (up to their CONNECT) at
/// once. Each holds a socket, a TLS state and a task for up to the CONNECT timeout; beyond
/// this bound a new connection on such a listener is closed at once, so a flood of half-done handshakes
/// costs a bounded amount of memory and cannot starve the shard's clients.
pub const MAX_HANDSHAKES: usize = 256;

/// What to do with a freshly accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Read its CONNECT, answer CONNACK with this reason (a 3.1.1 client gets the nearest
    /// return code, 0x03 Server unavailable), then close. Call `end_refusal` when done.
    Refuse(ReasonCode),
    /// Close at once: too many refusals are being answered already.
    Close,
}

/// A token bucket of new connections: `per_second` tokens a second, at most one second's
/// worth saved up (so a burst after a quiet spell is bounded by the rate too).
#[derive(Debug, Clone)]
pub struct ConnectionRate {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl ConnectionRate {
    pub fn new(per_second: NonZeroU32, now: Instant) -> Self {
        let per_second = f64::from(per_second.get());
        Self {
            per_second,
            tokens: per_second,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The redirection every CONNECT gets, ready to put in a CONNACK.
#[derive(Debug, Clone)]
pub(super) struct Redirection {
    reference: MqttString,
    reason: ReasonCode,
}

/// The admission state of a shard.
#[derive(Debug, Default)]
pub(super) struct AdmissionControl {
    /// New connections per second.
    rate: Option<ConnectionRate>,
    /// Refused connections being answered (bounded by `MAX_REFUSING`).
    refusing: usize,
    /// Connections in their TLS or WebSocket handshake (bounded by `MAX_HANDSHAKES`).
    handshakes: usize,
    redirection: Option<Redirection>,
    /// The enhanced-authentication methods offered (from the config).
    pub methods: Methods,
    /// Sent in CONNACK to a 5.0 client that asks for it (Request Response Information 1).
    pub response_information: Option<MqttString>,
    /// The last client id number this shard assigned.
    pub assigned_ids: u64,
    /// `auth.acl_file`: compiled per client at CONNECT.
    pub acl: Option<Arc<AclFile>>,
}

impl AdmissionControl {
    pub fn new(rate: Option<NonZeroU32>, now: Instant) -> Self {
        Self {
            rate: rate.map(|rate| ConnectionRate::new(rate, now)),
            ..Self::default()
        }
    }
}

impl ShardState {
    /// Decides what happens to a socket accepted at `now`. The connection limit comes first,
    /// so a connection refused for it does not use up the rate.
    pub fn on_accept(&mut self, now: Instant) -> Admission {
        self.stats.accepted += 1;
        let admission = &mut self.admission;
        let refusal = if self.conns.len() >= self.limits.max_connections {
            // 3.2.2.2: 0x97 "an implementation or administrative imposed limit has been
            // exceeded" is the configured limit; 0x89 Server busy would tell the client the
            // overload is passing ("try again later"), which a full broker cannot promise.
            Some(ReasonCode::QuotaExceeded)
        } else if admission
            .rate
            .as_mut()
            .is_some_and(|rate| !rate.try_take(now))
        {
            // 3.2.2.2: 0x9F "the connection rate limit has been exceeded".
            Some(ReasonCode::ConnectionRateExceeded)
        } else {
            None
        };
        match refusal {
            None => Admission::Serve,
            Some(reason) if admission.refusing < MAX_REFUSING => {
                admission.refusing += 1;
                Admission::Refuse(reason)
            }
            Some(_) => Admission::Close,
        }
    }

    /// A refusal handed out by `on_accept` is finished (answered or given up).
    pub fn end_refusal(&mut self) {
        self.admission.refusing = self.admission.refusing.saturating_sub(1);
    }

    /// Takes a place for a connection starting its TLS or WebSocket handshake; false when the
    /// shard has `MAX_HANDSHAKES` in progress (close the connection). Give it back with
    /// `end_handshake`.
    pub fn begin_handshake(&mut self) -> bool {
        let free = self.admission.handshakes < MAX_HANDSHAKES;
        self.admission.handshakes += usize::from(free);
        free
    }

    pub fn end_handshake(&mut self) {
        self.admission.handshakes = self.admission.handshakes.saturating_sub(1);
    }

    /// Refused connections being answered now.
    pub fn refusing(&self) -> usize {
        self.admission.refusing
    }

    /// Sends every client to `redirect` from now on (section 4.11); `None` serves them.
    pub fn set_redirect(&mut self, redirect: Option<&Redirect>) {
        self.admission.redirection = redirect.and_then(|r| {
            let reference = MqttString::try_from(r.server_reference.as_str()).ok()?;
            let reason = if r.permanent {
                ReasonCode::ServerMoved
            } else {
                ReasonCode::UseAnotherServer
            };
            Some(Redirection { reference, reason })
        });
    }

    /// Offers these enhanced-authentication methods from now on.
    pub fn set_methods(&mut self, methods: Methods) {
        self.admission.methods = methods;
    }

    /// Checks every client against this ACL from its next CONNECT on (`None`: no checks).
    pub fn set_acl(&mut self, acl: Option<Arc<AclFile>>) {
        self.admission.acl = acl;
    }

    pub fn methods(&self) -> &Methods {
        &self.admission.methods
    }

    /// The Response Information for clients that request it (5.0 section 3.2.2.3.15); `None`
    /// or an empty string: none is sent.
    pub fn set_response_information(&mut self, info: Option<&str>) {
        self.admission.response_information = info
            .filter(|i| !i.is_empty())
            .and_then(|i| MqttString::try_from(i.to_owned()).ok());
    }

    /// The refusal of a redirecting broker: 5.0 gets 0x9C or 0x9D with the Server Reference
    /// (3.2.2.3.16); 3.1.1 has neither and gets 0x03 Server unavailable.
    pub(super) fn redirection(&self, version: ProtocolVersion) -> Option<Refusal> {
        let r = self.admission.redirection.as_ref()?;
        Some(Refusal {
            version,
            reason: r.reason.into(),
            server_reference: Some(r.reference.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::test_clock as clock;
    use std::time::Duration;

    fn rate(per_second: u32, now: Instant) -> ConnectionRate {
        ConnectionRate::new(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN), now)
    }

    #[test]
    fn the_rate_allows_one_seconds_worth_then_refills_with_time() {
        let start = clock();
        let mut r = rate(3, start);
        assert!((0..3).all(|_| r.try_take(start)), "a full bucket holds 3");
        assert!(
            !r.try_take(start),
            "the 4th in the same instant is over the rate"
        );
        assert!(!r.try_take(start + Duration::from_millis(300)));
        assert!(
            r.try_take(start + Duration::from_millis(400)),
            "1/3 s gives one back"
        );
        let later = start + Duration::from_secs(60);
        assert!(
            (0..3).all(|_| r.try_take(later)),
            "a long pause refills to 3"
        );
        assert!(!r.try_take(later), "but not beyond one second's worth");
    }

    #[test]
    fn a_clock_going_backwards_gives_no_tokens() {
        let start = clock() + Duration::from_secs(1);
        let mut r = rate(1, start);
        assert!(r.try_take(start));
        assert!(!r.try_take(start - Duration::from_secs(1)));
        assert!(!r.try_take(start));
    }
}
