//! SCRAM-SHA-256 (RFC 5802 with the hash of RFC 7677), server side, as an MQTT 5.0
//! enhanced-authentication method. The Authentication Data of each packet is one SCRAM
//! message:
//!
//! ```text
//! CONNECT  client-first  n,,n=user,r=<client nonce>
//! AUTH 18  server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! AUTH 18  client-final  c=biws,r=<nonce>,p=<proof>
//! CONNACK  server-final  v=<server signature>          (AUTH 0x00 when re-authenticating)
//! ```
//!
//! The broker keeps no password: only the salt, the iteration count, StoredKey and ServerKey
//! of each user, derived once when the config is read. No channel binding (`p=` is refused),
//! no authorization identity, user names compared as bytes (no SASLprep).

use super::{Exchange, Method, Step};
use crate::protocol::ReasonCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::num::NonZeroU32;
use std::rc::Rc;
use subtle::ConstantTimeEq;

/// The Authentication Method name (the IANA SASL mechanism name).
pub const METHOD: &str = "SCRAM-SHA-256";
/// RFC 7677 section 4: the iteration count SHOULD be at least 4096.
pub const MIN_ITERATIONS: u32 = 4096;
/// Bytes of salt generated for a user configured with a password.
pub const SALT_LEN: usize = 16;
/// Random bytes behind each server nonce (base64: 24 printable characters, never a comma).
const NONCE_BYTES: usize = 18;
/// A client nonce or user name longer than this is refused (bounds the exchange state).
const MAX_FIELD: usize = 255;

type HmacSha256 = Hmac<Sha256>;

/// What the broker stores for one user (RFC 5802 section 3): enough to check a proof and to
/// prove itself, not enough to log in as the user.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub username: String,
    pub salt: Vec<u8>,
    pub iterations: NonZeroU32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramCredential {
    /// Derives the keys from a password: SaltedPassword = Hi(password, salt, i) (PBKDF2 with
    /// HMAC-SHA-256), StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
    /// HMAC(SaltedPassword, "Server Key").
    pub fn from_password(
        username: String,
        password: &str,
        salt: Vec<u8>,
        iterations: NonZeroU32,
    ) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations.get(), &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        Self {
            username,
            salt,
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }
}

impl fmt::Debug for ScramCredential {
    /// Keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("username", &self.username)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts a key of any length, so this cannot fail.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `len` bytes from the OS random source.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// The method: the configured users plus a secret key that makes up a stable salt for
/// unknown user names, so a client cannot tell a wrong user from a wrong password
/// (RFC 5802 section 5.1, "simulate").
#[derive(Debug)]
pub struct Scram {
    users: Rc<Users>,
}

struct Users {
    list: Vec<ScramCredential>,
    decoy_key: [u8; 32],
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("list", &self.list)
            .finish_non_exhaustive()
    }
}

impl Scram {
    pub fn new(list: Vec<ScramCredential>) -> Self {
        // Derived from the users' ServerKeys (secret, and the same in every shard), so an
        // unknown user gets the same decoy salt whichever shard is its client id's home.
        let mut hasher = Sha256::new();
        hasher.update(b"ringmq SCRAM decoy salt");
        for user in &list {
            hasher.update(user.server_key);
        }
        let decoy_key = hasher.finalize().into();
        Self {
            users: Rc::new(Users { list, decoy_key }),
        }
    }

    /// An exchange whose server nonce is `nonce` (tests use a fixed one).
    fn exchange_with_nonce(&self, nonce: String) -> ScramExchange {
        ScramExchange {
            users: Rc::clone(&self.users),
            server_nonce: nonce,
            state: State::ClientFirst,
        }
    }
}

impl Method for Scram {
    fn name(&self) -> &str {
        METHOD
    }

    fn start(&self) -> Box<dyn Exchange> {
        // Failing to read randomness leaves an all-zero nonce; the exchange then refuses
        // rather than run with a predictable one.
        let nonce = random_bytes(NONCE_BYTES)
            .map(|b| BASE64.encode(b))
            .unwrap_or_default();
        Box::new(self.exchange_with_nonce(nonce))
    }
}

/// One SCRAM exchange.
#[derive(Debug)]
struct ScramExchange {
    users: Rc<Users>,
    server_nonce: String,
    state: State,
}

