//! Who holds a TCP port the broker could not bind, read from `/proc` (Linux): a live process,
//! or nobody, which is what a predecessor killed a moment ago looks like (its listening
//! sockets outlive its process for some milliseconds while the kernel tears down its
//! io_uring instances, which still hold them).

use std::collections::HashSet;
use std::fs;

/// What holds the sockets listening on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// A live process has one of them open.
    Process(u32),
    /// One belongs to another user, whose processes this one may not look into.
    OtherUser,
    /// No live process of this user has one open (or none listens): a dying predecessor.
    Nobody,
}

/// TCP state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Who holds the sockets listening on `port`. When `/proc` cannot be read at all, the answer
/// is `Nobody`: the caller then waits its bounded time for the port, as for a predecessor.
pub(super) fn holder(port: u16) -> Holder {
    let me = own_uid();
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for socket in text.lines().skip(1).filter_map(|l| listening_on(l, port)) {
            if me.is_some_and(|uid| uid != socket.uid) {
                return Holder::OtherUser;
            }
            inodes.insert(socket.inode);
        }
    }
    if inodes.is_empty() {
        return Holder::Nobody;
    }
    process_holding(&inodes).map_or(Holder::Nobody, Holder::Process)
}

struct Socket {
    uid: u32,
    inode: u64,
}

/// A `/proc/net/tcp` line of a socket listening on `port`: `sl local rem st queues tr
/// retrnsmt uid timeout inode ...`, the local address as `HEXADDR:HEXPORT`.
fn listening_on(line: &str, port: u16) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (_, local_port) = fields.get(1)?.rsplit_once(':')?;
    if u16::from_str_radix(local_port, 16).ok()? != port || *fields.get(3)? != LISTEN {
        return None;
    }
    Some(Socket {
        uid: fields.get(7)?.parse().ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// The effective uid of this process (`Uid:` in `/proc/self/status`: real, effective, ...).
fn own_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// A process with one of the socket `inodes` open.
fn process_holding(inodes: &HashSet<u64>) -> Option<u32> {
    let wanted: HashSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that is gone, or not ours to look into, holds nothing we can see.
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|target| target.to_str().map(|t| wanted.contains(t)))
                .unwrap_or(false)
        });
        if holds {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_a_live_process_is_found() {
        let held = std::net::TcpListener::bind("127.0.0.1:0");
        let port = held
            .as_ref()
            .ok()
            .and_then(|l| l.local_addr().ok())
            .map_or(0, |a| a.port());
        assert_eq!(holder(port), Holder::Process(std::process::id()));
        drop(held);
        assert_eq!(holder(port), Holder::Nobody, "nothing listens any more");
    }

    #[test]
    fn proc_net_tcp_lines_are_read_by_port_and_state() {
        let line = "   0: 0100007F:0753 00000000:0000 0A 00000000:00000000 00:00000000 \
                    00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0";
        let socket = listening_on(line, 0x0753).map(|s| (s.uid, s.inode));
        assert_eq!(socket, Some((1000, 123_456)));
        assert!(listening_on(line, 1884).is_none(), "another port");
        let established = line.replace(" 0A ", " 01 ");
        assert!(
            listening_on(&established, 0x0753).is_none(),
            "not listening"
        );
    }
}
