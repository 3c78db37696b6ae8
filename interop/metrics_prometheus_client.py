#!/usr/bin/env python3
"""/metrics read by a real Prometheus text parser (prometheus_client), counters moving.

Starts ringmq (2 shards, metrics on a loopback port it picks), publishes over a raw MQTT
3.1.1 socket, and parses every scrape with prometheus_client's text parser, which rejects
what Prometheus would. Needs `pip install prometheus_client` and a built broker:

    cargo build -p ringmq && python3 interop/metrics_prometheus_client.py [target/debug/ringmq]

Exits 0 and prints "1 passed, 0 failed" when every check holds.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ringmq"
REQUIRED = {
    "ringmq_connections": "gauge",
    "ringmq_connections_accepted": "counter",
    "ringmq_messages_received": "counter",
    "ringmq_messages_sent": "counter",
    "ringmq_bytes_received": "counter",
    "ringmq_bytes_sent": "counter",
    "ringmq_messages_dropped": "counter",
    "ringmq_sessions": "gauge",
    "ringmq_subscriptions": "gauge",
    "ringmq_retained_messages": "gauge",
    "ringmq_retained_bytes": "gauge",
    "ringmq_inflight_messages": "gauge",
    "ringmq_mesh_ring_messages": "gauge",
    "ringmq_mesh_overflows": "counter",
}


def start_broker():
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write('[metrics]\nlisten = "127.0.0.1:0"\n')
    config.close()
    broker = subprocess.Popen(
        [BINARY, "--listen", "127.0.0.1:0", "--shards", "2", "--config", config.name],
        stderr=subprocess.PIPE,
        text=True,
    )
    mqtt = metrics = None
    deadline = time.time() + 10
    while (mqtt is None or metrics is None) and time.time() < deadline:
        line = broker.stderr.readline()
        if m := re.search(r"metrics listening on ([0-9.]+):(\d+)", line):
            metrics = (m.group(1), int(m.group(2)))
        if m := re.search(r"ringmq listening on ([0-9.]+):(\d+)", line):
            mqtt = (m.group(1), int(m.group(2)))
    os.unlink(config.name)
    if mqtt is None or metrics is None:
        broker.kill()
        sys.exit("the broker did not announce its listeners")
    return broker, mqtt, metrics


def string(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def packet(first, body):
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + length + body


def mqtt_client(addr, client_id):
    s = socket.create_connection(addr, timeout=5)
    s.sendall(packet(0x10, string("MQTT") + bytes([4, 2, 0, 0]) + string(client_id)))
    assert s.recv(4)[:1] == b"\x20", "no CONNACK"
    return s


def families(addr):
    with urllib.request.urlopen(f"http://{addr[0]}:{addr[1]}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def total(fams, name, **labels):
    return sum(
        s.value
        for s in fams[name].samples
        if s.name.startswith(name) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def main():
    broker, mqtt, metrics = start_broker()
    try:
        fams = families(metrics)
        for name, kind in REQUIRED.items():
            assert name in fams, f"{name} missing"
            assert fams[name].type == kind, f"{name} is {fams[name].type}, not {kind}"
            assert fams[name].documentation, f"{name} has no HELP"
            for sample in fams[name].samples:
                assert "shard" in sample.labels, f"{sample} has no shard label"
        before = total(fams, "ringmq_messages_received", qos="0")
        pub = mqtt_client(mqtt, "py-pub")
        for _ in range(10):
            pub.sendall(packet(0x30, string("py/t") + b"hello"))
        deadline = time.time() + 5
        while time.time() < deadline:
            fams = families(metrics)
            if total(fams, "ringmq_messages_received", qos="0") >= before + 10:
                break
            time.sleep(0.1)
        assert total(fams, "ringmq_messages_received", qos="0") >= before + 10, "no movement"
        assert total(fams, "ringmq_connections") == 1
        assert total(fams, "ringmq_messages_dropped", cause="no_subscriber") >= 10
        pub.close()
        print("1 passed, 0 failed")
    finally:
        broker.kill()
        broker.wait()


if __name__ == "__main__":
    main()
