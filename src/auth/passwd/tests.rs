//! Password-file fixtures from the real mosquitto_passwd 2.0 and lines built the way
//! Mosquitto 2.1 builds them; parse errors by line.

use super::*;

/// Written by mosquitto_passwd 2.0.11 (Debian 12), unedited:
///
/// ```text
/// mosquitto_passwd -c -b pw alice 'correct horse'
/// mosquitto_passwd -b pw bob 'hunter2'
/// mosquitto_passwd -H sha512 -b pw carol 's3cret'
/// mosquitto_passwd -b pw 'dave smith' 'pässwörd'
/// ```
const MOSQUITTO_2_0: &str = "\
alice:$7$101$L+wW2uU06L0B0a8G$UrgEIvxPpYu4BFFY/mZz4AUEEmDkny8v1y47K9Z1S2hFc6q5vnlrVQo3xcJxOAFHyFB5t/VwPZJfbiVSSBhVWg==
bob:$7$101$imss18G9CAAAuWEe$h8kRAV3cw75kkbaolkDzy6h4WckYJKVDU4NtaPpDzC/kI/vUP7XOqRCH8epOY1LMJPjYRApuAwpQlaHLGQNgyw==
carol:$6$+7KuOUYcDVfVcjzd$dtBKekg3sBBbFpds8v2iXJIOjEuNrL0IMAoU3ocjMPKO6QbVQdyiEOG8OS7S+5O0khsNo9pDUtuPCjkDUxxvtA==
dave smith:$7$101$7CH3aPA18FpLTQ8H$aq/DdqiObN3oPCd7yALwyk3o0VGx2zcdv4kkeHBfCTZ8RMgax0gwKTxfHITygkaYDuWM3J3eHMuPBwQ7z/azwA==
";

/// Mosquitto 2.1's `$6$` and `$7$`: a 64-byte salt (here bytes 0..64), the same encoding
/// (`libcommon/password_common.c`), 1000 iterations for `$7$` (its `PW_DEFAULT_ITERATIONS`).
/// Built with Python's hashlib (OpenSSL), not with this crate:
/// `sha512(b'correct horse' + salt)` and `pbkdf2_hmac('sha512', b'correct horse', salt, 1000, 64)`.
const SHA512_2_1: &str = "$6$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==$29QtyxbW0Qth2GH5GN0ihmagtB/755oiG+oG0UjEg6L9UK/JDvWsZp5ejiy5IkbcHEawwhh/SPu9ZHDfEL2J9A==";
const PBKDF2_2_1: &str = "$7$1000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==$53KiEygVzVVEVUVTe4h79yMtYp0OxxoKFip82vf7OCrEbcm4/E88oGkCyN0NhQ7fLOSBIpiITuELG/0ldDPFMQ==";

/// Mosquitto 2.1's `$argon2id$`: `argon2id_hash_encoded(t=1, m=47104, p=1, 64-byte salt,
/// 64-byte hash)`, produced by the reference libargon2 command line with the same call:
/// `printf 'correct horse' | argon2 "$SALT" -id -t 1 -k 47104 -p 1 -l 64 -e`.
const ARGON2_SALT: &[u8] = b"ringmq-fixture-salt-of-64-bytes-as-mosquitto-2.1-draws-its-salts";
const ARGON2_2_1: &str = "$argon2id$v=19$m=47104,t=1,p=1$cmluZ21xLWZpeHR1cmUtc2FsdC1vZi02NC1ieXRlcy1hcy1tb3NxdWl0dG8tMi4xLWRyYXdzLWl0cy1zYWx0cw$LVhl1ZtMkmA7T4Y1i/gnTVlpm58EGSxl3BtmqCG3NvW0gQvuU3u5mFLZW1iHgYUwD7NLqguX9lfvOnBIIljWFA";
/// Cheap parameters from the same tool, for the checks that need no 46 MiB:
/// `printf 'correct horse' | argon2 somesaltsomesalt -id -t 2 -k 1024 -p 2 -l 32 -e`.
const ARGON2_SMALL: &str = "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$tsO6Y2aSBljG2z0xzqpPrCfUfGL6p4s+3/dK55iDYUs";

fn hash(s: &str) -> Hash {
    Hash::parse(s).expect("valid fixture hash")
}

