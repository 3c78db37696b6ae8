#!/usr/bin/env bash
# persistence-bench.sh: what persistence costs (issue 12), not a timed test. Two parts:
#
#  1. Throughput: ringmq-load `pairs -n 50 --qos 1 --persistent` against ringmq with
#     persistence off, fsync "never", "interval" and "always", and against Mosquitto with
#     `persistence true` (which snapshots its database every autosave_interval and syncs
#     nothing per message), pinned (broker on core 0 with 1 shard/thread, generator on
#     core 1) and unpinned (ringmq --shards N).
#  2. Restart time: ringmq started on logs holding --retained retained messages (1M by
#     default) and --sessions offline persistent sessions, written by
#     `examples/persist_fill.rs` as the shards would have; the time is the broker's own
#     recovery line ("recovered ... in T ms") and the wall time until it accepts a connection.
#
# Usage: loadtest/persistence-bench.sh [options]
#   --duration S      seconds per throughput run (default 10)
#   --runs N          runs per configuration (default 1)
#   --pairs N         publisher/subscriber pairs (default 50)
#   --shards N        ringmq shards unpinned (default: nproc)
#   --modes LIST      pinned,unpinned (default both)
#   --only PART       throughput or restart (default both)
#   --retained N      retained messages for the restart (default 1000000)
#   --sessions N      offline sessions for the restart (default 100000)
#   --no-mosquitto    skip Mosquitto
#   --out DIR         results (default target/persistence-bench)
# PROFILE=debug runs debug builds: a check of the script, not a measurement.
# Results: DIR/results.tsv (one line per run) and a Markdown table on stdout.
set -euo pipefail

die() { echo "persistence-bench: $*" >&2; exit 1; }
say() { echo "persistence-bench: $*" >&2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
DURATION=10 RUNS=1 PAIRS=50 SHARDS=$(nproc) MODES=pinned,unpinned ONLY=both
RETAINED=1000000 SESSIONS=100000 MOSQUITTO=1 OUT=$ROOT/target/persistence-bench
while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --pairs) PAIRS=$2; shift ;;
        --shards) SHARDS=$2; shift ;;
        --modes) MODES=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --retained) RETAINED=$2; shift ;;
        --sessions) SESSIONS=$2; shift ;;
        --no-mosquitto) MOSQUITTO=0 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case $ONLY in both|throughput|restart) ;; *) die "--only throughput or restart" ;; esac

# PROFILE=debug checks the script itself quickly (its numbers mean nothing).
PROFILE=${PROFILE:-release}
say "building ($PROFILE)"
if [ "$PROFILE" = release ]; then
    (cd "$ROOT" && cargo build --release -q -p ringmq -p ringmq-load --example persist_fill) \
        || die "cargo build --release failed"
else
    (cd "$ROOT" && cargo build -q -p ringmq -p ringmq-load --example persist_fill) \
        || die "cargo build failed"
fi
RINGMQ=$ROOT/target/$PROFILE/ringmq
LOAD=$ROOT/target/$PROFILE/ringmq-load
FILL=$ROOT/target/$PROFILE/examples/persist_fill
MOSQ_BIN=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ "$MOSQUITTO" = 1 ] && [ ! -x "$MOSQ_BIN" ]; then
    say "mosquitto not found: skipping it (apt-get install mosquitto)"
    MOSQUITTO=0
fi

mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
printf 'part\tmode\tbroker\tconfig\trun\tdelivered_per_sec\tp50_us\tp99_us\tlost\tvalue\n' >"$RESULTS"
WORK=$(mktemp -d)
# Mosquitto drops root for user mosquitto: its persistence directory must be its own.
chmod 755 "$WORK"
BROKER_PID=
cleanup() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports 23001-23999 (`free_port`, loadtest/lib.sh).
PORT_BASE=23000
# wait_for_port PORT: up to 60 s (a recovery of millions of records takes a while).
wait_for_port() {
    local _
    for _ in $(seq 600); do
        kill -0 "$BROKER_PID" 2>/dev/null || return 1
        port_in_use "$1" && return 0
        sleep 0.1
    done
    return 1
}
stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
}
json_num() {
    local v
    v=$(grep -m1 "\"$2\":" "$1" 2>/dev/null | sed 's/.*: *//; s/,$//; s/null/0/' || true)
    echo "${v:-0}"
}

# ringmq_config FILE PORT FSYNC DIR: FSYNC "off" writes no [persistence] section.
ringmq_config() {
    {
        echo "listen = \"127.0.0.1:$2\""
        echo "max_sessions = $((SESSIONS + 10000))"
        echo "[retained]"
        echo "max_messages = $((RETAINED + 1000))"
        echo "max_bytes = 4294967296"
        if [ "$3" != off ]; then
            echo "[persistence]"
            echo "dir = \"$4\""
            echo "fsync = \"$3\""
        fi
    } >"$1"
}

