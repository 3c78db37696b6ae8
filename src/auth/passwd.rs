//! Mosquitto-compatible password files (`password_file`): one `username:hash` per line, the
//! three hash schemes Mosquitto 2.0 and 2.1 write, and their constant-time verification.
//!
//! ```text
//! # comment
//! alice:$7$101$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>      mosquitto_passwd 2.0 default
//! carol:$6$<base64 salt>$<base64 SHA-512(password || salt)>     mosquitto_passwd -H sha512
//! erin:$argon2id$v=19$m=47104,t=1,p=1$<b64 salt>$<b64 hash>     Mosquitto 2.1 with argon2
//! ```
//!
//! `$6$` and `$7$` use standard base64 with padding; the salt is 12 bytes (2.0) or 64 bytes
//! (2.1), the hash always 64. `$argon2id$` is the PHC string libargon2 writes (unpadded
//! base64); 2.1 uses t=1, m=47104 KiB, p=1, a 64-byte salt and a 64-byte hash.
//!
//! Verifying is slow by design: PBKDF2 runs its iterations and Argon2id fills its memory
//! (46 MiB for 2.1's parameters) on every call. Never verify on a shard's event loop; run it
//! on a thread of its own and put a [`super::verified::VerifiedCache`] in front of it so a
//! client that reconnects with the same password does not pay the KDF again.
//!
//! Stricter than Mosquitto where Mosquitto silently guesses: a non-comment line without `:`,
//! a `$7$` iteration count with trailing junk and an unknown scheme are errors naming the line.
//! The password is hashed as the bytes the client sent; Mosquitto stops at the first NUL.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use sha2::{Digest, Sha512};
use std::fmt;
use std::num::NonZeroU32;
use subtle::ConstantTimeEq;

/// Bytes of every `$6$` and `$7$` hash: one SHA-512 output.
pub const HASH_LEN: usize = 64;
/// The salt mosquitto_passwd 2.0 draws for `$6$` and `$7$`.
pub const SALT_LEN_2_0: usize = 12;
/// The salt Mosquitto 2.1 draws for every scheme (its `HASH_LEN`).
pub const SALT_LEN_2_1: usize = 64;
/// mosquitto_passwd 2.0's PBKDF2 iteration count (`PW_DEFAULT_ITERATIONS`).
pub const ITERATIONS_2_0: u32 = 101;
/// Mosquitto 2.1's Argon2id parameters (`MOSQ_ARGON2_T`, `MOSQ_ARGON2_M`, `MOSQ_ARGON2_P`).
pub const ARGON2_T_COST: u32 = 1;
pub const ARGON2_M_COST_KIB: u32 = 47104;
pub const ARGON2_P_COST: u32 = 1;
/// An Argon2id line asking for more memory than this is refused when the file is read, so a
/// typo cannot make every later login allocate gigabytes.
pub const MAX_ARGON2_M_COST_KIB: u32 = 1 << 20;
/// Bounds on Argon2id salts and outputs read from a file (libargon2's own minimums apply too).
const MAX_ARGON2_FIELD: usize = 1024;
/// Mosquitto refuses user names and hashes longer than this.
pub const MAX_FIELD_LEN: usize = 65535;

/// `$6$`/`$7$` base64: Mosquitto writes padding (OpenSSL's BIO); accept it missing too.
const PADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One user's stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum Hash {
    /// `$6$<salt>$<hash>`: SHA-512(password || salt), Mosquitto 1.x and `-H sha512`.
    Sha512(Salted),
    /// `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512, 64-byte output.
    Pbkdf2Sha512 {
        iterations: NonZeroU32,
        salted: Salted,
    },
    /// `$argon2id$v=..$m=..,t=..,p=..$<salt>$<hash>` (PHC string format).
    Argon2id(Argon2id),
}

/// The salt and the 64-byte digest of a `$6$` or `$7$` hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Salted {
    salt: Box<[u8]>,
    hash: [u8; HASH_LEN],
}

/// The decoded fields of a `$argon2id$` PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct Argon2id {
    version: argon2::Version,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Box<[u8]>,
    hash: Box<[u8]>,
}