fn parse_err(text: &str) -> ParseError {
    PasswordFile::parse(text.as_bytes()).expect_err("file should be refused")
}

#[test]
fn mosquitto_2_0_file_verifies_each_user() {
    let file = PasswordFile::parse(MOSQUITTO_2_0.as_bytes()).expect("valid file");
    assert_eq!(file.len(), 4);
    for (user, password) in [
        ("alice", "correct horse"),
        ("bob", "hunter2"),
        ("carol", "s3cret"),
        ("dave smith", "pässwörd"),
    ] {
        assert!(file.verify(user, password.as_bytes()), "{user}");
        assert!(!file.verify(user, b"wrong"), "{user}");
        assert!(!file.verify(user, b""), "{user}");
    }
    assert!(!file.verify("mallory", b"correct horse"));
    assert!(matches!(
        file.get("alice"),
        Some(Hash::Pbkdf2Sha512 { iterations, .. }) if iterations.get() == ITERATIONS_2_0
    ));
    assert!(matches!(file.get("carol"), Some(Hash::Sha512(_))));
}

#[test]
fn fixture_lines_round_trip_exactly() {
    for line in MOSQUITTO_2_0.lines() {
        let (_, encoded) = line.split_once(':').expect("fixture has a colon");
        assert_eq!(hash(encoded).to_string(), encoded);
    }
    for encoded in [SHA512_2_1, PBKDF2_2_1, ARGON2_2_1, ARGON2_SMALL] {
        assert_eq!(hash(encoded).to_string(), encoded);
    }
}

/// Rebuilding a mosquitto_passwd line from its salt gives the same bytes: the construction
/// (PBKDF2-HMAC-SHA512 over the password, 64-byte output; SHA-512 over password || salt)
/// and the encoding are Mosquitto's.
#[test]
fn created_hashes_match_mosquitto_byte_for_byte() {
    let salt = |encoded: &str| match hash(encoded) {
        Hash::Sha512(s) | Hash::Pbkdf2Sha512 { salted: s, .. } => s.salt,
        Hash::Argon2id(a) => a.salt,
    };
    let alice = "$7$101$L+wW2uU06L0B0a8G$UrgEIvxPpYu4BFFY/mZz4AUEEmDkny8v1y47K9Z1S2hFc6q5vnlrVQo3xcJxOAFHyFB5t/VwPZJfbiVSSBhVWg==";
    let carol = "$6$+7KuOUYcDVfVcjzd$dtBKekg3sBBbFpds8v2iXJIOjEuNrL0IMAoU3ocjMPKO6QbVQdyiEOG8OS7S+5O0khsNo9pDUtuPCjkDUxxvtA==";
    let iterations = |n| NonZeroU32::new(n).expect("nonzero");
    let rebuilt =
        Hash::pbkdf2_sha512(b"correct horse", &salt(alice), iterations(101)).expect("salt ok");
    assert_eq!(rebuilt.to_string(), alice);
    let rebuilt = Hash::sha512(b"s3cret", &salt(carol)).expect("salt ok");
    assert_eq!(rebuilt.to_string(), carol);
    let rebuilt =
        Hash::pbkdf2_sha512(b"correct horse", &salt(PBKDF2_2_1), iterations(1000)).expect("ok");
    assert_eq!(rebuilt.to_string(), PBKDF2_2_1);
    let rebuilt = Hash::sha512(b"correct horse", &salt(SHA512_2_1)).expect("salt ok");
    assert_eq!(rebuilt.to_string(), SHA512_2_1);
}

#[test]
fn mosquitto_2_1_sha512_and_pbkdf2_with_64_byte_salts_verify() {
    for encoded in [SHA512_2_1, PBKDF2_2_1] {
        assert!(hash(encoded).verify(b"correct horse"), "{encoded}");
        assert!(!hash(encoded).verify(b"correct horsE"), "{encoded}");
    }
}

#[test]
fn argon2id_as_mosquitto_2_1_writes_it_verifies_and_is_rebuilt_exactly() {
    let stored = hash(ARGON2_2_1);
    assert!(stored.verify(b"correct horse"));
    assert!(!stored.verify(b"correct horse "));
    let rebuilt = Hash::argon2id(b"correct horse", ARGON2_SALT).expect("valid salt");
    assert_eq!(rebuilt.to_string(), ARGON2_2_1);
}

