//! What a scenario runs: its publishers (each with a topic), its subscribers (each with a filter
//! and a receiving group), and which group expects which publisher's messages, so the end of
//! the run can count each expected delivery as received, lost or duplicated.

use crate::cli::Command;

/// The shape of a scenario's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Publishers and subscribers exchanging test messages.
    Messages,
    /// Connect/CONNACK/DISCONNECT in a loop.
    ConnectStorm,
    /// Idle connections that only ping.
    Idle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSpec {
    pub id: u32,
    pub topic: String,
    /// Offset of this publisher's open-loop schedule, spreading low-rate publishers evenly.
    pub phase_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberSpec {
    pub id: u32,
    pub filter: String,
    /// The receiving group: the subscriber itself, or the shared group it is a member of.
    pub group: u32,
}

/// The clients of one run and who expects what.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub scenario: &'static str,
    pub kind: Kind,
    pub publishers: Vec<PublisherSpec>,
    pub subscribers: Vec<SubscriberSpec>,
    /// `groups[g]`: the publishers whose every message group `g` must receive (once).
    pub groups: Vec<Vec<u32>>,
    /// Members of a group share its messages (a `$share` group), so a member's own sequence
    /// gaps are not losses.
    pub shared_groups: bool,
    /// Connection-storm workers or idle connections.
    pub clients: u32,
    /// Messages per second per publisher (0 = closed loop).
    pub rate: f64,
}

impl Plan {
    /// Builds the plan of a scenario subcommand; `None` for `compare`.
    pub fn for_command(command: &Command) -> Option<Self> {
        Some(match command {
            Command::Fanin {
                publishers,
                topics,
                common,
            } => fanin(*publishers, *topics, common.rate),
            Command::Fanout {
                subscribers,
                common,
            } => fanout(*subscribers, common.rate),
            Command::Pairs { pairs, common } => pairs_plan(*pairs, common.rate),
            Command::Shared {
                publishers,
                subscribers,
                common,
            } => shared(*publishers, *subscribers, common.rate),
            Command::Connect { clients, .. } => {
                connections("connect", Kind::ConnectStorm, *clients)
            }
            Command::Idle { connections: n, .. } => connections("idle", Kind::Idle, *n),
            Command::Iot {
                devices,
                subscribers,
                common,
            } => iot(*devices, *subscribers, common.rate),
            Command::Compare { .. } | Command::Soak { .. } => return None,
        })
    }

    /// For each publisher, how many groups receive its messages.
    pub fn fanout_of(&self) -> Vec<u32> {
        let mut fanout = vec![0u32; self.publishers.len()];
        for group in &self.groups {
            for &p in group {
                if let Some(f) = fanout.get_mut(p as usize) {
                    *f += 1;
                }
            }
        }
        fanout
    }

    /// Whether group `group` expects messages from publisher `publisher`.
    pub fn expects(&self, group: u32, publisher: u32) -> bool {
        self.groups
            .get(group as usize)
            .is_some_and(|g| g.binary_search(&publisher).is_ok())
    }
}

fn publishers(n: u32, topic: impl Fn(u32) -> String) -> Vec<PublisherSpec> {
    (0..n)
        .map(|id| PublisherSpec {
            id,
            topic: topic(id),
            phase_ns: 0,
        })
        .collect()
}

fn messages(scenario: &'static str, rate: f64) -> Plan {
    Plan {
        scenario,
        kind: Kind::Messages,
        publishers: Vec::new(),
        subscribers: Vec::new(),
        groups: Vec::new(),
        shared_groups: false,
        clients: 0,
        rate,
    }
}

pub fn fanin(n_publishers: u32, topics: u32, rate: f64) -> Plan {
    let one_topic = topics <= 1;
    let mut plan = messages("fanin", rate);
    plan.publishers = publishers(n_publishers, |id| {
        if one_topic {
            "load/fanin".to_string()
        } else {
            format!("load/fanin/{}", id % topics)
        }
    });
    let filter = if one_topic {
        "load/fanin"
    } else {
        "load/fanin/+"
    };
    plan.subscribers = vec![SubscriberSpec {
        id: 0,
        filter: filter.into(),
        group: 0,
    }];
    plan.groups = vec![(0..n_publishers).collect()];
    plan
}

pub fn fanout(n_subscribers: u32, rate: f64) -> Plan {
    let mut plan = messages("fanout", rate);
    plan.publishers = publishers(1, |_| "load/fanout".into());
    plan.subscribers = (0..n_subscribers)
        .map(|id| SubscriberSpec {
            id,
            filter: "load/fanout".into(),
            group: id,
        })
        .collect();
    plan.groups = vec![vec![0]; n_subscribers as usize];
    plan
}

pub fn pairs_plan(n: u32, rate: f64) -> Plan {
    let mut plan = messages("pairs", rate);
    plan.publishers = publishers(n, |id| format!("load/pair/{id}"));
    plan.subscribers = (0..n)
        .map(|id| SubscriberSpec {
            id,
            filter: format!("load/pair/{id}"),
            group: id,
        })
        .collect();
    plan.groups = (0..n).map(|id| vec![id]).collect();
    plan
}

pub fn shared(n_publishers: u32, n_subscribers: u32, rate: f64) -> Plan {
    let mut plan = messages("shared", rate);
    plan.publishers = publishers(n_publishers, |id| format!("load/shared/{id}"));
    plan.subscribers = (0..n_subscribers)
        .map(|id| SubscriberSpec {
            id,
            filter: "$share/g/load/shared/+".into(),
            group: 0,
        })
        .collect();
    plan.groups = vec![(0..n_publishers).collect()];
    plan.shared_groups = true;
    plan
}

/// Devices default to one message per second each when no rate is given.
pub const IOT_DEFAULT_RATE: f64 = 1.0;

pub fn iot(devices: u32, n_subscribers: u32, rate: f64) -> Plan {
    let rate = if rate > 0.0 { rate } else { IOT_DEFAULT_RATE };
    let interval_ns = 1e9 / rate;
    let mut plan = messages("iot", rate);
    plan.publishers = (0..devices)
        .map(|id| PublisherSpec {
            id,
            topic: format!("iot/dev{id}/telemetry"),
            phase_ns: (interval_ns * f64::from(id) / f64::from(devices.max(1))) as u64,
        })
        .collect();
    plan.subscribers = (0..n_subscribers)
        .map(|id| SubscriberSpec {
            id,
            filter: if id % 2 == 0 {
                "iot/+/telemetry"
            } else {
                "iot/#"
            }
            .into(),
            group: id,
        })
        .collect();
    plan.groups = vec![(0..devices).collect(); n_subscribers as usize];
    plan
}

pub fn connections(scenario: &'static str, kind: Kind, clients: u32) -> Plan {
    Plan {
        scenario,
        kind,
        publishers: Vec::new(),
        subscribers: Vec::new(),
        groups: Vec::new(),
        shared_groups: false,
        clients,
        rate: 0.0,
    }
}
