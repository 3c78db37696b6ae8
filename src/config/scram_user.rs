//! One `[[auth.scram]]` user: its stored SCRAM-SHA-256 keys decoded from base64 (or derived
//! from a password with a fresh salt), and printed back in the stored form.

use super::{ConfigError, RawScramUser};
use crate::auth::scram::{self, ScramCredential};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::num::NonZeroU32;

impl RawScramUser {
    pub(super) fn validate(self) -> Result<ScramCredential, ConfigError> {
        let username = self.username;
        let refuse = |reason| ConfigError::AuthUser {
            username: username.clone(),
            reason,
        };
        if username.is_empty() || username.len() > 255 {
            return Err(refuse("the user name must have 1 to 255 bytes"));
        }
        let iterations = self.iterations.unwrap_or(scram::MIN_ITERATIONS);
        let iterations = NonZeroU32::new(iterations)
            .filter(|i| i.get() >= scram::MIN_ITERATIONS)
            .ok_or_else(|| refuse("iterations must be at least 4096 (RFC 7677)"))?;
        let stored = (self.salt, self.stored_key, self.server_key);
        match (self.password, stored) {
            (Some(password), (None, None, None)) => {
                let salt = scram::random_bytes(scram::SALT_LEN)
                    .map_err(|_| refuse("no OS randomness for the salt"))?;
                Ok(ScramCredential::from_password(
                    username.clone(),
                    &password,
                    salt,
                    iterations,
                ))
            }
            (None, (Some(salt), Some(stored_key), Some(server_key))) => {
                let salt = BASE64.decode(salt).ok().filter(|s| !s.is_empty());
                let key = |k: String| {
                    BASE64
                        .decode(k)
                        .ok()
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                };
                match (salt, key(stored_key), key(server_key)) {
                    (Some(salt), Some(stored_key), Some(server_key)) => Ok(ScramCredential {
                        username: username.clone(),
                        salt,
                        iterations,
                        stored_key,
                        server_key,
                    }),
                    _ => Err(refuse(
                        "salt, stored_key and server_key must be base64 (keys of 32 bytes)",
                    )),
                }
            }
            _ => Err(refuse(
                "give either password or salt + stored_key + server_key",
            )),
        }
    }
}

/// One SCRAM user in the stored form (no password to print).
pub(super) fn scram_user_toml(user: &ScramCredential) -> String {
    format!(
        "[[auth.scram]]\nusername = {}\niterations = {}\nsalt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
        toml::Value::String(user.username.clone()),
        user.iterations,
        BASE64.encode(&user.salt),
        BASE64.encode(user.stored_key),
        BASE64.encode(user.server_key),
    )
}