#[derive(Debug)]
enum State {
    ClientFirst,
    ClientFinal {
        /// Index into the users, `None` for an unknown user (the proof then always fails).
        user: Option<usize>,
        gs2_header: String,
        nonce: String,
        /// client-first-message-bare "," server-first-message ","
        auth_prefix: String,
    },
    Done,
}

/// The parts of a client-first-message that matter.
struct ClientFirst<'a> {
    gs2_header: &'a str,
    bare: &'a str,
    username: String,
    nonce: &'a str,
}

impl Exchange for ScramExchange {
    fn step(&mut self, data: &[u8]) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => self.on_client_first(data),
            State::ClientFinal {
                user,
                gs2_header,
                nonce,
                auth_prefix,
            } => self.on_client_final(data, user, &gs2_header, &nonce, &auth_prefix),
            State::Done => Step::Failure(ReasonCode::ProtocolError),
        }
    }
}

impl ScramExchange {
    fn on_client_first(&mut self, data: &[u8]) -> Step {
        let Some(first) = std::str::from_utf8(data).ok().and_then(parse_client_first) else {
            return Step::Failure(ReasonCode::NotAuthorized);
        };
        if self.server_nonce.is_empty() {
            return Step::Failure(ReasonCode::UnspecifiedError);
        }
        let users = &self.users;
        let user = users.list.iter().position(|u| u.username == first.username);
        let (salt, iterations) = match user.and_then(|i| users.list.get(i)) {
            Some(u) => (u.salt.clone(), u.iterations.get()),
            None => {
                let decoy = hmac(&users.decoy_key, first.username.as_bytes());
                (decoy[..SALT_LEN].to_vec(), MIN_ITERATIONS)
            }
        };
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(salt));
        let auth_prefix = format!("{},{server_first},", first.bare);
        self.state = State::ClientFinal {
            user,
            gs2_header: first.gs2_header.to_owned(),
            nonce,
            auth_prefix,
        };
        Step::Continue(Bytes::from(server_first))
    }

    fn on_client_final(
        &mut self,
        data: &[u8],
        user: Option<usize>,
        gs2_header: &str,
        nonce: &str,
        auth_prefix: &str,
    ) -> Step {
        let refused = Step::Failure(ReasonCode::NotAuthorized);
        let Ok(text) = std::str::from_utf8(data) else {
            return refused;
        };
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return refused;
        };
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|c| c.strip_prefix("c="));
        let echoed = fields.next().and_then(|r| r.strip_prefix("r="));
        // The channel binding echoes the gs2 header; the nonce is the combined one.
        if binding.and_then(|c| BASE64.decode(c).ok()).as_deref() != Some(gs2_header.as_bytes())
            || echoed != Some(nonce)
        {
            return refused;
        }
        let (Some(user), Ok(proof)) = (
            user.and_then(|i| self.users.list.get(i)),
            BASE64.decode(proof),
        ) else {
            return refused;
        };
        let auth_message = format!("{auth_prefix}{without_proof}");
        if !proof_is_valid(user, auth_message.as_bytes(), &proof) {
            return refused;
        }
        let signature = hmac(&user.server_key, auth_message.as_bytes());
        Step::Success(Some(Bytes::from(format!("v={}", BASE64.encode(signature)))))
    }
}

/// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is valid when
/// H(ClientKey) equals StoredKey, compared in constant time.
fn proof_is_valid(user: &ScramCredential, auth_message: &[u8], proof: &[u8]) -> bool {
    if proof.len() != 32 {
        return false;
    }
    let signature = hmac(&user.stored_key, auth_message);
    let mut client_key = [0u8; 32];
    for (key, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
        *key = p ^ s;
    }
    let stored: [u8; 32] = Sha256::digest(client_key).into();
    stored.ct_eq(&user.stored_key).into()
}

