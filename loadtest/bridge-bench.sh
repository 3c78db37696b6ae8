#!/usr/bin/env bash
# bridge-bench.sh: messages/s through a bridge, ringmq-load publishers on broker A and
# subscribers on broker B (`--sub-host/--sub-port`), at QoS 0 and QoS 1, for
#   ringmq -> ringmq       (A's [[bridges]] to B)
#   ringmq -> mosquitto    (A's [[bridges]] to a Mosquitto B)
#   mosquitto -> mosquitto (Mosquitto's own `connection` bridge)
# and one Markdown table (msgs/s, p50, p99, lost) for docs/performance.md. Not a timed test:
# run it by hand on a quiet machine. Only 127.0.0.1; every broker it starts is stopped by its
# PID; every run is bounded in time.
#
#   loadtest/bridge-bench.sh [--duration S] [--warmup S] [--publishers N] [--size B]
#                            [--shards N] [--pairs LIST] [--out DIR] [--no-build]
#                            [--bin-dir DIR]
#
#   Every broker runs with an in-flight window of 256 (WINDOW below).
#   --pairs LIST   any of ringmq-ringmq,ringmq-mosquitto,mosquitto-mosquitto (default all; the
#                  Mosquitto pairs are skipped with a message when it is not installed)
#   --shards N     shards of each ringmq (default: nproc / 2, at least 1: two brokers share
#                  the machine with the load generator)
#   --bin-dir DIR  where ringmq and ringmq-load are (default target/release; a debug build
#                  only checks that the script works, its numbers mean nothing)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
DURATION=10
WARMUP=2
PUBLISHERS=4
# The in-flight window of every broker, both ways: one bridge connection carries the QoS 1
# traffic of all the publishers, so its window (not the brokers) bounds it at the default 64
# (ringmq) / 100 (the Mosquitto baseline). The same for all three pairs.
WINDOW=256
SIZE=64
SHARDS=$(( $(nproc) / 2 ))
[ "$SHARDS" -ge 1 ] || SHARDS=1
PAIRS=ringmq-ringmq,ringmq-mosquitto,mosquitto-mosquitto
OUT=$ROOT/target/bridge-bench
BUILD=1
BIN_DIR=""

die() { echo "bridge-bench: $*" >&2; exit 1; }
say() { echo "bridge-bench: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --publishers) PUBLISHERS=$2; shift ;;
        --size) SIZE=$2; shift ;;
        --shards) SHARDS=$2; shift ;;
        --pairs) PAIRS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

MOSQUITTO=""
for m in /usr/sbin/mosquitto "$(command -v mosquitto || true)"; do
    if [ -n "$m" ] && [ -x "$m" ]; then MOSQUITTO=$m; break; fi
done

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p ringmq -p ringmq-load) || die "build failed"
fi
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
RINGMQ=$BIN_DIR/ringmq
LOAD=$BIN_DIR/ringmq-load
[ -x "$RINGMQ" ] && [ -x "$LOAD" ] || die "no release binaries (drop --no-build)"
mkdir -p "$OUT"
# Mosquitto, run as root, reads its files as the user `mosquitto`.
chmod 755 "$OUT"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT

# Ports 22001-22999 (`free_port`, loadtest/lib.sh).
PORT_BASE=22000
wait_for_port() {
    local _
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before listening on $1 (see $4)"
        port_in_use "$1" && return 0
        sleep 0.1
    done
    die "$3 is not listening on 127.0.0.1:$1 after 10 s (see $4)"
}

# start_ringmq NAME PORT [BRIDGE_TO_PORT QOS]: a ringmq on PORT, bridging `load/#` (the
# topics of ringmq-load) out to
# 127.0.0.1:BRIDGE_TO_PORT at QOS when given.
start_ringmq() {
    local name=$1 port=$2 conf=$OUT/$1.toml log=$OUT/$1.log
    printf 'listen = "127.0.0.1:%s"\n[mqtt]\nreceive_maximum = %s\nmax_inflight = %s\n' \
        "$port" "$WINDOW" "$WINDOW" >"$conf"
    if [ $# -ge 4 ]; then
        cat >>"$conf" <<TOML
[[bridges]]
name = "bench"
address = "127.0.0.1:$3"
protocol = "mqtt311"
topics = ["load/# out $4"]
TOML
    fi
    "$RINGMQ" --config "$conf" --shards "$SHARDS" 2>"$log" &
    PIDS+=($!)
    wait_for_port "$port" "$!" "$name" "$log"
}

# start_mosquitto NAME PORT [BRIDGE_TO_PORT QOS]: the same with Mosquitto's own bridge.
start_mosquitto() {
    local name=$1 port=$2 conf=$OUT/$1.conf log=$OUT/$1.log
    mosquitto_baseline "$port" | sed "s/^max_inflight_messages .*/max_inflight_messages $WINDOW/" >"$conf"
    if [ $# -ge 4 ]; then
        printf 'connection bench\naddress 127.0.0.1:%s\nbridge_protocol_version mqttv311\ntopic load/# out %s\ncleansession true\n' "$3" "$4" >>"$conf"
    fi
    chmod 644 "$conf"
    "$MOSQUITTO" -c "$conf" 2>"$log" &
    PIDS+=($!)
    wait_for_port "$port" "$!" "$name" "$log"
}

json_num() {
    local v
    v=$(grep -m1 "\"$2\":" "$1" 2>/dev/null | sed 's/.*: *//; s/,$//; s/null/0/' || true)
    echo "${v:-0}"
}

TABLE=$OUT/table.md
{
    echo "| bridge | QoS | msgs/s | p50 (us) | p99 (us) | lost |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
} >"$TABLE"

# run PAIR QOS: brokers A (publishers) and B (subscribers), A bridged to B, one fanin run.
run() {
    local pair=$1 qos=$2 a_kind=${1%-*} b_kind=${1#*-} a b base
    free_port b
    free_port a
    "start_$b_kind" "$pair-b" "$b"
    "start_$a_kind" "$pair-a" "$a" "$b" "$qos"
    # The bridge connects on its own schedule: a second to be up.
    sleep 1
    base=$OUT/$pair-qos$qos
    say "$pair QoS $qos"
    "$LOAD" fanin --host 127.0.0.1 --port "$a" --sub-host 127.0.0.1 --sub-port "$b" \
        --publishers "$PUBLISHERS" --topics "$PUBLISHERS" --qos "$qos" --size "$SIZE" \
        --duration "$DURATION" --warmup "$WARMUP" --client-prefix "bench-$pair" \
        --json "$base.json" --hgrm "$base.hgrm" --quiet >"$base.txt" || say "$pair QoS $qos: ringmq-load failed (see $base.txt)"
    printf '| %s | %s | %.0f | %s | %s | %s |\n' "${pair/-/ -> }" "$qos" \
        "$(json_num "$base.json" delivered_per_sec)" "$(json_num "$base.json" latency_p50_us)" \
        "$(json_num "$base.json" latency_p99_us)" "$(json_num "$base.json" lost)" >>"$TABLE"
    cleanup
}

IFS=, read -ra WANTED <<<"$PAIRS"
for pair in "${WANTED[@]}"; do
    case $pair in
        ringmq-ringmq|ringmq-mosquitto|mosquitto-mosquitto) ;;
        *) die "unknown pair $pair" ;;
    esac
    if [[ $pair == *mosquitto* ]] && [ -z "$MOSQUITTO" ]; then
        say "$pair: skipped, mosquitto is not installed"
        continue
    fi
    for qos in 0 1; do run "$pair" "$qos"; done
done

cat "$TABLE"
say "results in $OUT"
