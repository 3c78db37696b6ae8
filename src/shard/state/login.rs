//! Password login at CONNECT against `auth.password_file` (Mosquitto's format), and anonymous
//! clients against their listener's `allow_anonymous`. Hashing is slow by design, so it never runs on
//! the shard: a CONNECT whose credentials this shard has not verified before becomes a
//! `Verification` that the connection task runs on the blocking pool; the result comes back
//! through `verified`. A bound on verifications in flight per shard keeps a storm of wrong
//! passwords from queueing without end (the excess is refused with 0x89 Server busy).

use super::{Refusal, ShardState};
use crate::auth::passwd::{Hash, PasswordFile};
use crate::auth::verified::VerifiedCache;
use crate::protocol::{Connect, ReasonCode};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Verifications one shard has in flight at most.
pub const MAX_VERIFYING: usize = 32;
/// Verified (user, hash, password) triples a shard remembers, most recently used kept.
const CACHE_ENTRIES: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// What a shard's CONNECT login check decided.
#[derive(Debug)]
pub enum Login {
    Accepted,
    Refused(ReasonCode),
    /// Run `Verification::run` off the shard, then hand its result to `verified`.
    Verify(Verification),
}

/// One password check to run off the shard.
pub struct Verification {
    username: String,
    hash: Hash,
    password: Vec<u8>,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Verification")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Verification {
    /// The slow part: hashes the password. Returns itself for `verified`.
    pub fn run(self) -> (Self, bool) {
        let ok = self.hash.verify(&self.password);
        (self, ok)
    }
}

/// The login state of a shard.
#[derive(Default)]
pub(super) struct Logins {
    passwords: Option<Arc<PasswordFile>>,
    cache: Option<VerifiedCache>,
    in_flight: usize,
}

impl std::fmt::Debug for Logins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logins")
            .field("users", &self.passwords.as_ref().map_or(0, |p| p.len()))
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl ShardState {
    /// Checks CONNECTs against this password file from now on (`None`: no passwords).
    /// A reload keeps the verifications in flight counted (each still ends through
    /// `verified`) and keeps the cache: an entry is keyed by the stored hash, so a changed
    /// password never matches one again, and a removed user is refused before the cache is
    /// asked. Unchanged users reconnect without paying the KDF again.
    pub fn set_passwords(&mut self, passwords: Option<Arc<PasswordFile>>) {
        let logins = &mut self.logins;
        match &passwords {
            None => logins.cache = None,
            // A cache keyed from the OS random source; without one every login is verified.
            Some(_) if logins.cache.is_none() => {
                logins.cache = VerifiedCache::with_random_key(CACHE_ENTRIES).ok();
            }
            Some(_) => {}
        }
        logins.passwords = passwords;
    }

    /// The login check of a CONNECT that passed `admit`, on a listener that takes anonymous
    /// clients or not. A client that authenticates with an enhanced-authentication method
    /// (5.0 AUTH) is that method's to check.
    pub fn login(&mut self, connect: &Connect, allow_anonymous: bool) -> Login {
        if connect.properties.authentication_method.is_some() {
            return Login::Accepted;
        }
        let logins = &mut self.logins;
        let Some(username) = &connect.username else {
            return match allow_anonymous {
                true => Login::Accepted,
                // 3.2.2.2: 0x87 Not authorized (3.1.1: 0x05).
                false => Login::Refused(ReasonCode::NotAuthorized),
            };
        };
        let Some(passwords) = &logins.passwords else {
            return Login::Accepted;
        };
        // An unknown user, or none of a password, is refused at once (as Mosquitto does).
        let (Some(hash), Some(password)) = (passwords.get(username.as_str()), &connect.password)
        else {
            return Login::Refused(ReasonCode::BadUserNameOrPassword);
        };
        let user = username.as_str();
        if let Some(cache) = &mut logins.cache
            && cache.contains(user, hash, password)
        {
            return Login::Accepted;
        }
        if logins.in_flight >= MAX_VERIFYING {
            // 3.2.2.2: 0x89 Server busy, "try again later" (3.1.1: 0x03 Server unavailable).
            return Login::Refused(ReasonCode::ServerBusy);
        }
        logins.in_flight += 1;
        Login::Verify(Verification {
            username: user.to_owned(),
            hash: hash.clone(),
            password: password.to_vec(),
        })
    }

    /// The result of a `Verification` that `login` handed out.
    pub fn verified(&mut self, verification: &Verification, ok: bool) -> Login {
        let logins = &mut self.logins;
        logins.in_flight = logins.in_flight.saturating_sub(1);
        // A reload while the hash ran may have changed or removed the user: the password
        // was checked against a hash that is no longer the user's, so it does not count.
        let current = (logins.passwords.as_ref()).map(|p| p.get(&verification.username));
        let stale = current.is_some_and(|hash| hash != Some(&verification.hash));
        if !ok || stale {
            return Login::Refused(ReasonCode::BadUserNameOrPassword);
        }
        if let Some(cache) = &mut logins.cache {
            let v = verification;
            cache.insert(&v.username, &v.hash, &v.password);
        }
        Login::Accepted
    }

    /// A `Verification` that was never run (its connection went away first).
    pub fn verification_abandoned(&mut self) {
        self.logins.in_flight = self.logins.in_flight.saturating_sub(1);
    }
}

impl Login {
    /// The refusal CONNACK of a refused login, in the client's protocol version.
    pub fn refusal(code: ReasonCode, connect: &Connect) -> Refusal {
        Refusal::new(connect.version, code.into())
    }
}