/// `gs2-header client-first-message-bare` (RFC 5802 section 7). Only `n` and `y` (no
/// channel binding) and no authorization identity are accepted; mandatory extensions
/// (`m=`) are refused.
fn parse_client_first(text: &str) -> Option<ClientFirst<'_>> {
    let (cbind, rest) = text.split_once(',')?;
    let (authzid, bare) = rest.split_once(',')?;
    if !matches!(cbind, "n" | "y") || !authzid.is_empty() {
        return None;
    }
    let gs2_header = &text[..text.len() - bare.len()];
    let mut fields = bare.split(',');
    let username = decode_saslname(fields.next()?.strip_prefix("n=")?)?;
    let nonce = fields.next()?.strip_prefix("r=")?;
    let printable = |c: char| c.is_ascii_graphic() && c != ',';
    if nonce.is_empty() || nonce.len() > MAX_FIELD || !nonce.chars().all(printable) {
        return None;
    }
    if username.is_empty() || username.len() > MAX_FIELD {
        return None;
    }
    Some(ClientFirst {
        gs2_header,
        bare,
        username,
        nonce,
    })
}

/// A saslname: `=2C` stands for `,` and `=3D` for `=`; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3)? {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677_user() -> ScramCredential {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let iterations = NonZeroU32::new(4096).expect("non-zero");
        ScramCredential::from_password("user".into(), "pencil", salt, iterations)
    }

    fn exchange() -> ScramExchange {
        Scram::new(vec![rfc7677_user()]).exchange_with_nonce(SERVER_NONCE.into())
    }

    #[test]
    fn rfc7677_test_vector_authenticates_and_signs() {
        let mut ex = exchange();
        assert_eq!(
            ex.step(CLIENT_FIRST.as_bytes()),
            Step::Continue(Bytes::from_static(SERVER_FIRST.as_bytes()))
        );
        assert_eq!(
            ex.step(CLIENT_FINAL.as_bytes()),
            Step::Success(Some(Bytes::from_static(SERVER_FINAL.as_bytes())))
        );
        // The exchange is over: anything more is refused.
        assert_eq!(
            ex.step(CLIENT_FINAL.as_bytes()),
            Step::Failure(ReasonCode::ProtocolError)
        );
    }

    #[test]
    fn a_wrong_proof_is_not_authorized() {
        let mut ex = exchange();
        ex.step(CLIENT_FIRST.as_bytes());
        let wrong = CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
        assert_eq!(
            ex.step(wrong.as_bytes()),
            Step::Failure(ReasonCode::NotAuthorized)
        );
    }

    #[test]
    fn a_changed_nonce_or_binding_is_not_authorized() {
        for bad in [
            CLIENT_FINAL.replace("r=rOpr", "r=xOpr"),
            CLIENT_FINAL.replace("c=biws", "c=eSws"),
            CLIENT_FINAL.replace(",p=", ",q="),
        ] {
            let mut ex = exchange();
            ex.step(CLIENT_FIRST.as_bytes());
            assert_eq!(
                ex.step(bad.as_bytes()),
                Step::Failure(ReasonCode::NotAuthorized),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unknown_user_gets_a_stable_decoy_salt_then_fails() {
        let scram = Scram::new(vec![rfc7677_user()]);
        let first = |scram: &Scram| match scram
            .exchange_with_nonce(SERVER_NONCE.into())
            .step(b"n,,n=mallory,r=abc")
        {
            Step::Continue(data) => data,
            other => panic!("{other:?}"),
        };
        let one = first(&scram);
        assert_eq!(one, first(&scram), "same user, same salt");
        assert!(one.ends_with(b",i=4096"));
        let mut ex = scram.exchange_with_nonce(SERVER_NONCE.into());
        ex.step(b"n,,n=mallory,r=abc");
        let last =
            format!("c=biws,r=abc{SERVER_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(
            ex.step(last.as_bytes()),
            Step::Failure(ReasonCode::NotAuthorized)
        );
    }

    #[test]
    fn malformed_client_first_messages_are_refused() {
        for bad in [
            "",
            "n,,r=abc",
            "p=tls-unique,,n=user,r=abc",
            "n,a=admin,n=user,r=abc",
            "n,,n=us=er,r=abc",
            "n,,n=user,r=",
            "n,,m=ext,n=user,r=abc",
        ] {
            let mut ex = exchange();
            assert_eq!(
                ex.step(bad.as_bytes()),
                Step::Failure(ReasonCode::NotAuthorized),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn saslnames_unescape_comma_and_equals() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=2"), None);
        assert_eq!(decode_saslname("a=41"), None);
    }

    #[test]
    fn credentials_keep_keys_out_of_debug_output() {
        let text = format!("{:?}", rfc7677_user());
        assert!(
            text.contains("user") && !text.contains("stored_key"),
            "{text}"
        );
    }
}
