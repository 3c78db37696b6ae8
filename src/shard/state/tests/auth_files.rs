//! A SIGHUP reload of the password file as a shard sees it: the new file decides the next
//! CONNECT, and neither the cache of verified passwords nor a check that was running during
//! the reload lets a changed or removed password in.

use super::*;
use crate::auth::files::AuthFiles;
use crate::auth::passwd::{Hash, PasswordFile};
use std::sync::Arc;

fn files(users: &[(&str, &[u8])]) -> AuthFiles {
    let mut text = String::new();
    for (user, password) in users {
        let hash = Hash::sha512(password, b"salty-salt-3").expect("hash");
        text.push_str(&format!("{user}:{hash}\n"));
    }
    let passwords = PasswordFile::parse(text.as_bytes()).expect("valid file");
    AuthFiles {
        passwords: Some(Arc::new(passwords)),
        acl: None,
    }
}

fn login_as(user: &str, password: &[u8]) -> Connect {
    let mut c = connect(ProtocolVersion::V5, user);
    c.username = Some(MqttString::try_from(user).expect("valid"));
    c.password = Some(Bytes::copy_from_slice(password));
    c
}

/// `login`, with a verification run at once, as the blocking pool would.
fn log_in(state: &mut ShardState, connect: &Connect) -> Login {
    match state.login(connect, false) {
        Login::Verify(v) => {
            let (v, ok) = v.run();
            state.verified(&v, ok)
        }
        decided => decided,
    }
}

fn accepted(login: &Login) -> bool {
    matches!(login, Login::Accepted)
}

fn refused(login: &Login) -> bool {
    matches!(login, Login::Refused(ReasonCode::BadUserNameOrPassword))
}

#[test]
fn a_reload_refuses_a_changed_or_removed_password_the_cache_had_verified() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    state.use_auth_files(files(&[("alice", b"old"), ("bob", b"b")]), clock());
    for connect in [login_as("alice", b"old"), login_as("bob", b"b")] {
        assert!(accepted(&log_in(&mut state, &connect)));
        // Cached now: accepted without a verification.
        assert!(accepted(&state.login(&connect, false)));
    }
    state.use_auth_files(files(&[("alice", b"new")]), clock());
    assert!(refused(&log_in(&mut state, &login_as("alice", b"old"))));
    assert!(
        refused(&state.login(&login_as("bob", b"b"), false)),
        "a removed user is refused at once"
    );
    assert!(accepted(&log_in(&mut state, &login_as("alice", b"new"))));
}

#[test]
fn a_check_that_ran_across_a_reload_counts_only_if_the_hash_is_still_the_user_s() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    state.use_auth_files(files(&[("alice", b"old")]), clock());
    let Login::Verify(running) = state.login(&login_as("alice", b"old"), false) else {
        panic!("a first login is verified off the shard");
    };
    state.use_auth_files(files(&[("alice", b"new")]), clock());
    let (running, ok) = running.run();
    assert!(ok, "the old hash matches the old password");
    assert!(
        refused(&state.verified(&running, ok)),
        "but it is no longer alice's"
    );
    assert!(
        !matches!(
            state.login(&login_as("alice", b"old"), false),
            Login::Accepted
        ),
        "and it was not cached"
    );
}