#[test]
fn argon2id_with_other_parameters_verifies() {
    assert!(hash(ARGON2_SMALL).verify(b"correct horse"));
    assert!(!hash(ARGON2_SMALL).verify(b"wrong"));
}

#[test]
fn argon2id_without_version_reads_as_0x10_and_keeps_no_version_out() {
    let v10 = ARGON2_SMALL.replace("v=19$", "v=16$");
    let bare = ARGON2_SMALL.replace("v=19$", "");
    assert_eq!(hash(&bare), hash(&v10));
    // The digest was made with 0x13, so as 0x10 it must not verify.
    assert!(!hash(&bare).verify(b"correct horse"));
}

#[test]
fn padding_is_optional_for_6_and_7_but_written() {
    let unpadded = PBKDF2_2_1.replace("==", "");
    assert_eq!(hash(&unpadded), hash(PBKDF2_2_1));
    assert_eq!(hash(&unpadded).to_string(), PBKDF2_2_1);
}

#[test]
fn bad_hashes_are_refused_with_the_reason() {
    let salt12 = "AAAAAAAAAAAAAAAA";
    let hash64 = STANDARD.encode([0u8; 64]);
    let cases: &[(String, HashError)] = &[
        ("plaintext".into(), HashError::UnknownScheme),
        ("$5$abc$def".into(), HashError::UnknownScheme),
        (
            "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2g".into(),
            HashError::UnknownScheme,
        ),
        ("$6$".into(), HashError::SaltLength(0)),
        (format!("$6${salt12}"), HashError::Missing("hash")),
        (format!("$6${salt12}${hash64}$x"), HashError::TrailingField),
        (format!("$6$AAAA${hash64}"), HashError::SaltLength(3)),
        (format!("$6${salt12}$AAAA"), HashError::HashLength(3)),
        (format!("$6${salt12}$!!!!"), HashError::Base64("hash")),
        (
            format!("$7$0${salt12}${hash64}"),
            HashError::BadNumber("iterations"),
        ),
        (
            format!("$7$101x${salt12}${hash64}"),
            HashError::BadNumber("iterations"),
        ),
        (
            format!("$7$-1${salt12}${hash64}"),
            HashError::BadNumber("iterations"),
        ),
        (
            format!("$7$99999999999${salt12}${hash64}"),
            HashError::BadNumber("iterations"),
        ),
        (
            format!("$7${salt12}${hash64}"),
            HashError::BadNumber("iterations"),
        ),
        ("$7$101".into(), HashError::Missing("salt")),
        (
            "$argon2id$v=18$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$aGFzaA".into(),
            HashError::BadNumber("v"),
        ),
        (
            "$argon2id$v=19$t=2,m=1024,p=2$c29tZXNhbHRzb21lc2FsdA$aGFzaA".into(),
            HashError::Missing("m"),
        ),
        (
            "$argon2id$v=19$m=1024,t=2,p=2,x=1$c29tZXNhbHRzb21lc2FsdA$aGFzaA".into(),
            HashError::TrailingField,
        ),
        (
            "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA".into(),
            HashError::Missing("hash"),
        ),
        (
            "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA==$aGFzaA".into(),
            HashError::Base64("salt"),
        ),
    ];
    for (encoded, want) in cases {
        assert_eq!(Hash::parse(encoded).as_ref().err(), Some(want), "{encoded}");
    }
}

#[test]
fn argon2id_costs_and_lengths_are_bounded_when_read() {
    for bad in [
        // More memory than ringmq accepts.
        "$argon2id$v=19$m=2000000,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g",
        // Below libargon2's minimum of 8 KiB per lane.
        "$argon2id$v=19$m=8,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2g",
        // A 4-byte salt (libargon2 wants 8).
        "$argon2id$v=19$m=1024,t=1,p=1$c29tZQ$aGFzaGhhc2g",
        // An empty output.
        "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$",
    ] {
        assert!(
            matches!(Hash::parse(bad), Err(HashError::Argon2(_))),
            "{bad}: {:?}",
            Hash::parse(bad)
        );
    }
}