/// Why one hash string is not one Mosquitto writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    /// Not `$6$`, `$7$` or `$argon2id$`.
    UnknownScheme,
    /// A `$`-separated field is missing.
    Missing(&'static str),
    /// More `$`-separated fields than the scheme has.
    TrailingField,
    /// A number field (iterations, m, t, p, v) is not a positive decimal that fits.
    BadNumber(&'static str),
    /// A field is not valid base64.
    Base64(&'static str),
    /// `$6$`/`$7$` salts are 12 or 64 bytes.
    SaltLength(usize),
    /// `$6$`/`$7$` hashes are 64 bytes.
    HashLength(usize),
    /// Argon2id parameters, salt or output out of range.
    Argon2(String),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownScheme => f.write_str("unknown hash scheme (want $6$, $7$ or $argon2id$)"),
            Self::Missing(field) => write!(f, "hash has no {field} field"),
            Self::TrailingField => f.write_str("hash has more '$' fields than its scheme"),
            Self::BadNumber(field) => write!(f, "hash field {field} is not a positive number"),
            Self::Base64(field) => write!(f, "hash field {field} is not valid base64"),
            Self::SaltLength(n) => write!(f, "salt is {n} bytes (Mosquitto uses 12 or 64)"),
            Self::HashLength(n) => write!(f, "hash is {n} bytes (SHA-512 gives {HASH_LEN})"),
            Self::Argon2(why) => write!(f, "argon2id: {why}"),
        }
    }
}

impl std::error::Error for HashError {}

impl Hash {
    /// Parses the part after `username:`.
    pub fn parse(s: &str) -> Result<Self, HashError> {
        if let Some(rest) = s.strip_prefix("$6$") {
            let mut fields = rest.split('$');
            let salted = Salted::decode(&mut fields)?;
            no_more(fields)?;
            Ok(Self::Sha512(salted))
        } else if let Some(rest) = s.strip_prefix("$7$") {
            let mut fields = rest.split('$');
            let iterations = fields.next().ok_or(HashError::Missing("iterations"))?;
            let iterations = parse_positive(iterations, "iterations")?;
            let salted = Salted::decode(&mut fields)?;
            no_more(fields)?;
            Ok(Self::Pbkdf2Sha512 { iterations, salted })
        } else if let Some(rest) = s.strip_prefix("$argon2id$") {
            Argon2id::decode(rest).map(Self::Argon2id)
        } else {
            Err(HashError::UnknownScheme)
        }
    }

    /// `$6$` as `mosquitto_passwd -H sha512` writes it: SHA-512 over the password then the
    /// salt (12 bytes in 2.0, 64 in 2.1).
    pub fn sha512(password: &[u8], salt: &[u8]) -> Result<Self, HashError> {
        check_salt_len(salt.len())?;
        Ok(Self::Sha512(Salted {
            salt: salt.into(),
            hash: sha512(password, salt),
        }))
    }

    /// `$7$` as mosquitto_passwd writes it (2.0: 101 iterations and a 12-byte salt).
    pub fn pbkdf2_sha512(
        password: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
    ) -> Result<Self, HashError> {
        check_salt_len(salt.len())?;
        Ok(Self::Pbkdf2Sha512 {
            iterations,
            salted: Salted {
                salt: salt.into(),
                hash: pbkdf2_sha512(password, salt, iterations),
            },
        })
    }

    /// `$argon2id$` with Mosquitto 2.1's parameters (t=1, m=47104 KiB, p=1, 64-byte output);
    /// 2.1 draws a 64-byte salt.
    pub fn argon2id(password: &[u8], salt: &[u8]) -> Result<Self, HashError> {
        let mut fields = Argon2id {
            version: argon2::Version::V0x13,
            m_cost: ARGON2_M_COST_KIB,
            t_cost: ARGON2_T_COST,
            p_cost: ARGON2_P_COST,
            salt: salt.into(),
            hash: Box::new([]),
        };
        fields.check(HASH_LEN)?;
        fields.hash = fields.compute(password, HASH_LEN)?;
        Ok(Self::Argon2id(fields))
    }

