#!/usr/bin/env bash
# The interop suite: ringmq with clients written by others. Installs them (Debian's
# mosquitto-clients, PyPI's paho-mqtt, npm's mqtt), makes a CA, a server and a client
# certificate with openssl, starts the broker built by `cargo build` on ports it picks itself
# (two shards, so clients land on both): plain MQTT, mqtts://, mqtts:// requiring a client
# certificate, ws:// and wss://; runs the Python and Node suites against it, then the bridge
# tests that need a real Mosquitto (`cargo test --test bridge mosquitto`), and prints one
# closing line: "interop: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd .. && pwd)
# shellcheck source=loadtest/lib.sh
. "$root/loadtest/lib.sh"

install() {
  if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_passwd >/dev/null \
    || ! command -v openssl >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients mosquitto openssl \
      >/dev/null
  fi
  python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore 'paho-mqtt>=2,<3'
  python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore prometheus_client
  if [ ! -d mqttjs/node_modules/mqtt ]; then
    (cd mqttjs && npm ci --silent --no-audit --no-fund)
  fi
}

# A CA, a server certificate for localhost and 127.0.0.1, a client certificate (CN
# interop-client), and the broker's config with its TLS and WebSocket listeners.
make_pki() {
  pki=$(mktemp -d)
  make_loopback_pki "$pki" "ringmq interop" interop-client
  local tls
  tls=$(printf '[listeners.tls]\ncert = "%s"\nkey = "%s"' "$pki/server.pem" "$pki/server.key")
  {
    printf '[[listeners]]\nbind = "127.0.0.1:0"\n%s\n\n' "$tls"
    printf '[[listeners]]\nbind = "127.0.0.1:0"\n%s\n' "$tls"
    printf 'client_ca = "%s"\nrequire_client_cert = true\n\n' "$pki/ca.pem"
    printf '[[listeners]]\nbind = "127.0.0.1:0"\nprotocol = "websockets"\n\n'
    printf '[[listeners]]\nbind = "127.0.0.1:0"\nprotocol = "websockets"\n%s\n' "$tls"
  } >"$pki/ringmq.toml"
  export RINGMQ_CAFILE=$pki/ca.pem RINGMQ_CLIENT_CERT=$pki/client.pem \
    RINGMQ_CLIENT_KEY=$pki/client.key
}

# The port of the listener the broker announced as NAME ("... serving URL (NAME)").
port_of() {
  grep -F "serving " "$log" | grep -F "($1)" | head -1 | grep -oE '://[0-9.]+:[0-9]+' \
    | head -1 | sed 's/.*://'
}

start_broker() {
  local bin="$root/target/debug/ringmq"
  [ -x "$bin" ] || (cd "$root" && cargo build -q --bin ringmq)
  log=$(mktemp)
  printf '\n[metrics]\nsys_interval = 1\n' >>"$pki/ringmq.toml"
  "$bin" --listen 127.0.0.1:0 --shards 2 --config "$pki/ringmq.toml" 2>"$log" &
  broker=$!
  for _ in $(seq 100); do
    addr=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$log" | head -1 | awk '{print $3}') || true
    [ -n "${addr:-}" ] && break
    sleep 0.1
  done
  if [ -z "${addr:-}" ]; then
    echo "interop: the broker did not start:"; cat "$log"; exit 1
  fi
  export RINGMQ_HOST=${addr%:*} RINGMQ_PORT=${addr##*:} RINGMQ_BIN=$bin
  RINGMQ_MQTTS_PORT=$(port_of "listeners[0]")
  RINGMQ_MTLS_PORT=$(port_of "listeners[1]")
  RINGMQ_WS_PORT=$(port_of "listeners[2]")
  RINGMQ_WSS_PORT=$(port_of "listeners[3]")
  export RINGMQ_MQTTS_PORT RINGMQ_MTLS_PORT RINGMQ_WS_PORT RINGMQ_WSS_PORT
}

install
make_pki
start_broker
trap 'kill $broker 2>/dev/null || true; rm -rf "$pki"' EXIT

passed=0; failed=0
count() { # "<passed> <failed>" from a suite's last line; a suite that printed none failed
  local p="" f=""
  read -r p f <<<"$1" || true
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}
py=$(python3 "$here/test_clients.py" 2>&1) || true
echo "$py"
count "$(echo "$py" | awk '/^python: /{print $2, $4}' | tail -1)"
metrics=$(python3 "$here/metrics_prometheus_client.py" "$RINGMQ_BIN" 2>&1) || true
echo "$metrics"
count "$(echo "$metrics" | awk '/passed, .* failed/{print $1, $3}' | tail -1)"
js=$(node "$here/mqttjs/test.mjs" 2>&1) || true
echo "$js"
count "$(echo "$js" | awk '/^node: /{print $2, $4}' | tail -1)"

# The bridge tests against a real Mosquitto: `cargo test` skips them where Mosquitto is not
# installed (a machine with only Rust); it is now, so here they must run.
bridges=$(cd "$root" && RINGMQ_TEST_REQUIRE_MOSQUITTO=1 cargo test -q --test bridge mosquitto 2>&1) || true
echo "$bridges" | grep -E '^test result|panicked|FAILED' || true
count "$(echo "$bridges" | awk '/^test result/{print $4, $6}' | tr -d ';' | tail -1)"

kill $broker 2>/dev/null || true
wait $broker 2>/dev/null || true
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
