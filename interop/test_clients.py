"""Interop with clients written by others: mosquitto_pub/mosquitto_sub (Eclipse Mosquitto's
C client) and paho-mqtt (Python), MQTT 3.1.1 and 5.0, against a ringmq with two shards, over
plain TCP, TLS (with and without a client certificate) and WebSockets (ws:// and wss://).

Each test names the behaviour and the spec statement it checks. Run by interop/run.sh, which
sets RINGMQ_HOST and RINGMQ_PORT, and for TLS and WebSockets RINGMQ_MQTTS_PORT,
RINGMQ_MTLS_PORT (client certificate required), RINGMQ_WS_PORT, RINGMQ_WSS_PORT,
RINGMQ_CAFILE, RINGMQ_CLIENT_CERT and RINGMQ_CLIENT_KEY; prints "python: N passed, M failed"
last."""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = os.environ.get("RINGMQ_HOST", "127.0.0.1")
PORT = int(os.environ.get("RINGMQ_PORT", "1883"))
WAIT = 10.0
ENV = os.environ.get


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Collector:
    """A paho client that records what it receives; connected and looping on return."""

    def __init__(self, client_id, protocol=mqtt.MQTTv311, clean=True, expiry=None, will=None):
        self.messages = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=clean if protocol != mqtt.MQTTv5 else None,
        )
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connected.set()
        if will:
            self.client.will_set(*will)
        props = None
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            if expiry is not None:
                props.SessionExpiryInterval = expiry
        if protocol == mqtt.MQTTv5:
            self.client.connect(HOST, PORT, keepalive=30, clean_start=clean, properties=props)
        else:
            self.client.connect(HOST, PORT, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(WAIT), f"{client_id} got no CONNACK"

    def _on_message(self, _client, _userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def subscribe(self, topic, qos):
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(WAIT), f"no SUBACK for {topic}"

    def wait_for(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.messages)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(client_id, topic, payloads, qos, protocol=mqtt.MQTTv311, retain=False):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    c.connect(HOST, PORT)
    c.loop_start()
    infos = [c.publish(topic, p, qos=qos, retain=retain) for p in payloads]
    for info in infos:
        info.wait_for_publish(WAIT)
        assert info.is_published(), "no acknowledgement for a publish"
    c.disconnect()
    c.loop_stop()


class MosquittoClients(unittest.TestCase):
    def sub(self, topic, count, *extra):
        return subprocess.Popen(
            ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-t", topic, "-C", str(count),
             "-W", "10", "-q", "2", *extra],
            stdout=subprocess.PIPE, text=True)

    def pub(self, *args):
        subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(PORT), *args],
                       check=True, timeout=10)

    def test_mosquitto_sub_receives_qos_0_1_2_from_mosquitto_pub_mqtt_4_3(self):
        # 3.1.1 section 4.3: each QoS level is delivered at min(publish, subscription) QoS.
        topic = unique("interop/qos")
        sub = self.sub(topic, 3, "-F", "%q %p")
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; SUBACK takes microseconds
        for q in (0, 1, 2):
            self.pub("-t", topic, "-q", str(q), "-m", f"m{q}")
        out, _ = sub.communicate(timeout=15)
        self.assertEqual(out.split("\n")[:3], ["0 m0", "1 m1", "2 m2"])

    def test_a_retained_message_reaches_a_later_mosquitto_sub_with_retain_set_mqtt_3_3_1_6(self):
        topic = unique("interop/retained")
        self.pub("-t", topic, "-q", "1", "-r", "-m", "kept")
        sub = self.sub(topic, 1, "-F", "%r %p")
        out, _ = sub.communicate(timeout=15)
        self.assertEqual(out.strip(), "1 kept")
        self.pub("-t", topic, "-r", "-n")  # an empty retained payload deletes [MQTT-3.3.1-10]

    def test_mosquitto_sub_v5_gets_a_message_from_mosquitto_pub_v311(self):
        topic = unique("interop/versions")
        sub = self.sub(topic, 1, "-V", "5", "-F", "%p")
        time.sleep(0.5)
        self.pub("-t", topic, "-q", "1", "-m", "across versions", "-V", "311")
        out, _ = sub.communicate(timeout=15)
        self.assertEqual(out.strip(), "across versions")


    def test_sys_clients_connected_seen_by_mosquitto_sub_follows_connects_and_disconnects(self):
        # Mosquitto's $SYS/broker/clients/connected, summed over both shards (published every
        # second here: the suite's broker runs with [metrics] sys_interval = 1). One
        # mosquitto_sub watches throughout, so it counts itself in every value it reads.
        watch = subprocess.Popen(
            ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-t",
             "$SYS/broker/clients/connected", "-W", "30"],
            stdout=subprocess.PIPE, text=True, bufsize=1)
        values = []
        threading.Thread(target=lambda: [values.append(int(l)) for l in watch.stdout],
                         daemon=True).start()

        def until(pred):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len(values) > 1 and pred(values[-1]):
                    return values[-1]
                time.sleep(0.1)
            return values[-1] if values else None

        try:
            before = until(lambda v: True)  # a value published since the watcher connected
            extra = [Collector(unique("sys-client")) for _ in range(4)]  # on both shards
            self.assertEqual(until(lambda v: v == before + 4), before + 4)
            for c in extra:
                c.close()
            self.assertEqual(until(lambda v: v == before), before)
        finally:
            watch.terminate()