#[test]
fn comments_blank_lines_crlf_and_blanks_around_fields_are_accepted() {
    let text = format!(
        "# users\r\n\r\n   \n  # indented comment\n  bob :  {PBKDF2_2_1}  \r\nerin:{SHA512_2_1}"
    );
    let file = PasswordFile::parse(text.as_bytes()).expect("valid file");
    assert_eq!(file.len(), 2);
    assert!(file.verify("bob", b"correct horse"));
    assert!(file.verify("erin", b"correct horse"));
    let mut users = file.usernames().collect::<Vec<_>>();
    users.sort_unstable();
    assert_eq!(users, ["bob", "erin"]);
}

#[test]
fn empty_file_has_no_users() {
    for text in ["", "\n", "# nobody\n"] {
        assert!(
            PasswordFile::parse(text.as_bytes())
                .expect("valid")
                .is_empty()
        );
    }
}

#[test]
fn parse_errors_name_the_line_and_user() {
    let ok = format!("a:{PBKDF2_2_1}\n");
    let cases = [
        (format!("{ok}no colon here\n"), 2, LineError::NoColon),
        (
            format!("{ok}# c\n:{PBKDF2_2_1}\n"),
            3,
            LineError::EmptyUsername,
        ),
        (
            format!("{ok}b:\n"),
            2,
            LineError::EmptyHash {
                username: "b".into(),
            },
        ),
        (
            format!("{ok}b:secret\n"),
            2,
            LineError::Hash {
                username: "b".into(),
                error: HashError::UnknownScheme,
            },
        ),
        (
            format!("{ok}\n{ok}"),
            3,
            LineError::Duplicate {
                username: "a".into(),
            },
        ),
        (
            format!("{}:{PBKDF2_2_1}\n", "u".repeat(MAX_FIELD_LEN + 1)),
            1,
            LineError::TooLong,
        ),
    ];
    for (text, line, error) in cases {
        assert_eq!(parse_err(&text), ParseError { line, error }, "{text:?}");
    }
    let not_utf8 = PasswordFile::parse(b"a\xff:x\n").expect_err("refused");
    assert_eq!(not_utf8.line, 1);
    assert_eq!(not_utf8.error, LineError::NotUtf8);
    assert_eq!(
        parse_err(&format!("{ok}b:$7$0$x$y")).to_string(),
        "line 2: user 'b': hash field iterations is not a positive number"
    );
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    let missing = PasswordFile::load(&path).expect_err("no such file");
    assert!(
        missing
            .to_string()
            .starts_with(&format!("password file {}: ", path.display()))
    );
    std::fs::write(&path, "ok:\n").expect("write");
    assert_eq!(
        PasswordFile::load(&path).expect_err("refused").to_string(),
        format!(
            "password file {}, line 1: user 'ok' has no hash",
            path.display()
        )
    );
    std::fs::write(&path, MOSQUITTO_2_0).expect("write");
    assert_eq!(PasswordFile::load(&path).expect("valid").len(), 4);
}

#[test]
fn debug_output_shows_no_digest_or_salt() {
    let shown = format!("{:?}", hash(PBKDF2_2_1));
    assert_eq!(shown, "Hash::Pbkdf2Sha512 { iterations: 1000 }");
    let file = PasswordFile::parse(MOSQUITTO_2_0.as_bytes()).expect("valid");
    assert!(!format!("{file:?}").contains("L+wW2uU06L0B0a8G"));
}

#[test]
fn salts_of_other_lengths_are_refused_when_creating() {
    let n = NonZeroU32::new(101).expect("nonzero");
    assert_eq!(
        Hash::pbkdf2_sha512(b"p", &[0; 16], n),
        Err(HashError::SaltLength(16))
    );
    assert_eq!(Hash::sha512(b"p", &[0; 8]), Err(HashError::SaltLength(8)));
    assert!(matches!(
        Hash::argon2id(b"p", &[0; 4]),
        Err(HashError::Argon2(_))
    ));
}

#[test]
fn feed_tells_hashes_apart() {
    let bytes = |h: &Hash| {
        let mut out = Vec::new();
        h.feed(&mut |b: &[u8]| out.extend_from_slice(b));
        out
    };
    let file = PasswordFile::parse(MOSQUITTO_2_0.as_bytes()).expect("valid");
    let alice = file.get("alice").expect("listed");
    let bob = file.get("bob").expect("listed");
    assert_eq!(bytes(alice), bytes(&alice.clone()));
    assert_ne!(bytes(alice), bytes(bob));
    assert_ne!(bytes(&hash(SHA512_2_1)), bytes(&hash(PBKDF2_2_1)));
}
