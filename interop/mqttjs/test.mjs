// Interop with MQTT.js (npm `mqtt`), MQTT 3.1.1 and 5.0, against ringmq, over TCP, ws://
// and wss://. Run by interop/run.sh (RINGMQ_HOST, RINGMQ_PORT, RINGMQ_WS_PORT,
// RINGMQ_WSS_PORT, RINGMQ_CAFILE); prints "node: N passed, M failed" last.
import { readFileSync } from "node:fs";
import mqtt from "mqtt";

const url = `mqtt://${process.env.RINGMQ_HOST ?? "127.0.0.1"}:${process.env.RINGMQ_PORT ?? 1883}`;
const unique = (p) => `${p}-${Math.random().toString(16).slice(2, 12)}`;

function connect(protocolVersion, extra = {}) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion, clientId: unique("js"), reconnectPeriod: 0, ...extra });
    c.once("connect", (connack) => resolve([c, connack]));
    c.once("error", reject);
  });
}

function received(client, n, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${n}`)), timeoutMs);
    client.on("message", (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), packet });
      if (got.length === n) { clearTimeout(timer); resolve(got); }
    });
  });
}

const tests = {
  // [MQTT-4.3.2-1] QoS 1 is delivered at least once; here once each, in order [MQTT-4.6.0-6].
  async "qos 1 messages flow from an MQTT.js 3.1.1 publisher to a 5.0 subscriber in order"() {
    const topic = unique("interop/js");
    const [sub] = await connect(5);
    await sub.subscribeAsync(topic, { qos: 1 });
    const [pub] = await connect(4);
    const want = [...Array(50).keys()].map(String);
    const arriving = received(sub, want.length);
    for (const m of want) await pub.publishAsync(topic, m, { qos: 1 });
    const got = await arriving;
    if (got.map((g) => g.payload).join() !== want.join()) throw new Error(`order: ${got.map((g) => g.payload)}`);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  },
  // 5.0 section 3.3.2.3.4: the broker may alias topics; MQTT.js resolves them.
  async "a 5.0 subscriber that allows topic aliases sees the right topic on every message"() {
    const topic = unique("interop/alias");
    const [sub] = await connect(5, { properties: { topicAliasMaximum: 8 } });
    await sub.subscribeAsync(topic, { qos: 0 });
    const [pub] = await connect(5);
    const arriving = received(sub, 5);
    for (let i = 0; i < 5; i++) await pub.publishAsync(topic, `a${i}`, { qos: 1 });
    const got = await arriving;
    if (!got.every((g) => g.topic === topic)) throw new Error(`topics: ${got.map((g) => g.topic)}`);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  },
  // MQTT 5.0 section 6: MQTT over WebSocket, as browsers speak it, plain and over TLS.
  async "MQTT.js over ws:// and wss:// exchanges messages with a TCP client"() {
    const { RINGMQ_WS_PORT: ws, RINGMQ_WSS_PORT: wss, RINGMQ_CAFILE: cafile } = process.env;
    if (!ws || !wss || !cafile) throw new Error("no WebSocket listeners announced");
    const open = (url, extra) => new Promise((resolve, reject) => {
      const c = mqtt.connect(url, { protocolVersion: 5, clientId: unique("js-ws"), reconnectPeriod: 0, ...extra });
      c.once("connect", () => resolve(c));
      c.once("error", reject);
    });
    const viaWs = await open(`ws://localhost:${ws}/mqtt`);
    const viaWss = await open(`wss://localhost:${wss}/mqtt`, { ca: readFileSync(cafile) });
    const topic = unique("interop/js-ws");
    await viaWs.subscribeAsync(topic, { qos: 1 });
    await viaWss.subscribeAsync(topic, { qos: 1 });
    const [tcp] = await connect(4);
    const arriving = [received(viaWs, 2), received(viaWss, 2)];
    await tcp.publishAsync(topic, "from tcp", { qos: 1 });
    await viaWss.publishAsync(topic, "x".repeat(70000), { qos: 1 });
    for (const got of await Promise.all(arriving)) {
      const sizes = got.map((g) => g.payload.length).sort((a, b) => a - b).join();
      if (sizes !== "8,70000") throw new Error(`payload sizes ${sizes}`);
    }
    await Promise.all([viaWs.endAsync(), viaWss.endAsync(), tcp.endAsync()]);
  },
  // [MQTT-3.2.2-16] an empty client id with clean start gets an Assigned Client Identifier.
  async "an empty client id gets an assigned client identifier in 5.0"() {
    const [c, connack] = await connect(5, { clientId: "", clean: true });
    const id = connack.properties?.assignedClientIdentifier;
    if (!id) throw new Error("no Assigned Client Identifier");
    await c.endAsync();
  },
};

let passed = 0, failed = 0;
for (const [name, test] of Object.entries(tests)) {
  try { await test(); passed++; console.log(`ok   ${name}`); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
}
console.log(`node: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