mosquitto_config() {
    mosquitto_baseline "$2" "$3" >"$1"
}

# throughput MODE BROKER CONFIG
throughput() {
    local mode=$1 broker=$2 config=$3 run port conf log dir base pin_broker=() pin_load=()
    local threads=$SHARDS
    if [ "$mode" = pinned ]; then
        pin_broker=(taskset -c 0) pin_load=(taskset -c 1) threads=1
    fi
    for run in $(seq "$RUNS"); do
        free_port port
        dir=$WORK/$broker-$config-$mode-$run
        mkdir -p "$dir"
        conf=$WORK/$broker-$config.conf
        log=$OUT/$mode-$broker-$config-$run.log
        if [ "$broker" = ringmq ]; then
            ringmq_config "$conf" "$port" "$config" "$dir"
            "${pin_broker[@]}" "$RINGMQ" --config "$conf" --shards "$threads" 2>"$log" &
        else
            chown mosquitto "$dir" 2>/dev/null || chmod 777 "$dir"
            mosquitto_config "$conf" "$port" "$dir"
            chmod 644 "$conf"
            "${pin_broker[@]}" "$MOSQ_BIN" -c "$conf" 2>"$log" &
        fi
        BROKER_PID=$!
        wait_for_port "$port" || { say "$broker ($config) did not start (see $log)"; stop_broker; continue; }
        base=$OUT/$mode-$broker-$config-$run
        "${pin_load[@]}" "$LOAD" pairs -n "$PAIRS" --qos 1 --persistent --port "$port" \
            --threads "$threads" --duration "$DURATION" --client-prefix "pb-$config-$run" \
            --json "$base.json" --hgrm "$base.hgrm" -q || say "$broker ($config): the run failed"
        stop_broker
        # "-" for an empty field: `read` with a tab IFS would merge empty ones.
        printf 'throughput\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\n' "$mode" "$broker" "$config" \
            "$run" "$(json_num "$base.json" delivered_per_sec)" \
            "$(json_num "$base.json" latency_p50_us)" "$(json_num "$base.json" latency_p99_us)" \
            "$(json_num "$base.json" lost)" >>"$RESULTS"
        say "$mode $broker $config run $run: $(json_num "$base.json" delivered_per_sec) msgs/s"
    done
}

# restart: fills the logs, then times two starts (the first also rewrites nothing: the
# logs are already where their shards want them).
restart() {
    local shards=$SHARDS dir=$WORK/restart port conf log started ms wall run
    say "writing $RETAINED retained messages and $SESSIONS sessions for $shards shards"
    "$FILL" "$dir" "$shards" "$RETAINED" "$SESSIONS" 64 >&2
    for run in $(seq "$RUNS"); do
        free_port port
        conf=$WORK/restart.conf
        ringmq_config "$conf" "$port" interval "$dir"
        log=$OUT/restart-$run.log
        started=$(date +%s%N)
        "$RINGMQ" --config "$conf" --shards "$shards" 2>"$log" &
        BROKER_PID=$!
        if ! wait_for_port "$port"; then
            say "ringmq did not start on the filled logs (see $log)"; stop_broker; continue
        fi
        wall=$(( ($(date +%s%N) - started) / 1000000 ))
        ms=$(grep -o 'recovered .* in [0-9]* ms' "$log" | grep -o '[0-9]* ms' | tail -1 | cut -d' ' -f1)
        stop_broker
        printf 'restart\t%s\tringmq\t%s retained, %s sessions\t%s\t-\t-\t-\t-\t%s ms recovery, %s ms to accept\n' \
            "$shards shards" "$RETAINED" "$SESSIONS" "$run" "${ms:-?}" "$wall" >>"$RESULTS"
        say "restart run $run: recovery ${ms:-?} ms, accepting after $wall ms"
    done
}

IFS=, read -r -a MODE_LIST <<<"$MODES"
if [ "$ONLY" != restart ]; then
    for mode in "${MODE_LIST[@]}"; do
        case $mode in pinned|unpinned) ;; *) die "unknown mode $mode" ;; esac
        for config in off never interval always; do throughput "$mode" ringmq "$config"; done
        [ "$MOSQUITTO" = 1 ] && throughput "$mode" mosquitto persistence
    done
fi
[ "$ONLY" != throughput ] && restart

echo
echo "| part | mode | broker | config | run | msgs/s | p50 us | p99 us | lost | |"
echo "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"
tail -n +2 "$RESULTS" | while IFS=$'\t' read -r part mode broker config run rate p50 p99 lost value; do
    echo "| $part | $mode | $broker | $config | $run | $rate | $p50 | $p99 | $lost | $value |"
done
say "results in $RESULTS"