class PahoClients(unittest.TestCase):
    def test_a_persistent_3_1_1_session_gets_what_was_published_while_it_was_away_mqtt_3_1_2_4(self):
        topic, sid = unique("interop/offline"), unique("paho-sub")
        sub = Collector(sid, clean=False)
        sub.subscribe(topic, 1)
        sub.close()
        publish_all(unique("paho-pub"), topic, [f"{i}" for i in range(20)], qos=1)
        back = Collector(sid, clean=False)
        got = back.wait_for(20)
        back.close()
        self.assertEqual([m.payload.decode() for m in got], [f"{i}" for i in range(20)])

    def test_qos2_messages_arrive_exactly_once_and_in_order_mqtt_4_3_3(self):
        topic = unique("interop/qos2")
        sub = Collector(unique("paho-sub"), protocol=mqtt.MQTTv5)
        sub.subscribe(topic, 2)
        publish_all(unique("paho-pub"), topic, [f"{i}" for i in range(200)], qos=2,
                    protocol=mqtt.MQTTv5)
        got = sub.wait_for(200)
        time.sleep(0.3)
        got = list(sub.messages)
        sub.close()
        self.assertEqual([m.payload.decode() for m in got], [f"{i}" for i in range(200)])

    def test_a_shared_subscription_gives_each_message_to_one_member_mqtt_4_8_2(self):
        topic = unique("interop/shared")
        members = [Collector(unique("paho-member"), protocol=mqtt.MQTTv5) for _ in range(2)]
        for m in members:
            m.subscribe(f"$share/g/{topic}", 1)
        publish_all(unique("paho-pub"), topic, [f"{i}" for i in range(100)], qos=1,
                    protocol=mqtt.MQTTv5)
        deadline = time.monotonic() + WAIT
        while sum(len(m.messages) for m in members) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        got = sorted(int(msg.payload) for m in members for msg in m.messages)
        for m in members:
            m.close()
        self.assertEqual(got, list(range(100)), "every message once, to one member")
        self.assertTrue(all(m.messages for m in members), "both members get a share")

    def test_the_will_is_published_when_a_client_vanishes_mqtt_3_1_2_8(self):
        topic = unique("interop/will")
        watcher = Collector(unique("paho-watch"), protocol=mqtt.MQTTv5)
        watcher.subscribe(topic, 1)
        doomed = Collector(unique("paho-doomed"), protocol=mqtt.MQTTv5,
                           will=(topic, b"gone", 1, False))
        doomed.client.loop_stop()
        doomed.client.socket().close()  # no DISCONNECT: the broker sees the socket close
        got = watcher.wait_for(1)
        watcher.close()
        self.assertEqual([m.payload for m in got], [b"gone"])


