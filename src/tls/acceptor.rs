//! The TLS listeners' certificates across threads: `Certificates` (the supervisor's side)
//! loads them at start and again on SIGHUP and sends each shard its own copy; `Acceptor`
//! (a shard's side, one per TLS listener) starts new connections with the newest one.
//! Connections already open keep the configuration they started with.

use super::load::{TlsError, for_shard, server_config};
use super::session::TlsSession;
use crate::config::ListenerConfig;
use rustls::ServerConfig;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// A shard's TLS configuration of one listener.
pub struct Acceptor {
    current: Arc<ServerConfig>,
    /// Newer configurations from SIGHUP reloads (a lock-free queue; the latest wins).
    updates: Receiver<Arc<ServerConfig>>,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acceptor")
    }
}

impl Acceptor {
    /// A TLS session for a new connection, with the newest certificates.
    pub fn session(&mut self) -> Result<TlsSession, rustls::Error> {
        while let Ok(newer) = self.updates.try_recv() {
            self.current = newer;
        }
        TlsSession::new(Arc::clone(&self.current))
    }
}

/// One shard's acceptors, one entry per listener in config order (`None`: a plain one).
pub type ShardAcceptors = Vec<Option<Acceptor>>;

/// The TLS listeners, to load their certificates again.
#[derive(Debug)]
pub struct Certificates {
    listeners: Vec<Reloadable>,
}

#[derive(Debug)]
struct Reloadable {
    listener: ListenerConfig,
    /// One per shard.
    shards: Vec<Sender<Arc<ServerConfig>>>,
}

impl Certificates {
    /// Loads the certificates of every TLS listener in `listeners`. Returns, per shard, one
    /// entry per listener (in the same order): its `Acceptor`, or `None` for a plain one.
    /// The first file that cannot be used fails it all.
    pub fn load(
        listeners: &[ListenerConfig],
        shards: usize,
    ) -> Result<(Self, Vec<ShardAcceptors>), TlsError> {
        let mut acceptors: Vec<ShardAcceptors> = (0..shards).map(|_| Vec::new()).collect();
        let mut reloadable = Vec::new();
        for listener in listeners {
            let Some(tls) = &listener.tls else {
                acceptors.iter_mut().for_each(|a| a.push(None));
                continue;
            };
            let config = server_config(listener, tls)?;
            let mut senders = Vec::with_capacity(shards);
            for shard in &mut acceptors {
                let (tx, rx) = channel();
                senders.push(tx);
                shard.push(Some(Acceptor {
                    current: for_shard(&config),
                    updates: rx,
                }));
            }
            reloadable.push(Reloadable {
                listener: listener.clone(),
                shards: senders,
            });
        }
        let this = Self {
            listeners: reloadable,
        };
        Ok((this, acceptors))
    }

    /// How many listeners use TLS.
    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// The config keys of the TLS tables (`listeners[0].tls`), as a reload reports them.
    pub fn listener_names(&self) -> Vec<String> {
        let name = |r: &Reloadable| format!("{}.tls", r.listener.name);
        self.listeners.iter().map(name).collect()
    }

    /// Reads every TLS listener's files again and, only if all of them are usable, hands the
    /// new configurations to every shard. On an error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let mut fresh = Vec::with_capacity(self.listeners.len());
        for r in &self.listeners {
            if let Some(tls) = &r.listener.tls {
                fresh.push(server_config(&r.listener, tls)?);
            }
        }
        for (r, config) in self.listeners.iter().zip(&fresh) {
            for shard in &r.shards {
                // A shard that has stopped no longer needs it.
                let _ = shard.send(for_shard(config));
            }
        }
        Ok(())
    }
}
