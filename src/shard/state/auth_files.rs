//! The shard's side of the password and ACL files (`[auth]`): the copy it starts with and each
//! newer copy a SIGHUP reload sends it, put to use at once: new CONNECTs are checked against
//! the new password file, and every session's ACL is compiled again from the new acl_file, so
//! its next PUBLISH, SUBSCRIBE and delivery are checked by the new rules.

use super::ShardState;
use crate::auth::files::AuthFiles;
use std::time::Instant;

impl ShardState {
    /// Uses `files` from now on (at start, and after each reload). Connected clients stay
    /// connected whatever the new password file says (as in Mosquitto): a password is
    /// checked at CONNECT only. Their sessions' ACLs are replaced; messages queued for a
    /// session on topics it may no longer read are dropped.
    pub fn use_auth_files(&mut self, files: AuthFiles, now: Instant) {
        self.set_passwords(files.passwords);
        self.set_acl(files.acl);
        let acl = self.admission.acl.clone();
        let mut relieved = Vec::new();
        for key in self.sessions.keys().collect::<Vec<_>>() {
            let Some(entry) = self.sessions.get_mut(key) else {
                continue;
            };
            let dropped = entry.session.reauthorize(acl.as_deref());
            if dropped > 0 && entry.congested {
                relieved.push(key);
            }
        }
        // A queue that shrank may no longer be congested: whoever waits for it may go on.
        for key in relieved {
            self.after_acks(key, now);
        }
    }
}
