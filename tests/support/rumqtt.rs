//! rumqttc clients (3.1.1 and 5.0), an independent implementation to check interoperability
//! with. Each client's event loop runs on its own thread and ends at the first error, so a
//! test waiting for an event fails at once when the connection breaks.

use super::PROMPT;
use rumqttc::v5::mqttbytes::v5 as mqtt5;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `next` on a thread until it returns `None`, sending each event to the receiver.
fn spawn_events<E: Send + 'static>(
    mut next: impl FnMut() -> Option<E> + Send + 'static,
) -> mpsc::Receiver<E> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(event) = next() {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first event that `pick` maps to a value within [`PROMPT`], skipping the others.
fn next<E, T>(
    events: &mpsc::Receiver<E>,
    mut pick: impl FnMut(E) -> Option<T>,
    client: &str,
    what: &str,
) -> T {
    let deadline = Instant::now() + PROMPT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => {
                if let Some(found) = pick(e) {
                    return found;
                }
            }
            Err(_) => panic!("{client}: no {what} in time (or the connection failed)"),
        }
    }
}

/// Waits until the event loop behind `events` has ended (the connection closed or failed).
fn wait_closed<E>(events: &mpsc::Receiver<E>, client: &str) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{client}: still connected"),
        }
    }
}

/// A rumqttc 3.1.1 client; events arrive on `events`.
pub struct Rumqtt4 {
    pub client: rumqttc::Client,
    pub events: mpsc::Receiver<rumqttc::Event>,
}

impl std::fmt::Debug for Rumqtt4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rumqtt4")
    }
}

impl Rumqtt4 {
    /// Options for `client_id` on the broker at `addr`: keep alive 5 s, clean session.
    pub fn options(addr: SocketAddr, client_id: &str) -> rumqttc::MqttOptions {
        let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        options
    }

    /// Connects with [`Rumqtt4::options`], asserting a successful CONNACK.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let (this, connack) = Self::connect_with(Self::options(addr, client_id));
        assert_eq!(
            connack.code,
            rumqttc::ConnectReturnCode::Success,
            "{connack:?}"
        );
        this
    }

    /// Connects with `options` and returns the CONNACK, whatever its code.
    pub fn connect_with(options: rumqttc::MqttOptions) -> (Self, rumqttc::ConnAck) {
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let events = spawn_events(move || connection.recv().ok()?.ok());
        let mut this = Self { client, events };
        let connack = this.next_incoming(
            |p| match p {
                rumqttc::Packet::ConnAck(c) => Some(c),
                _ => None,
            },
            "CONNACK",
        );
        (this, connack)
    }

    /// The first incoming packet that `pick` maps to a value.
    pub fn next_incoming<T>(
        &mut self,
        mut pick: impl FnMut(rumqttc::Packet) -> Option<T>,
        what: &str,
    ) -> T {
        let pick = |e| match e {
            rumqttc::Event::Incoming(p) => pick(p),
            rumqttc::Event::Outgoing(_) => None,
        };
        next(&self.events, pick, "rumqttc 3.1.1", what)
    }

    /// Waits for an incoming packet matching `want`.
    pub fn wait_for_incoming(&mut self, want: impl Fn(&rumqttc::Packet) -> bool, what: &str) {
        self.next_incoming(|p| want(&p).then_some(()), what);
    }

    /// Waits until the connection has ended (e.g. after `client.disconnect()`).
    pub fn wait_closed(&mut self) {
        wait_closed(&self.events, "rumqttc 3.1.1");
    }

    pub fn next_publish(&mut self) -> rumqttc::Publish {
        self.next_incoming(
            |p| match p {
                rumqttc::Packet::Publish(p) => Some(p),
                _ => None,
            },
            "PUBLISH",
        )
    }
}

/// A rumqttc 5.0 client; events arrive on `events`.
pub struct Rumqtt5 {
    pub client: rumqttc::v5::Client,
    pub events: mpsc::Receiver<rumqttc::v5::Event>,
}

impl std::fmt::Debug for Rumqtt5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rumqtt5")
    }
}

impl Rumqtt5 {
    /// Options for `client_id` on the broker at `addr`: keep alive 5 s, clean start.
    pub fn options(addr: SocketAddr, client_id: &str) -> rumqttc::v5::MqttOptions {
        let mut options =
            rumqttc::v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        options
    }

    /// Connects with [`Rumqtt5::options`], asserting a successful CONNACK.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let (this, connack) = Self::connect_with(Self::options(addr, client_id));
        assert_eq!(
            connack.code,
            mqtt5::ConnectReturnCode::Success,
            "{connack:?}"
        );
        this
    }

    /// Connects with `options` and returns the CONNACK, whatever its code.
    pub fn connect_with(options: rumqttc::v5::MqttOptions) -> (Self, mqtt5::ConnAck) {
        let (client, mut connection) = rumqttc::v5::Client::new(options, 64);
        let events = spawn_events(move || connection.recv().ok()?.ok());
        let mut this = Self { client, events };
        let connack = this.next_incoming(
            |p| match p {
                mqtt5::Packet::ConnAck(c) => Some(c),
                _ => None,
            },
            "CONNACK",
        );
        (this, connack)
    }

    /// The first incoming packet that `pick` maps to a value.
    pub fn next_incoming<T>(
        &mut self,
        mut pick: impl FnMut(mqtt5::Packet) -> Option<T>,
        what: &str,
    ) -> T {
        let pick = |e| match e {
            rumqttc::v5::Event::Incoming(p) => pick(p),
            rumqttc::v5::Event::Outgoing(_) => None,
        };
        next(&self.events, pick, "rumqttc 5.0", what)
    }

    /// Waits for an incoming packet matching `want`.
    pub fn wait_for_incoming(&mut self, want: impl Fn(&mqtt5::Packet) -> bool, what: &str) {
        self.next_incoming(|p| want(&p).then_some(()), what);
    }

    /// Waits until the connection has ended (e.g. after `client.disconnect()`).
    pub fn wait_closed(&mut self) {
        wait_closed(&self.events, "rumqttc 5.0");
    }

    pub fn next_publish(&mut self) -> mqtt5::Publish {
        self.next_incoming(
            |p| match p {
                mqtt5::Packet::Publish(p) => Some(p),
                _ => None,
            },
            "PUBLISH",
        )
    }
}