    /// Whether `password` hashes to this; the digests are compared in constant time. Slow by
    /// design (see the module doc).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Sha512(s) => bool::from(sha512(password, &s.salt).ct_eq(&s.hash)),
            Self::Pbkdf2Sha512 { iterations, salted } => {
                let computed = pbkdf2_sha512(password, &salted.salt, *iterations);
                bool::from(computed.ct_eq(&salted.hash))
            }
            Self::Argon2id(a) => match a.compute(password, a.hash.len()) {
                Ok(computed) => bool::from(computed.ct_eq(&a.hash)),
                Err(_) => false,
            },
        }
    }

    /// Feeds every field that defines this hash to `out`, each length-prefixed, so two
    /// hashes feed the same bytes only when they are the same hash (for cache keys).
    pub(crate) fn feed(&self, out: &mut impl FnMut(&[u8])) {
        let mut field = |bytes: &[u8]| {
            out(&(bytes.len() as u64).to_be_bytes());
            out(bytes);
        };
        match self {
            Self::Sha512(s) => {
                field(b"6");
                field(&s.salt);
                field(&s.hash);
            }
            Self::Pbkdf2Sha512 { iterations, salted } => {
                field(b"7");
                field(&iterations.get().to_be_bytes());
                field(&salted.salt);
                field(&salted.hash);
            }
            Self::Argon2id(a) => {
                field(b"argon2id");
                field(&(a.version as u32).to_be_bytes());
                field(&a.m_cost.to_be_bytes());
                field(&a.t_cost.to_be_bytes());
                field(&a.p_cost.to_be_bytes());
                field(&a.salt);
                field(&a.hash);
            }
        }
    }
}

impl std::str::FromStr for Hash {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        Self::parse(s)
    }
}

/// The encoded form, as it goes after `username:` in the file.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512(s) => write!(
                f,
                "$6${}${}",
                STANDARD.encode(&s.salt),
                STANDARD.encode(s.hash)
            ),
            Self::Pbkdf2Sha512 { iterations, salted } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(&salted.salt),
                STANDARD.encode(salted.hash)
            ),
            Self::Argon2id(a) => write!(
                f,
                "$argon2id$v={}$m={},t={},p={}${}${}",
                a.version as u32,
                a.m_cost,
                a.t_cost,
                a.p_cost,
                STANDARD_NO_PAD.encode(&a.salt),
                STANDARD_NO_PAD.encode(&a.hash)
            ),
        }
    }
}

/// Digests stay out of logs: only the scheme and its cost show.
impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512(_) => f.write_str("Hash::Sha512"),
            Self::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "Hash::Pbkdf2Sha512 {{ iterations: {iterations} }}")
            }
            Self::Argon2id(a) => write!(
                f,
                "Hash::Argon2id {{ m: {}, t: {}, p: {} }}",
                a.m_cost, a.t_cost, a.p_cost
            ),
        }
    }
}

impl fmt::Debug for Salted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salted {{ salt: {} bytes }}", self.salt.len())
    }
}

impl fmt::Debug for Argon2id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Argon2id {{ m: {}, t: {} }}", self.m_cost, self.t_cost)
    }
}

impl Salted {
    /// The `<salt>$<hash>` tail of `$6$` and `$7$`, with Mosquitto's length rules.
    fn decode<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Result<Self, HashError> {
        let salt = fields.next().ok_or(HashError::Missing("salt"))?;
        let salt = PADDED.decode(salt).map_err(|_| HashError::Base64("salt"))?;
        check_salt_len(salt.len())?;
        let hash = fields.next().ok_or(HashError::Missing("hash"))?;
        let hash = PADDED.decode(hash).map_err(|_| HashError::Base64("hash"))?;
        let hash = <[u8; HASH_LEN]>::try_from(hash.as_slice())
            .map_err(|_| HashError::HashLength(hash.len()))?;
        Ok(Self {
            salt: salt.into(),
            hash,
        })
    }
}

