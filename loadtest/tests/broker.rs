//! End-to-end runs of the `ringmq-load` binary against a real broker on a loopback port:
//! the ringmq binary when it is built and answers CONNECT, else Mosquitto when installed, else
//! the tests say so and pass without running. `RINGMQ_LOAD_TEST_BROKER=ringmq|mosquitto`
//! forces one (and fails if it cannot start).

// The broker suites' process harness: ringmq picks its own port and announces it, so two
// tests never race for one free port.
#[path = "../../tests/support/broker.rs"]
pub mod broker_process;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const LOAD: &str = env!("CARGO_BIN_EXE_ringmq-load");

/// A broker process on its own port, stopped on drop.
struct Broker {
    name: &'static str,
    port: u16,
    process: Process,
}

#[derive(Debug)]
enum Process {
    /// Started by the shared harness, which also removes its config file.
    Ringmq(broker_process::Broker),
    /// Mosquitto cannot announce a port of its own choosing: it gets a free one, and a
    /// scratch directory for its config.
    Mosquitto { child: Child, dir: PathBuf },
    /// Another listener of a broker the test holds itself.
    Listener { pid: u32 },
}

impl Broker {
    fn pid(&self) -> u32 {
        match &self.process {
            Process::Ringmq(broker) => broker.pid(),
            Process::Mosquitto { child, .. } => child.id(),
            Process::Listener { pid } => *pid,
        }
    }

