#!/usr/bin/env bash
# The interop suite: ringmq with clients written by others. Installs them (Debian's
# mosquitto-clients, PyPI's paho-mqtt, npm's mqtt), starts the broker built by `cargo build`
# on a port it picks itself (two shards, so clients land on both), runs the Python and
# Node suites against it, and prints one closing line: "interop: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd .. && pwd)

install() {
  if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_passwd >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients mosquitto >/dev/null
  fi
  python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore 'paho-mqtt>=2,<3'
  if [ ! -d mqttjs/node_modules/mqtt ]; then
    (cd mqttjs && npm ci --silent --no-audit --no-fund)
  fi
}

start_broker() {
  local bin="$root/target/debug/ringmq"
  [ -x "$bin" ] || (cd "$root" && cargo build -q --bin ringmq)
  log=$(mktemp)
  "$bin" --listen 127.0.0.1:0 --shards 2 2>"$log" &
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
}

install
start_broker
trap 'kill $broker 2>/dev/null || true' EXIT

passed=0; failed=0
count() { # "<passed> <failed>" from a suite's last line; a suite that printed none failed
  local p="" f=""
  read -r p f <<<"$1" || true
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}
py=$(python3 "$here/test_clients.py" 2>&1) || true
echo "$py"
count "$(echo "$py" | awk '/^python: /{print $2, $4}' | tail -1)"
js=$(node "$here/mqttjs/test.mjs" 2>&1) || true
echo "$js"
count "$(echo "$js" | awk '/^node: /{print $2, $4}' | tail -1)"

kill $broker 2>/dev/null || true
wait $broker 2>/dev/null || true
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
