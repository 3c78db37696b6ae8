#!/usr/bin/env bash
# compare-brokers.sh: run the same ringmq-load scenarios against Mosquitto and ringmq on
# loopback, print the ringmq/mosquitto ratio table (msgs/s, p50, p99) and write one latency
# percentile plot per scenario. Only ever targets 127.0.0.1; every run is bounded in time.
#
#   loadtest/compare-brokers.sh [--pinned] [--duration S] [--warmup S] [--shards N]
#                               [--brokers mosquitto,ringmq] [--out DIR]
#
#   --pinned   broker on core 0 (`taskset -c 0`, ringmq with --shards 1), generator on core 1
#              with one thread.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=10
WARMUP=2
SHARDS=$(nproc)
PINNED=0
BROKERS=mosquitto,ringmq
OUT=$ROOT/target/compare-brokers

die() { echo "compare-brokers: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --pinned) PINNED=1 ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --shards) SHARDS=$2; shift ;;
        --brokers) BROKERS=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

BROKER_PIN=()
LOAD_PIN=()
LOAD_THREADS=()
if [ "$PINNED" = 1 ]; then
    command -v taskset >/dev/null || die "--pinned needs taskset (util-linux)"
    [ "$(nproc)" -ge 2 ] || die "--pinned needs at least 2 cores"
    BROKER_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    LOAD_THREADS=(--threads 1)
    SHARDS=1
fi

mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    for port in $(seq "$1" $(($1 + 200))); do
        if ! port_in_use "$port"; then echo "$port"; return; fi
    done
    die "no free port from $1"
}

# wait_for_port PORT PID NAME: up to 10 s for the broker to accept connections.
wait_for_port() {
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before listening on 127.0.0.1:$1 (see $OUT/$3.log)"
        if port_in_use "$1"; then return; fi
        sleep 0.1
    done
    die "$3 is not listening on 127.0.0.1:$1 after 10 s (see $OUT/$3.log)"
}

start_mosquitto() {
    if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
        echo "installing mosquitto with apt-get" >&2
        apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null \
            || die "cannot install mosquitto"
        # The package may start a system service on port 1883; this script uses its own.
        (systemctl stop mosquitto || service mosquitto stop) >/dev/null 2>&1 || true
    fi
    local bin
    bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    MOSQUITTO_PORT=$(free_port 21883)
    cat >"$OUT/mosquitto.conf" <<CONF
listener $MOSQUITTO_PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_queued_messages 100000
max_inflight_messages 0
persistence false
log_dest stderr
log_type error
log_type warning
CONF
    "${BROKER_PIN[@]}" "$bin" -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
    MOSQUITTO_PID=$!
    PIDS+=("$MOSQUITTO_PID")
    wait_for_port "$MOSQUITTO_PORT" "$MOSQUITTO_PID" mosquitto
}

start_ringmq() {
    local bin=$ROOT/target/release/ringmq
    [ -x "$bin" ] || die "ringmq is not built ($bin missing)"
    RINGMQ_PORT=$(free_port 22883)
    # The same per-session queue bound as Mosquitto's max_queued_messages above.
    cat >"$OUT/ringmq.toml" <<CONF
[queues]
max_queued_messages = 100000
CONF
    "${BROKER_PIN[@]}" "$bin" --config "$OUT/ringmq.toml" --listen "127.0.0.1:$RINGMQ_PORT" \
        --shards "$SHARDS" >"$OUT/ringmq.log" 2>&1 &
    RINGMQ_PID=$!
    PIDS+=("$RINGMQ_PID")
    wait_for_port "$RINGMQ_PORT" "$RINGMQ_PID" ringmq
}

echo "building (release)..." >&2
if [[ $BROKERS == *ringmq* ]]; then
    (cd "$ROOT" && cargo build --release -q -p ringmq -p ringmq-load) \
        || die "cargo build --release failed"
else
    (cd "$ROOT" && cargo build --release -q -p ringmq-load) || die "cargo build --release failed"
fi
LOAD=$ROOT/target/release/ringmq-load

[[ $BROKERS == *mosquitto* ]] && start_mosquitto
[[ $BROKERS == *ringmq* ]] && start_ringmq

