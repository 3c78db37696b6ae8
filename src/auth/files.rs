//! The `[auth]` password and ACL files as one unit: [`AuthFiles::load`] is the one function
//! that reads them, at start (config validation) and again on SIGHUP; [`AuthReload`] (the
//! supervisor's side) reloads them and sends each shard its own copy; [`AuthUpdates`] (a
//! shard's side) hands the newest copy over when the shard asks, never waiting.

use super::acl::AclFile;
use super::passwd::PasswordFile;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// The config key of the password file, as errors and log events name it.
pub const PASSWORD_FILE_KEY: &str = "auth.password_file";
/// The config key of the ACL file.
pub const ACL_FILE_KEY: &str = "auth.acl_file";

/// Where the files are (`None`: not configured). Fixed at start: a reload reads the same
/// paths again, it does not re-read the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthPaths {
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
}

impl AuthPaths {
    /// The config keys of the files that are configured, in a fixed order.
    pub fn keys(&self) -> Vec<&'static str> {
        let password = self.password_file.as_ref().map(|_| PASSWORD_FILE_KEY);
        let acl = self.acl_file.as_ref().map(|_| ACL_FILE_KEY);
        password.into_iter().chain(acl).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.password_file.is_none() && self.acl_file.is_none()
    }
}

/// The parsed files (`None`: not configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    /// CONNECTs with a user name must give its password.
    pub passwords: Option<Arc<PasswordFile>>,
    /// What each client may publish, subscribe to and receive.
    pub acl: Option<Arc<AclFile>>,
}

/// Why a file could not be used: its config key and what is wrong (the reason names the
/// file and, for a bad line, the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFileError {
    pub key: &'static str,
    pub reason: String,
}

impl fmt::Display for AuthFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for AuthFileError {}

impl AuthFiles {
    /// Reads and checks every configured file; the first one that cannot be used fails it
    /// all, so a caller never sees one new file beside one old one.
    pub fn load(paths: &AuthPaths) -> Result<Self, AuthFileError> {
        let passwords = match &paths.password_file {
            None => None,
            Some(path) => Some(PasswordFile::load(path).map_err(|e| AuthFileError {
                key: PASSWORD_FILE_KEY,
                reason: e.to_string(),
            })?),
        };
        let acl = match &paths.acl_file {
            None => None,
            Some(path) => Some(AclFile::load(path).map_err(|e| AuthFileError {
                key: ACL_FILE_KEY,
                reason: e.to_string(),
            })?),
        };
        Ok(Self {
            passwords: passwords.map(Arc::new),
            acl: acl.map(Arc::new),
        })
    }

    /// A deep copy for one shard: no `Arc` in it is shared with another thread, so the
    /// reference counts a shard touches at every CONNECT (a client's ACL holds its user's
    /// rules by `Arc`) never bounce between cores.
    pub fn for_shard(&self) -> Self {
        Self {
            passwords: self.passwords.as_deref().map(|p| Arc::new(p.clone())),
            acl: self.acl.as_deref().map(|a| Arc::new(a.deep_copy())),
        }
    }
}

/// The supervisor's side: the paths, and one sender per shard.
#[derive(Debug)]
pub struct AuthReload {
    paths: AuthPaths,
    shards: Vec<Sender<AuthFiles>>,
}

impl AuthReload {
    /// The reloader of `paths` for `shards` shards, and each shard's receiving end, which
    /// holds the shard's own copy of `start` (the files as loaded at start) first: a shard
    /// takes its files the same way at start and after a reload.
    pub fn new(paths: AuthPaths, start: &AuthFiles, shards: usize) -> (Self, Vec<AuthUpdates>) {
        let (senders, receivers) = (0..shards)
            .map(|_| {
                let (tx, rx) = channel();
                // The receiver is right here, so the send cannot fail.
                let _ = tx.send(start.for_shard());
                (tx, AuthUpdates { updates: rx })
            })
            .unzip();
        let this = Self {
            paths,
            shards: senders,
        };
        (this, receivers)
    }

    pub fn paths(&self) -> &AuthPaths {
        &self.paths
    }

    /// Reads the files again; nothing is sent yet, so an error (or another part of the
    /// reload failing) leaves the shards with what they have.
    pub fn load(&self) -> Result<AuthFiles, AuthFileError> {
        AuthFiles::load(&self.paths)
    }

    /// Hands every shard its own copy of `files`.
    pub fn send(&self, files: &AuthFiles) {
        for shard in &self.shards {
            // A shard that has stopped no longer needs it.
            let _ = shard.send(files.for_shard());
        }
    }
}

/// A shard's side: newer files from SIGHUP reloads.
#[derive(Debug)]
pub struct AuthUpdates {
    updates: Receiver<AuthFiles>,
}

impl AuthUpdates {
    /// The newest files sent since the last call, if any; never waits. Older ones sent in
    /// between are skipped: only the latest reload counts.
    pub fn newest(&self) -> Option<AuthFiles> {
        let mut newest = None;
        while let Ok(files) = self.updates.try_recv() {
            newest = Some(files);
        }
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringmq-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_reload_reaches_every_shard_and_a_failed_one_sends_nothing() {
        // A failed load returns before anything is sent (`runtime::reload` sends only once
        // every file of the reload is usable).
        let acl = temp("reload-acl", "topic read a/#\n");
        let paths = AuthPaths {
            password_file: None,
            acl_file: Some(acl.clone()),
        };
        let start = AuthFiles::load(&paths).expect("a usable file");
        let (reload, shards) = AuthReload::new(paths, &start, 2);
        for shard in &shards {
            assert_eq!(shard.newest(), Some(start.clone()), "the start copy first");
            assert_eq!(shard.newest(), None);
        }
        reload.send(&reload.load().expect("a usable file"));
        std::fs::write(&acl, "topic read b/#\n").expect("write");
        reload.send(&reload.load().expect("a usable file"));
        let want = AclFile::parse(b"topic read b/#\n").expect("valid");
        for shard in &shards {
            let got = shard.newest().and_then(|f| f.acl).expect("the newest acl");
            assert_eq!(*got, want, "the latest reload wins");
        }
        std::fs::write(&acl, "topic sometimes b/#\n").expect("write");
        let error = reload.load().expect_err("a bad line");
        assert_eq!(error.key, ACL_FILE_KEY);
        assert!(error.to_string().contains("line 1"), "{error}");
        assert!(shards.iter().all(|s| s.newest().is_none()), "nothing sent");
        let _ = std::fs::remove_file(&acl);
    }

    #[test]
    fn a_shard_s_copy_shares_nothing_with_the_original() {
        let files = AuthFiles {
            passwords: Some(Arc::new(PasswordFile::default())),
            acl: Some(Arc::new(
                AclFile::parse(b"user a\ntopic x\n").expect("valid"),
            )),
        };
        let copy = files.for_shard();
        assert_eq!(copy, files);
        let (a, b) = (files.acl.expect("acl"), copy.acl.expect("acl"));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(a.shares_nothing_with(&b));
    }
}