impl Argon2id {
    /// `[v=<version>$]m=<m>,t=<t>,p=<p>$<salt>$<hash>`, libargon2's order; a missing version
    /// means 0x10, as libargon2 reads it.
    fn decode(rest: &str) -> Result<Self, HashError> {
        let mut fields = rest.split('$');
        let mut params = fields.next().ok_or(HashError::Missing("m,t,p"))?;
        let mut version = argon2::Version::V0x10;
        if let Some(v) = params.strip_prefix("v=") {
            version = match parse_positive(v, "v")?.get() {
                0x10 => argon2::Version::V0x10,
                0x13 => argon2::Version::V0x13,
                _ => return Err(HashError::BadNumber("v")),
            };
            params = fields.next().ok_or(HashError::Missing("m,t,p"))?;
        }
        let mut costs = params.split(',');
        let mut cost = |key: &'static str| {
            costs
                .next()
                .and_then(|kv| kv.strip_prefix(key))
                .and_then(|kv| kv.strip_prefix('='))
                .ok_or(HashError::Missing(key))
                .and_then(|n| parse_positive(n, key))
        };
        let (m_cost, t_cost, p_cost) = (cost("m")?.get(), cost("t")?.get(), cost("p")?.get());
        if costs.next().is_some() {
            return Err(HashError::TrailingField);
        }
        let salt = fields.next().ok_or(HashError::Missing("salt"))?;
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .map_err(|_| HashError::Base64("salt"))?;
        let hash = fields.next().ok_or(HashError::Missing("hash"))?;
        let hash = STANDARD_NO_PAD
            .decode(hash)
            .map_err(|_| HashError::Base64("hash"))?;
        no_more(fields)?;
        let decoded = Self {
            version,
            m_cost,
            t_cost,
            p_cost,
            salt: salt.into(),
            hash: hash.into(),
        };
        decoded.check(decoded.hash.len())?;
        Ok(decoded)
    }

    /// The bounds checked when the file is read, so `compute` cannot fail later for a valid
    /// line.
    fn check(&self, output_len: usize) -> Result<(), HashError> {
        if self.m_cost > MAX_ARGON2_M_COST_KIB {
            return Err(HashError::Argon2(format!(
                "m={} KiB is above the {MAX_ARGON2_M_COST_KIB} KiB ringmq accepts",
                self.m_cost
            )));
        }
        if self.salt.len() < argon2::MIN_SALT_LEN || self.salt.len() > MAX_ARGON2_FIELD {
            return Err(HashError::Argon2(format!(
                "salt of {} bytes (want {} to {MAX_ARGON2_FIELD})",
                self.salt.len(),
                argon2::MIN_SALT_LEN
            )));
        }
        if output_len > MAX_ARGON2_FIELD {
            return Err(HashError::Argon2(format!(
                "hash of {output_len} bytes (want at most {MAX_ARGON2_FIELD})"
            )));
        }
        self.params(output_len)
            .map(|_| ())
            .map_err(|e| HashError::Argon2(e.to_string()))
    }

    fn params(&self, output_len: usize) -> Result<argon2::Params, argon2::Error> {
        argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(output_len))
    }

    fn compute(&self, password: &[u8], output_len: usize) -> Result<Box<[u8]>, HashError> {
        let argon = |params: argon2::Params| {
            let blocks = params.block_count();
            let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, self.version, params);
            let mut out = vec![0u8; output_len];
            // The memory cost by design: m KiB per verification.
            let mut memory = vec![argon2::Block::default(); blocks];
            argon
                .hash_password_into_with_memory(password, &self.salt, &mut out, &mut memory)
                .map(|()| out.into_boxed_slice())
        };
        self.params(output_len)
            .and_then(argon)
            .map_err(|e| HashError::Argon2(e.to_string()))
    }
}

fn sha512(password: &[u8], salt: &[u8]) -> [u8; HASH_LEN] {
    let mut digest = Sha512::new();
    digest.update(password);
    digest.update(salt);
    digest.finalize().into()
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations.get(), &mut out);
    out
}

fn check_salt_len(len: usize) -> Result<(), HashError> {
    match len {
        SALT_LEN_2_0 | SALT_LEN_2_1 => Ok(()),
        n => Err(HashError::SaltLength(n)),
    }
}

fn no_more<'a>(mut fields: impl Iterator<Item = &'a str>) -> Result<(), HashError> {
    match fields.next() {
        None => Ok(()),
        Some(_) => Err(HashError::TrailingField),
    }
}

/// Digits only (no sign, no junk), at least 1, fits a u32.
fn parse_positive(s: &str, field: &'static str) -> Result<NonZeroU32, HashError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashError::BadNumber(field));
    }
    s.parse::<NonZeroU32>()
        .map_err(|_| HashError::BadNumber(field))
}

mod file;
pub(crate) use file::{Line, lines, split_line};
pub use file::{LineError, LoadError, ParseError, PasswordFile};

#[cfg(test)]
mod tests;