SCENARIOS=(
    "fanin8-qos0|fanin -p 8 --qos 0"
    "fanout100-qos0|fanout -s 100 --qos 0"
    "pairs50-qos1|pairs -n 50 --qos 1"
)
BOUND=$((${DURATION%.*} + ${WARMUP%.*} + 30))

# run_one BROKER PORT NAME ARGS...: one bounded run writing NAME-BROKER.{json,hgrm}.
run_one() {
    local broker=$1 port=$2 name=$3
    shift 3
    echo "== $name against $broker" >&2
    # shellcheck disable=SC2068
    timeout "$BOUND" "${LOAD_PIN[@]}" "$LOAD" $@ --size 64 --port "$port" \
        --duration "$DURATION" --warmup "$WARMUP" --quiet "${LOAD_THREADS[@]}" \
        --client-prefix "cmp-$broker" \
        --json "$OUT/$name-$broker.json" --hgrm "$OUT/$name-$broker.hgrm" \
        | tee "$OUT/$name-$broker.txt" >&2 \
        || die "$name against $broker failed"
}

json_num() { grep -m1 "\"$2\":" "$1" | sed 's/.*: *//; s/,$//; s/null/0/'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

for entry in "${SCENARIOS[@]}"; do
    name=${entry%%|*}
    args=${entry#*|}
    [[ $BROKERS == *mosquitto* ]] && run_one mosquitto "$MOSQUITTO_PORT" "$name" $args
    [[ $BROKERS == *ringmq* ]] && run_one ringmq "$RINGMQ_PORT" "$name" $args
done

# Peak resident memory of each broker over all scenarios (VmHWM), read before they stop.
peak_rss() { awk '/^VmHWM/ { print $2 " kB" }' "/proc/$1/status" 2>/dev/null || echo "-"; }
echo
[[ $BROKERS == *mosquitto* ]] && echo "mosquitto peak RSS: $(peak_rss "$MOSQUITTO_PID")"
[[ $BROKERS == *ringmq* ]] && echo "ringmq peak RSS:    $(peak_rss "$RINGMQ_PID")"

echo
printf '%-16s %-10s %14s %10s %10s %8s %8s\n' scenario broker "msgs/s" "p50 µs" "p99 µs" "lost" "gen cpu"
for entry in "${SCENARIOS[@]}"; do
    name=${entry%%|*}
    for broker in mosquitto ringmq; do
        f=$OUT/$name-$broker.json
        [ -f "$f" ] && [[ $BROKERS == *$broker* ]] || continue
        printf '%-16s %-10s %14.0f %10s %10s %8s %8.2f\n' "$name" "$broker" \
            "$(json_num "$f" delivered_per_sec)" "$(json_num "$f" latency_p50_us)" \
            "$(json_num "$f" latency_p99_us)" "$(json_num "$f" lost)" \
            "$(json_num "$f" cpu_share)"
    done
done

if [[ $BROKERS == *mosquitto* && $BROKERS == *ringmq* ]]; then
    echo
    echo "ringmq / mosquitto (msgs/s: higher is better; latency: lower is better)"
    printf '%-16s %10s %10s %10s\n' scenario "msgs/s" p50 p99
    for entry in "${SCENARIOS[@]}"; do
        name=${entry%%|*}
        m=$OUT/$name-mosquitto.json
        r=$OUT/$name-ringmq.json
        printf '%-16s %10s %10s %10s\n' "$name" \
            "$(ratio "$(json_num "$r" delivered_per_sec)" "$(json_num "$m" delivered_per_sec)")" \
            "$(ratio "$(json_num "$r" latency_p50_us)" "$(json_num "$m" latency_p50_us)")" \
            "$(ratio "$(json_num "$r" latency_p99_us)" "$(json_num "$m" latency_p99_us)")"
    done
fi

echo
for entry in "${SCENARIOS[@]}"; do
    name=${entry%%|*}
    files=()
    labels=()
    for broker in mosquitto ringmq; do
        if [[ $BROKERS == *$broker* ]]; then
            files+=("$OUT/$name-$broker.hgrm")
            labels+=("$broker")
        fi
    done
    echo "-- $name latency (ms)"
    "$LOAD" compare "${files[@]}" --labels "$(IFS=,; echo "${labels[*]}")" --svg "$OUT/$name.svg"
done
echo "results and plots in $OUT" >&2