class MosquittoPasswordFile(unittest.TestCase):
    """A password file written by the real mosquitto_passwd, served by its own ringmq."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        passwd = os.path.join(cls.dir.name, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", passwd, "alice", "wonderland"],
                       check=True, timeout=10)
        subprocess.run(["mosquitto_passwd", "-b", passwd, "bob", "builder"], check=True,
                       timeout=10)
        config = os.path.join(cls.dir.name, "ringmq.toml")
        with open(config, "w") as f:
            f.write(f'[auth]\npassword_file = "{passwd}"\nallow_anonymous = false\n')
        cls.broker = subprocess.Popen(
            [os.environ.get("RINGMQ_BIN", "ringmq"), "--listen", "127.0.0.1:0", "--shards", "2",
             "--config", config], stderr=subprocess.PIPE, text=True)
        cls.port = None
        deadline = time.monotonic() + WAIT
        while cls.port is None and time.monotonic() < deadline:
            line = cls.broker.stderr.readline()
            found = re.search(r"listening on [0-9.]+:(\d+)", line)
            if found:
                cls.port = found.group(1)
        assert cls.port, "the broker with a password file did not start"
        threading.Thread(target=cls.broker.stderr.read, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.terminate()
        cls.broker.wait(10)
        cls.dir.cleanup()

    def pub(self, *auth):
        return subprocess.run(
            ["mosquitto_pub", "-h", HOST, "-p", self.port, "-t", "interop/auth", "-m", "x",
             "-q", "1", *auth], capture_output=True, text=True, timeout=10)

    def test_users_from_mosquitto_passwd_log_in_and_others_are_refused_3_2_2_3(self):
        # 3.1.1 section 3.2.2.3: return code 4 bad user name or password, 5 not authorized.
        self.assertEqual(self.pub("-u", "alice", "-P", "wonderland").returncode, 0)
        self.assertEqual(self.pub("-u", "bob", "-P", "builder", "-V", "5").returncode, 0)
        wrong = self.pub("-u", "alice", "-P", "nope")
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("bad user name or password", wrong.stderr.lower())
        anonymous = self.pub()
        self.assertNotEqual(anonymous.returncode, 0)
        self.assertIn("not authori", anonymous.stderr.lower())


@unittest.skipUnless(ENV("RINGMQ_MQTTS_PORT") and ENV("RINGMQ_CAFILE"), "no TLS listeners")
class TlsAndWebSockets(unittest.TestCase):
    """mosquitto_pub/sub with --cafile (and a client certificate), paho over TLS, ws:// and
    wss://: each message crosses from one transport to another through the broker."""

    ca = ENV("RINGMQ_CAFILE")
    cert, key = ENV("RINGMQ_CLIENT_CERT"), ENV("RINGMQ_CLIENT_KEY")

    def mosquitto(self, tool, port, *args):
        # The server certificate names localhost and 127.0.0.1; mosquitto checks the name.
        return [tool, "-h", "localhost", "-p", str(port), "--cafile", self.ca, *args]

    def test_mosquitto_pub_and_sub_over_tls_with_cafile(self):
        topic = unique("interop/tls")
        sub = subprocess.Popen(
            self.mosquitto("mosquitto_sub", ENV("RINGMQ_MQTTS_PORT"), "-t", topic, "-C", "1",
                           "-W", "10", "-q", "1"), stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        subprocess.run(self.mosquitto("mosquitto_pub", ENV("RINGMQ_MQTTS_PORT"), "-t", topic,
                                      "-q", "1", "-m", "over tls", "-V", "5"),
                       check=True, timeout=10)
        out, _ = sub.communicate(timeout=15)
        self.assertEqual(out.strip(), "over tls")

    def test_mosquitto_pub_with_a_client_certificate_where_one_is_required(self):
        port = ENV("RINGMQ_MTLS_PORT")
        topic = unique("interop/mtls")
        ok = subprocess.run(self.mosquitto("mosquitto_pub", port, "--cert", self.cert, "--key",
                                           self.key, "-t", topic, "-q", "1", "-m", "x"),
                            capture_output=True, text=True, timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        refused = subprocess.run(self.mosquitto("mosquitto_pub", port, "-t", topic, "-m", "x"),
                                 capture_output=True, text=True, timeout=10)
        self.assertNotEqual(refused.returncode, 0, "no client certificate, no connection")

    def paho(self, port, transport="tcp", tls=False, protocol=mqtt.MQTTv311):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("paho-tls"),
                        protocol=protocol, transport=transport)
        if transport == "websockets":
            c.ws_set_options(path="/mqtt")
        if tls:
            c.tls_set(ca_certs=self.ca)
        got, subscribed, connected = [], threading.Event(), threading.Event()
        c.on_connect = lambda *a: connected.set()
        c.on_subscribe = lambda *a: subscribed.set()
        c.on_message = lambda _c, _u, msg: got.append(msg.payload)
        c.connect("localhost", int(port), keepalive=30)
        c.loop_start()
        self.assertTrue(connected.wait(WAIT), f"paho over {transport} (tls {tls}): no CONNACK")
        return c, got, subscribed

    def test_paho_over_tls_ws_and_wss_talks_to_the_other_transports(self):
        clients = [
            ("tls", self.paho(ENV("RINGMQ_MQTTS_PORT"), tls=True)),
            ("ws", self.paho(ENV("RINGMQ_WS_PORT"), transport="websockets")),
            ("wss", self.paho(ENV("RINGMQ_WSS_PORT"), transport="websockets", tls=True,
                              protocol=mqtt.MQTTv5)),
        ]
        topic = unique("interop/transports")
        for _, (c, _, subscribed) in clients:
            c.subscribe(topic, 1)
            self.assertTrue(subscribed.wait(WAIT), "no SUBACK")
        big = b"x" * 100_000  # more than one TLS record and one WebSocket read
        for name, (c, _, _) in clients:
            c.publish(topic, name.encode(), qos=1).wait_for_publish(WAIT)
        clients[1][1][0].publish(topic, big, qos=1).wait_for_publish(WAIT)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and any(len(g) < 4 for _, (_, g, _) in clients):
            time.sleep(0.05)
        for name, (c, got, _) in clients:
            c.disconnect()
            c.loop_stop()
            self.assertEqual(sorted(got), sorted([b"tls", b"ws", b"wss", big]), name)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"python: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
