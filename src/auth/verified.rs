//! A bounded cache of (user, stored hash, password) triples that verified, so a client that
//! reconnects with the same credentials does not pay PBKDF2 or Argon2id again.
//!
//! The cache stores no password and no hash: an entry is keyed by HMAC-SHA256(k, user,
//! hash) and holds HMAC-SHA256(k, user, hash, password), under a key `k` drawn once per
//! cache. A changed password file changes the hash, so stale entries never match again and
//! age out. The price: whoever can read the broker's memory can guess the passwords of the
//! cached users at HMAC speed instead of KDF speed, so keep the capacity to the clients that
//! reconnect often. Only successes are cached; a wrong password always pays the KDF.
//!
//! Checks allocate nothing; an insert into a full cache evicts the least recently used entry
//! (a linear scan, cheap next to the KDF that preceded it).

use super::passwd::Hash;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;
type Digest = [u8; 32];
/// HMAC-SHA256 keys of one SHA-256 block need neither hashing nor padding.
pub const KEY_LEN: usize = 64;

/// Verified credentials, most recently used kept.
pub struct VerifiedCache {
    /// The HMAC already keyed; cloned for each digest.
    keyed: HmacSha256,
    capacity: NonZeroUsize,
    /// Counts uses; an entry's `used` is the count at its last hit or insert.
    clock: u64,
    entries: HashMap<Digest, Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    proof: Digest,
    used: u64,
}

impl VerifiedCache {
    /// A cache keyed with `key`, which must be secret and random (see `with_random_key`).
    pub fn new(capacity: NonZeroUsize, key: [u8; KEY_LEN]) -> Self {
        Self {
            keyed: <HmacSha256 as KeyInit>::new(&key.into()),
            capacity,
            clock: 0,
            entries: HashMap::with_capacity(capacity.get()),
        }
    }

    /// A cache keyed from the OS random source.
    pub fn with_random_key(capacity: NonZeroUsize) -> Result<Self, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        Ok(Self::new(capacity, key))
    }

    /// Whether `password` verified against `hash` for `username` before. Fast.
    pub fn contains(&mut self, username: &str, hash: &Hash, password: &[u8]) -> bool {
        let (id, proof) = self.digests(username, hash, password);
        self.clock += 1;
        match self.entries.get_mut(&id) {
            Some(entry) if bool::from(entry.proof.ct_eq(&proof)) => {
                entry.used = self.clock;
                true
            }
            _ => false,
        }
    }

    /// Records that `password` verified against `hash` for `username`.
    pub fn insert(&mut self, username: &str, hash: &Hash, password: &[u8]) {
        let (id, proof) = self.digests(username, hash, password);
        self.clock += 1;
        if self.entries.len() >= self.capacity.get() && !self.entries.contains_key(&id) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let used = self.clock;
        self.entries.insert(id, Entry { proof, used });
    }

    /// `contains`, else the slow `hash.verify` and, on success, `insert`.
    pub fn verify(&mut self, username: &str, hash: &Hash, password: &[u8]) -> bool {
        if self.contains(username, hash, password) {
            return true;
        }
        let ok = hash.verify(password);
        if ok {
            self.insert(username, hash, password);
        }
        ok
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entry id (user and hash) and the proof (those and the password); every field is
    /// length-prefixed so no two different triples feed the same bytes.
    fn digests(&self, username: &str, hash: &Hash, password: &[u8]) -> (Digest, Digest) {
        let mut mac = self.keyed.clone();
        let mut feed = |bytes: &[u8]| mac.update(bytes);
        feed(&(username.len() as u64).to_be_bytes());
        feed(username.as_bytes());
        hash.feed(&mut feed);
        let mut id_mac = mac.clone();
        id_mac.update(b"id");
        mac.update(b"pw");
        mac.update(&(password.len() as u64).to_be_bytes());
        mac.update(password);
        (
            id_mac.finalize().into_bytes().into(),
            mac.finalize().into_bytes().into(),
        )
    }
}

impl fmt::Debug for VerifiedCache {
    /// The key and the proofs stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("capacity", &self.capacity)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn cache(capacity: usize) -> VerifiedCache {
        VerifiedCache::new(NonZeroUsize::new(capacity).expect("nonzero"), [7; KEY_LEN])
    }

    /// Cheap hashes (one PBKDF2 iteration) with distinct salts.
    fn hash(password: &[u8], salt: u8) -> Hash {
        let iterations = NonZeroU32::new(1).expect("nonzero");
        Hash::pbkdf2_sha512(password, &[salt; 12], iterations).expect("valid salt")
    }

    #[test]
    fn a_verified_triple_is_found_and_others_are_not() {
        let mut c = cache(4);
        let h = hash(b"pw", 1);
        assert!(!c.contains("u", &h, b"pw"));
        assert!(c.verify("u", &h, b"pw"));
        assert!(c.contains("u", &h, b"pw"));
        assert!(!c.contains("u", &h, b"pw2"));
        assert!(!c.contains("v", &h, b"pw"));
        assert!(!c.contains("u", &hash(b"pw", 2), b"pw"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn wrong_passwords_are_never_cached() {
        let mut c = cache(4);
        let h = hash(b"pw", 1);
        assert!(!c.verify("u", &h, b"nope"));
        assert!(c.is_empty());
    }

    #[test]
    fn field_boundaries_do_not_collide() {
        let mut c = cache(4);
        let h = hash(b"pw", 1);
        c.insert("ab", &h, b"c");
        assert!(!c.contains("a", &h, b"bc"));
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used() {
        let mut c = cache(2);
        let (a, b, d) = (hash(b"a", 1), hash(b"b", 2), hash(b"d", 3));
        c.insert("a", &a, b"a");
        c.insert("b", &b, b"b");
        assert!(c.contains("a", &a, b"a"));
        c.insert("d", &d, b"d");
        assert_eq!(c.len(), 2);
        assert!(c.contains("a", &a, b"a"));
        assert!(!c.contains("b", &b, b"b"));
        assert!(c.contains("d", &d, b"d"));
    }

    #[test]
    fn reinserting_does_not_evict() {
        let mut c = cache(1);
        let a = hash(b"a", 1);
        c.insert("a", &a, b"a");
        c.insert("a", &a, b"a");
        assert!(c.contains("a", &a, b"a"));
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn caches_with_other_keys_do_not_share_entries() {
        let h = hash(b"pw", 1);
        let mut one = cache(1);
        one.insert("u", &h, b"pw");
        let mut other = VerifiedCache::with_random_key(NonZeroUsize::MIN).expect("random");
        assert!(!other.contains("u", &h, b"pw"));
        assert!(!format!("{one:?}").contains("proof"));
    }
}