    /// Kills the broker at once, as a crash would.
    fn kill(&mut self) {
        match &mut self.process {
            Process::Ringmq(broker) => broker.kill(),
            Process::Mosquitto { child, .. } => {
                let _ = child.kill();
            }
            Process::Listener { .. } => {}
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Process::Mosquitto { child, dir } = &mut self.process {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ringmq-load-it-{}-{tag}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// What a port does with a minimal MQTT 3.1.1 CONNECT.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    NotListening,
    /// Accepted the connection but gave no CONNACK: not (yet) a working broker.
    NoConnAck,
    ConnAck,
}

fn probe_connect(port: u16) -> Probe {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Probe::NotListening;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
    let connect = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'h', b'c',
    ];
    let mut ack = [0u8; 4];
    if s.write_all(&connect).is_ok() && s.read_exact(&mut ack).is_ok() && ack[0] == 0x20 {
        Probe::ConnAck
    } else {
        Probe::NoConnAck
    }
}

fn wait_until_up(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        match probe_connect(port) {
            Probe::ConnAck => return true,
            Probe::NoConnAck => return false,
            Probe::NotListening => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn built_ringmq() -> Option<PathBuf> {
    ["debug", "release"]
        .iter()
        .map(|profile| target_dir().join(profile).join("ringmq"))
        .find(|p| p.is_file())
}

/// The broker binary from the workspace target dir, built once with `cargo build -p ringmq`
/// when missing (`cargo test -p ringmq-load` alone does not build it).
fn ringmq_binary() -> Option<PathBuf> {
    static BINARY: OnceLock<Option<PathBuf>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            built_ringmq().or_else(|| {
                let built = Command::new(env!("CARGO"))
                    .args(["build", "-q", "-p", "ringmq"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .is_ok_and(|s| s.success());
                if built { built_ringmq() } else { None }
            })
        })
        .clone()
}

fn start_ringmq() -> Option<Broker> {
    let binary = ringmq_binary()?;
    // The same per-session queue bound as the Mosquitto config below: a subscriber that lags
    // a closed-loop publisher by more than the default 1000 messages would lose some (counted).
    let config = "[queues]\nmax_queued_messages = 100000\n";
    let process = broker_process::Broker::start_binary(&binary, 2, config).ok()?;
    let port = process.addr.port();
    let broker = Broker {
        name: "ringmq",
        port,
        process: Process::Ringmq(process),
    };
    (probe_connect(port) == Probe::ConnAck).then_some(broker)
}

fn mosquitto_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn start_mosquitto() -> Option<Broker> {
    let binary = mosquitto_binary()?;
    let port = free_port();
    let dir = scratch_dir("mosquitto");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
             max_queued_messages 100000\nmax_inflight_messages 0\npersistence false\n"
        ),
    )
    .ok()?;
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let up = wait_until_up(&mut child, port);
    let broker = Broker {
        name: "mosquitto",
        port,
        process: Process::Mosquitto { child, dir },
    };
    up.then_some(broker)
}

/// The broker to test against, or `None` (the test then passes without running).
fn broker() -> Option<Broker> {
    let choice = std::env::var("RINGMQ_LOAD_TEST_BROKER").unwrap_or_default();
    let broker = match choice.as_str() {
        "ringmq" => Some(start_ringmq().expect("RINGMQ_LOAD_TEST_BROKER=ringmq: it did not start")),
        "mosquitto" => {
            Some(start_mosquitto().expect("RINGMQ_LOAD_TEST_BROKER=mosquitto: it did not start"))
        }
        _ => start_ringmq().or_else(start_mosquitto),
    };
    if broker.is_none() {
        eprintln!(
            "no broker: ringmq is not built (or does not answer CONNECT) and mosquitto is not installed; skipping"
        );
    }
    broker
}

/// Runs `ringmq-load` against `broker`, successful or not.
fn try_run_load(broker: &Broker, args: &[&str]) -> Output {
    Command::new(LOAD)
        .args(args)
        .args([
            "--port",
            &broker.port.to_string(),
            "--quiet",
            "--client-prefix",
            &format!("it{}", free_port()),
        ])
        .output()
        .expect("ringmq-load runs")
}

fn run_load(broker: &Broker, args: &[&str]) -> Output {
    let output = try_run_load(broker, args);
    assert!(
        output.status.success(),
        "ringmq-load {args:?} against {} failed:\n{}{}",
        broker.name,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a scenario with `--json` and returns the parsed summary.
fn run_json(broker: &Broker, args: &[&str]) -> Value {
    run_json_unless(broker, args, "").expect("the run succeeds")
}

/// Like `run_json`, but `None` when the run fails with `refusal` in its error (a broker may
/// legitimately refuse an optional feature); any other failure fails the test.
fn run_json_unless(broker: &Broker, args: &[&str], refusal: &str) -> Option<Value> {
    let dir = scratch_dir("json");
    let json = dir.join("run.json");
    let mut all: Vec<&str> = args.to_vec();
    let json_arg = json.display().to_string();
    all.extend(["--json", &json_arg]);
    let output = try_run_load(broker, &all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && !refusal.is_empty() && stderr.contains(refusal) {
        eprintln!(
            "{} refuses this scenario ({refusal}); skipping",
            broker.name
        );
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    assert!(
        output.status.success(),
        "ringmq-load {all:?} against {} failed:\n{}{stderr}",
        broker.name,
        String::from_utf8_lossy(&output.stdout),
    );
    let text = std::fs::read_to_string(&json).expect("--json file written");
    let _ = std::fs::remove_dir_all(&dir);
    Some(serde_json::from_str(&text).expect("--json is valid JSON"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn a_qos1_pairs_run_of_known_size_delivers_every_message_exactly_once() {
    // QoS 1 on a healthy connection: every PUBLISH acknowledged and delivered [MQTT-4.3.2].
    let Some(broker) = broker() else { return };
    let dir = scratch_dir("pairs");
    let hgrm = dir.join("pairs.hgrm");
    let hgrm_arg = hgrm.display().to_string();
    let v = run_json(
        &broker,
        &[
            "pairs",
            "-n",
            "4",
            "--qos",
            "1",
            "--count",
            "2000",
            "--warmup",
            "0",
            "--duration",
            "8",
            "--hgrm",
            &hgrm_arg,
        ],
    );
    assert_eq!(u(&v, "sent"), 8000, "{v}");
    assert_eq!(u(&v, "expected"), 8000);
    assert_eq!(u(&v, "acked"), 8000, "every QoS 1 PUBLISH gets its PUBACK");
    assert_eq!(
        u(&v, "received"),
        8000,
        "{} acknowledged all 8000 PUBLISHes but delivered {} of them before the drain ended",
        broker.name,
        u(&v, "received")
    );
    assert_eq!(u(&v, "lost"), 0);
    assert_eq!(u(&v, "duplicated"), 0);
    assert_eq!(u(&v, "unexpected"), 0);
    assert_eq!(u(&v["latency_us"], "count"), 8000);
    assert!(u(&v["latency_us"], "p50") >= 1);
    assert_eq!(u(&v["connect_latency_us"], "count"), 8);
    assert_eq!(
        u(&v["send_lag_us"], "count"),
        0,
        "closed loop has no schedule to be late on"
    );

    let text = std::fs::read_to_string(&hgrm).expect(".hgrm written");
    let dist = ringmq_load::hgrm::parse_distribution(&text).expect(".hgrm parses");
    assert_eq!(dist.count(), 8000);
    let p50_ms = dist.value_at(0.5).expect("p50");
    let json_p50_ms = u(&v["latency_us"], "p50") as f64 / 1000.0;
    assert!(
        (p50_ms - json_p50_ms).abs() <= 0.002,
        "{p50_ms} vs {json_p50_ms}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn qos0_fanout_delivers_each_message_to_every_subscriber() {
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &[
            "fanout",
            "-s",
            "5",
            "--count",
            "1000",
            "--warmup",
            "0",
            "--duration",
            "8",
        ],
    );
    assert_eq!(u(&v, "sent"), 1000, "{v}");
    assert_eq!(u(&v, "expected"), 5000);
    assert_eq!(u(&v, "received"), 5000);
    assert_eq!(u(&v, "lost"), 0);
    assert_eq!(u(&v, "duplicated"), 0);
}

#[test]
fn qos2_delivers_exactly_once() {
    // QoS 2: no loss and no duplicate [MQTT-4.3.3].
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &[
            "pairs",
            "-n",
            "2",
            "--qos",
            "2",
            "--count",
            "500",
            "--warmup",
            "0",
            "--duration",
            "8",
        ],
    );
    assert_eq!(u(&v, "sent"), 1000, "{v}");
    assert_eq!(u(&v, "received"), 1000);
    assert_eq!(u(&v, "lost"), 0);
    assert_eq!(u(&v, "duplicated"), 0);
}

#[test]
fn a_shared_group_receives_each_message_once_across_its_members() {
    // [MQTT-4.8.2] each message to a shared subscription goes to one member of the group.
    let Some(broker) = broker() else { return };
    let Some(v) = run_json_unless(
        &broker,
        &[
            "shared",
            "-p",
            "2",
            "-s",
            "3",
            "--qos",
            "1",
            "--count",
            "1000",
            "--warmup",
            "0",
            "--duration",
            "8",
        ],
        // MQTT 5.0 lets a server decline shared subscriptions with SUBACK 0x9E.
        "SharedSubscriptionsNotSupported",
    ) else {
        return;
    };
    assert_eq!(v["mqtt"], "5");
    assert_eq!(u(&v, "sent"), 2000, "{v}");
    assert_eq!(u(&v, "received"), 2000);
    assert_eq!(u(&v, "lost"), 0);
    assert_eq!(u(&v, "duplicated"), 0);
}

#[test]
fn fanin_over_topic_wildcards_with_mqtt5_counts_every_publisher() {
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &[
            "fanin",
            "-p",
            "4",
            "--topics",
            "4",
            "--mqtt",
            "5",
            "--count",
            "500",
            "--warmup",
            "0",
            "--duration",
            "8",
        ],
    );
    assert_eq!(u(&v, "sent"), 2000, "{v}");
    assert_eq!(u(&v, "received"), 2000);
    assert_eq!(u(&v, "lost"), 0);
}

#[test]
fn open_loop_sends_at_the_requested_rate() {
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &[
            "fanin",
            "-p",
            "2",
            "--rate",
            "500",
            "--warmup",
            "0",
            "--duration",
            "1",
        ],
    );
    let sent = u(&v, "sent");
    assert!(
        (950..=1050).contains(&sent),
        "2 x 500/s for 1 s sent {sent}"
    );
    assert_eq!(u(&v, "lost"), 0);
    assert_eq!(
        u(&v["send_lag_us"], "count"),
        u(&v, "sent_in_window"),
        "every open-loop send in the window records how late it went out: {v}"
    );
    // The generator's own lateness must stay far below monoio's 1 ms timer tick on an idle
    // machine; a generous bound, as the test machine is shared.
    assert!(
        u(&v["send_lag_us"], "p50") < 500,
        "median send lag {} µs",
        u(&v["send_lag_us"], "p50")
    );
}

#[test]
fn iot_devices_reach_every_wildcard_subscriber() {
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &[
            "iot",
            "-n",
            "50",
            "-s",
            "2",
            "--rate",
            "10",
            "--warmup",
            "0",
            "--duration",
            "1",
        ],
    );
    let sent = u(&v, "sent");
    assert!(sent >= 450, "50 devices x 10/s for 1 s sent {sent}");
    assert_eq!(u(&v, "received"), 2 * sent);
    assert_eq!(u(&v, "lost"), 0);
}

#[test]
fn a_connection_storm_reports_connects_and_their_latency() {
    let Some(broker) = broker() else { return };
    let v = run_json(
        &broker,
        &["connect", "-n", "4", "--warmup", "0", "--duration", "1"],
    );
    let connects = u(&v, "connects");
    assert!(connects > 10, "{v}");
    assert_eq!(u(&v, "connect_failures"), 0);
    assert!(u(&v["latency_us"], "count") > 0);
}

#[test]
fn idle_connections_ping_and_report_the_broker_memory() {
    let Some(broker) = broker() else { return };
    let pid = broker.pid().to_string();
    let v = run_json(
        &broker,
        &[
            "idle",
            "-n",
            "20",
            "--keepalive",
            "1",
            "--warmup",
            "0",
            "--duration",
            "1.2",
            "--broker-pid",
            &pid,
        ],
    );
    assert!(u(&v, "pings") >= 20, "{v}");
    assert!(u(&v, "broker_rss_kib") > 0);
}

#[test]
fn no_broker_on_the_port_exits_non_zero_and_says_why() {
    let port = free_port();
    let output = Command::new(LOAD)
        .args([
            "pairs",
            "-n",
            "1",
            "--duration",
            "1",
            "--port",
            &port.to_string(),
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn a_broker_that_goes_away_mid_run_is_an_error() {
    let Some(mut broker) = broker() else { return };
    let port = broker.port.to_string();
    let run = Command::new(LOAD)
        .args([
            "fanin",
            "-p",
            "2",
            "--warmup",
            "0",
            "--duration",
            "8",
            "--quiet",
            "--port",
            &port,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    std::thread::sleep(Duration::from_millis(1000));
    broker.kill();
    let started = Instant::now();
    let output = run.wait_with_output().expect("exits");
    assert!(!output.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stops soon after the broker went away"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("closed") || stderr.contains("reset"),
        "{stderr}"
    );
}

#[test]
fn compare_reads_back_a_runs_hgrm_and_plots_it() {
    let Some(broker) = broker() else { return };
    let dir = scratch_dir("compare");
    let a = dir.join("a.hgrm").display().to_string();
    let b = dir.join("b.hgrm").display().to_string();
    let svg = dir.join("cmp.svg").display().to_string();
    for file in [&a, &b] {
        run_load(
            &broker,
            &[
                "pairs",
                "-n",
                "1",
                "--count",
                "300",
                "--warmup",
                "0",
                "--duration",
                "5",
                "--hgrm",
                file,
            ],
        );
    }
    let output = Command::new(LOAD)
        .args(["compare", &a, &b, "--svg", &svg, "--labels", "first,second"])
        .output()
        .expect("compare runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("first") && table.contains("second") && table.contains("p99.9"),
        "{table}"
    );
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert_eq!(plot.matches("<polyline").count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A ringmq broker with a TLS listener (`listeners[0]`), a WebSocket one (`listeners[1]`)
/// and a WebSocket-over-TLS one (`listeners[2]`), certificates made here; and the CA file.
fn start_ringmq_secure(dir: &Path) -> Option<(broker_process::Broker, PathBuf)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let binary = ringmq_binary()?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let ca_path = write("ca.pem", &ca.pem());
    let tls = format!(
        "[listeners.tls]\ncert = {:?}\nkey = {:?}\n",
        write("server.pem", &cert.pem()),
        write("server.key", &key.serialize_pem())
    );
    let config = format!(
        "[[listeners]]\nbind = \"127.0.0.1:0\"\n{tls}\n\
         [[listeners]]\nbind = \"127.0.0.1:0\"\nprotocol = \"websockets\"\n\n\
         [[listeners]]\nbind = \"127.0.0.1:0\"\nprotocol = \"websockets\"\n{tls}\n\
         [queues]\nmax_queued_messages = 100000\n"
    );
    let process = broker_process::Broker::start_binary(&binary, 2, &config).ok()?;
    Some((process, PathBuf::from(ca_path)))
}

#[test]
fn tls_and_websocket_runs_deliver_every_message() {
    // ringmq only: Mosquitto here has no TLS or WebSocket listener configured.
    let dir = scratch_dir("secure");
    let Some((process, ca)) = start_ringmq_secure(&dir) else {
        eprintln!("ringmq is not built; skipping");
        return;
    };
    let ca = ca.display().to_string();
    for (listener, extra) in [
        ("listeners[0]", vec!["--tls", "--cafile", &ca]),
        ("listeners[1]", vec!["--ws"]),
        ("listeners[2]", vec!["--ws", "--tls", "--cafile", &ca]),
    ] {
        let port = process.listener(listener).port();
        let broker = Broker {
            name: "ringmq",
            port,
            process: Process::Listener { pid: process.pid() },
        };
        let mut args = vec![
            "pairs",
            "-n",
            "2",
            "--qos",
            "1",
            "--count",
            "300",
            "--size",
            "2000",
            "--warmup",
            "0",
            "--duration",
            "8",
        ];
        args.extend(extra.iter().copied());
        let v = run_json(&broker, &args);
        assert_eq!(u(&v, "sent"), 600, "{listener}: {v}");
        assert_eq!(u(&v, "acked"), 600, "{listener}");
        assert_eq!(u(&v, "received"), 600, "{listener}");
        assert_eq!(u(&v, "lost") + u(&v, "duplicated"), 0, "{listener}");
        let mut storm = vec!["connect", "-n", "2", "--warmup", "0", "--duration", "0.5"];
        storm.extend(extra.iter().copied());
        let v = run_json(&broker, &storm);
        assert!(u(&v, "connects") > 0, "{listener}: {v}");
        assert_eq!(u(&v, "connect_failures"), 0, "{listener}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
