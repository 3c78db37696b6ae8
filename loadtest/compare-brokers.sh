#!/usr/bin/env bash
# compare-brokers.sh: run the same ringmq-load scenarios against ringmq and other MQTT brokers
# on loopback, and print one Markdown table per mode (pinned, unpinned) with each broker's
# msgs/s and p99 and the ratio of ringmq to the best peer, ready for docs/performance.md; one
# latency-percentile plot per row (ringmq's own broker-side histogram dashed beside its line).
# Only ever targets 127.0.0.1 (or the --broker addresses given); every run is bounded in time.
#
#   loadtest/compare-brokers.sh [options]
#
#   --brokers LIST      brokers to start: ringmq,mosquitto,flashmq,rumqttd (default: all; one
#                       that cannot be found is skipped with a message)
#   --broker NAME=HOST:PORT
#                       also measure a broker already running there (HOST an IP address;
#                       repeatable; plain MQTT only; never started, pinned or stopped here)
#   --ringmq-bin NAME=PATH
#                       also measure another ringmq build under NAME, started exactly as
#                       ringmq is (repeatable): an A/B of two builds in one sitting, whose
#                       ratio column then reads "this build / that build"
#   --flashmq PATH      FlashMQ binary (default: $FLASHMQ, else `flashmq` on PATH)
#   --rumqttd PATH      rumqttd binary (default: `rumqttd` on PATH or in ~/.cargo/bin)
#   --modes LIST        pinned,unpinned (default both); --pinned / --unpinned for one
#                       pinned: broker on core 0 (ringmq 1 shard, FlashMQ 1 thread), generator
#                       on core 1 with 1 thread; unpinned: ringmq --shards N, FlashMQ N threads
#   --shards N          N for unpinned (default: nproc)
#   --scenarios LIST    fanin,fanout,pairs,connect,handshake (default fanin,fanout,pairs, and
#                       handshake with --tls); handshake = connect over TLS only
#   --tls               add TLS rows (a CA and server certificate made with openssl; ringmq and
#                       mosquitto) and the handshake-rate scenario
#   --ws                add WebSocket rows (ringmq and mosquitto); with --tls also wss://
#   --duration S, --warmup S, --runs N
#                       seconds measured and of warm-up per run (default 10, 2), runs per row
#                       (default 1; the table shows the median run)
#   --out DIR           results (default target/compare-brokers)
#   --no-build          use target/release as it is
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
DURATION=10
WARMUP=2
RUNS=1
SHARDS=$(nproc)
MODES=pinned,unpinned
SCENARIOS=""
TLS=0
WS=0
BROKERS=ringmq,mosquitto,flashmq,rumqttd
EXTERNAL=()
ALT_RINGMQ=()
FLASHMQ_BIN=${FLASHMQ:-}
RUMQTTD_BIN=""
OUT=$ROOT/target/compare-brokers
BUILD=1

die() { echo "compare-brokers: $*" >&2; exit 1; }
say() { echo "compare-brokers: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --brokers) BROKERS=$2; shift ;;
        --broker) EXTERNAL+=("$2"); shift ;;
        --ringmq-bin) ALT_RINGMQ+=("$2"); shift ;;
        --flashmq) FLASHMQ_BIN=$2; shift ;;
        --rumqttd) RUMQTTD_BIN=$2; shift ;;
        --modes) MODES=$2; shift ;;
        --pinned) MODES=pinned ;;
        --unpinned) MODES=unpinned ;;
        --shards) SHARDS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --tls) TLS=1 ;;
        --ws) WS=1 ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ && $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] \
    || die "--duration and --warmup are seconds"
if [ -z "$SCENARIOS" ]; then
    SCENARIOS=fanin,fanout,pairs
    [ "$TLS" = 1 ] && SCENARIOS+=,handshake
fi
TRANSPORTS=(tcp)
[ "$TLS" = 1 ] && TRANSPORTS+=(tls)
[ "$WS" = 1 ] && TRANSPORTS+=(ws)
[ "$TLS" = 1 ] && [ "$WS" = 1 ] && TRANSPORTS+=(wss)

in_list() { [[ ",$2," == *",$1,"* ]]; }

# scenario NAME: sets TITLE, ARGS (ringmq-load subcommand and flags), METRIC (JSON key), UNIT.
scenario() {
    METRIC=delivered_per_sec
    UNIT="msgs/s"
    case $1 in
        fanin) TITLE="fan-in 8 -> 1, QoS 0"; ARGS="fanin -p 8 --qos 0" ;;
        fanout) TITLE="fan-out 1 -> 100, QoS 0"; ARGS="fanout -s 100 --qos 0" ;;
        pairs) TITLE="50 pairs, QoS 1"; ARGS="pairs -n 50 --qos 1" ;;
        connect) TITLE="connects, 32 clients"; ARGS="connect -n 32"
            METRIC=connects_per_sec; UNIT="conn/s" ;;
        handshake) TITLE="TLS handshakes, 32 clients"; ARGS="connect -n 32"
            METRIC=connects_per_sec; UNIT="conn/s" ;;
        *) die "unknown scenario $1 (fanin, fanout, pairs, connect, handshake)" ;;
    esac
}
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SCENARIO_LIST[@]}"; do scenario "$s"; done
IFS=, read -r -a MODE_LIST <<<"$MODES"
for m in "${MODE_LIST[@]}"; do
    case $m in pinned|unpinned) ;; *) die "unknown mode $m (pinned, unpinned)" ;; esac
done
if in_list pinned "$MODES"; then
    command -v taskset >/dev/null || die "pinned mode needs taskset (util-linux)"
    [ "$(nproc)" -ge 2 ] || die "pinned mode needs at least 2 cores"
fi

# --- which brokers there are ------------------------------------------------------------------

BROKER_LIST=()    # names measured, ringmq first
declare -A BIN=() EXT_ADDR=() IS_RINGMQ=([ringmq]=1)
find_brokers() {
    local b
    if in_list ringmq "$BROKERS"; then
        BIN[ringmq]=$ROOT/target/release/ringmq
        BROKER_LIST+=(ringmq)
    fi
    if in_list mosquitto "$BROKERS"; then
        b=$(command -v mosquitto || true)
        [ -z "$b" ] && [ -x /usr/sbin/mosquitto ] && b=/usr/sbin/mosquitto
        if [ -z "$b" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            say "installing mosquitto with apt-get"
            if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                mosquitto >/dev/null; then
                # The package may start a system service on 1883; this script uses its own.
                (systemctl stop mosquitto || service mosquitto stop) >/dev/null 2>&1 || true
                b=/usr/sbin/mosquitto
            fi
        fi
        if [ -n "$b" ]; then BIN[mosquitto]=$b; BROKER_LIST+=(mosquitto)
        else say "skipping mosquitto: not installed (apt-get install mosquitto)"; fi
    fi
    if in_list flashmq "$BROKERS"; then
        b=${FLASHMQ_BIN:-$(command -v flashmq || true)}
        if [ -n "$b" ] && [ -x "$b" ]; then BIN[flashmq]=$b; BROKER_LIST+=(flashmq)
        else say "skipping flashmq: no binary (give --flashmq PATH or FLASHMQ=PATH)"; fi
    fi
    if in_list rumqttd "$BROKERS"; then
        b=${RUMQTTD_BIN:-$(command -v rumqttd || true)}
        [ -z "$b" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/rumqttd" ] \
            && b=${CARGO_HOME:-$HOME/.cargo}/bin/rumqttd
        if [ -n "$b" ] && [ -x "$b" ]; then BIN[rumqttd]=$b; BROKER_LIST+=(rumqttd)
        else say "skipping rumqttd: no binary (give --rumqttd PATH or cargo install rumqttd)"; fi
    fi
    local spec name addr
    for spec in "${ALT_RINGMQ[@]}"; do
        name=${spec%%=*}
        b=${spec#*=}
        [[ $spec == *=* && -n $name && $name != ringmq ]] \
            || die "--ringmq-bin $spec: expected NAME=PATH with a NAME other than ringmq"
        [ -x "$b" ] || die "--ringmq-bin $spec: $b is not an executable"
        [ -z "${BIN[$name]:-}" ] || die "--ringmq-bin $spec: $name is measured twice"
        BIN[$name]=$b
        IS_RINGMQ[$name]=1
        BROKER_LIST+=("$name")
    done
    for spec in "${EXTERNAL[@]}"; do
        name=${spec%%=*}
        addr=${spec#*=}
        [[ $spec == *=*:* && -n $name ]] || die "--broker $spec: expected NAME=HOST:PORT"
        if [ -n "${BIN[$name]:-}" ] || [ -n "${EXT_ADDR[$name]:-}" ]; then
            die "--broker $spec: $name is measured twice"
        fi
        EXT_ADDR[$name]=$addr
        BROKER_LIST+=("$name")
    done
    [ "${#BROKER_LIST[@]}" -gt 0 ] || die "no broker to measure"
}

# supports BROKER TRANSPORT: whether this script can run BROKER over TRANSPORT.
supports() {
    case $2 in
        tcp) return 0 ;;
        *) [ -n "${IS_RINGMQ[$1]:-}" ] || [ "$1" = mosquitto ] && [ -z "${EXT_ADDR[$1]:-}" ] ;;
    esac
}

if [ "$BUILD" = 1 ]; then
    say "building (release)..."
    if in_list ringmq "$BROKERS"; then
        (cd "$ROOT" && cargo build --release -q -p ringmq -p ringmq-load) \
            || die "cargo build --release failed"
    else
        (cd "$ROOT" && cargo build --release -q -p ringmq-load) || die "cargo build --release failed"
    fi
fi
LOAD=$ROOT/target/release/ringmq-load
[ -x "$LOAD" ] || die "$LOAD is not built (cargo build --release -p ringmq-load)"
find_brokers
if [ -n "${BIN[ringmq]:-}" ] && [ ! -x "${BIN[ringmq]}" ]; then
    die "ringmq is not built (${BIN[ringmq]} missing)"
fi

mkdir -p "$OUT"
# Only this script's own results from an earlier run, never the whole directory.
rm -rf "$OUT/pinned" "$OUT/unpinned" "$OUT"/*.svg "$OUT/results.tsv" "$OUT/tables.md"
WORK=$(mktemp -d)
# Readable by a broker that drops root for its own user (Mosquitto), like the throwaway key.
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- TLS material -----------------------------------------------------------------------------

PKI=$WORK/pki
make_pki() {
    command -v openssl >/dev/null || die "--tls needs openssl"
    make_loopback_pki "$PKI" compare-brokers
}
[ "$TLS" = 1 ] && make_pki

# --- starting and stopping brokers -------------------------------------------------------------

# Ports 21001-21999 (`free_port`, loadtest/lib.sh).
PORT_BASE=21000

# wait_for_port PORT PID NAME LOG: up to 10 s for the broker to accept connections.
wait_for_port() {
    local _
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || { say "$3 exited before listening on 127.0.0.1:$1 (see $4)"; return 1; }
        if port_in_use "$1"; then return 0; fi
        sleep 0.1
    done
    say "$3 is not listening on 127.0.0.1:$1 after 10 s (see $4)"
    return 1
}

write_ringmq_config() {
    {
        echo "listen = \"127.0.0.1:${PORT[tcp]}\""
        echo
        echo "[queues]"
        echo "# the same per-session queue bound as mosquitto's max_queued_messages"
        echo "max_queued_messages = 1000000"
        if [ -n "$METRICS_PORT" ]; then
            echo
            echo "[metrics]"
            echo "listen = \"127.0.0.1:$METRICS_PORT\""
            echo "sys_interval = 0"
        fi
        local t proto
        for t in tls ws wss; do
            [ -n "${PORT[$t]:-}" ] || continue
            proto=mqtt
            [[ $t == ws* ]] && proto=websockets
            printf '\n[[listeners]]\nbind = "127.0.0.1:%s"\nprotocol = "%s"\n' "${PORT[$t]}" "$proto"
            if [ "$t" = tls ] || [ "$t" = wss ]; then
                printf '[listeners.tls]\ncert = "%s"\nkey = "%s"\n' "$PKI/server.pem" "$PKI/server.key"
            fi
        done
    } >"$1"
}

# Mosquitto 2.0's comparison baseline (no persistence, queue limits large enough that a run
# measures the broker and not truncation, Nagle off), on this script's ports.
write_mosquitto_config() {
    {
        mosquitto_baseline "${PORT[tcp]}"
        local t
        for t in tls ws wss; do
            [ -n "${PORT[$t]:-}" ] || continue
            echo "listener ${PORT[$t]} 127.0.0.1"
            [[ $t == ws* ]] && echo "protocol websockets"
            if [ "$t" = tls ] || [ "$t" = wss ]; then
                echo "cafile $PKI/ca.pem"
                echo "certfile $PKI/server.pem"
                echo "keyfile $PKI/server.key"
            fi
        done
    } >"$1"
}

# FlashMQ's baseline (tcp_nodelay on, as Mosquitto's set_tcp_nodelay); THREADS worker threads.
write_flashmq_config() {
    cat >"$1" <<CONF
log_level warning
allow_anonymous true
rlimit_nofile 20000
thread_count $THREADS
listen {
    protocol mqtt
    port ${PORT[tcp]}
    inet_protocol ip4
    inet4_bind_address 127.0.0.1
    tcp_nodelay true
}
CONF
}

# rumqttd 0.20's default rumqttd.toml with only its v4 (MQTT 3.1.1) listener, on our port.
write_rumqttd_config() {
    cat >"$1" <<CONF
id = 0

[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:${PORT[tcp]}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
CONF
}

# start_broker NAME TRANSPORT LOG: a fresh broker serving TRANSPORT (and plain MQTT); sets
# BROKER_PID (empty for an external broker), PORT[...], HOST and METRICS_PORT. Fails when it
# does not start.
declare -A PORT=()
start_broker() {
    local name=$1 transport=$2 log=$3 conf
    BROKER_PID=""
    METRICS_PORT=""
    HOST=127.0.0.1
    PORT=()
    if [ -n "${EXT_ADDR[$name]:-}" ]; then
        HOST=${EXT_ADDR[$name]%:*}
        PORT[tcp]=${EXT_ADDR[$name]##*:}
        return 0
    fi
    free_port "PORT[tcp]"
    [ "$transport" = tcp ] || free_port "PORT[$transport]"
    conf=$WORK/$name.conf
    local cmd=()
    local kind=$name
    [ -n "${IS_RINGMQ[$name]:-}" ] && kind=ringmq
    case $kind in
        ringmq)
            # An older build (--ringmq-bin) may have no [metrics] section: it then runs
            # without one, and without its broker-side histogram.
            if "${BIN[$name]}" --print-default-config 2>/dev/null | grep -q '^\[metrics\]'; then
                free_port METRICS_PORT
            fi
            write_ringmq_config "$conf"
            cmd=("${BIN[$name]}" --config "$conf" --shards "$THREADS") ;;
        mosquitto) write_mosquitto_config "$conf"; cmd=("${BIN[mosquitto]}" -c "$conf") ;;
        flashmq) write_flashmq_config "$conf"; cmd=("${BIN[flashmq]}" --config-file "$conf") ;;
        # rumqttd picks its config's format by the file's extension.
        rumqttd) conf=$WORK/$name.toml
            write_rumqttd_config "$conf"; cmd=("${BIN[rumqttd]}" -q -c "$conf") ;;
    esac
    cp "$conf" "$log.conf"
    "${BROKER_PIN[@]}" "${cmd[@]}" >"$log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    local t
    for t in "${!PORT[@]}"; do
        wait_for_port "${PORT[$t]}" "$BROKER_PID" "$name" "$log" || { stop_broker; return 1; }
    done
}

# Peak resident memory of the running broker (VmHWM, kB), read before it stops.
peak_rss_kb() {
    [ -n "$BROKER_PID" ] || { echo 0; return; }
    awk '/^VmHWM/ { print $2 }' "/proc/$BROKER_PID/status" 2>/dev/null || echo 0
}

stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    local keep=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$BROKER_PID" ] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
    BROKER_PID=""
}

# fetch_broker_hgrm FILE: ringmq's own delivery-latency histogram since it started.
fetch_broker_hgrm() {
    [ -n "$METRICS_PORT" ] || return 1
    # The metrics thread takes the shards' counts every 250 ms.
    sleep 0.6
    if command -v curl >/dev/null; then
        curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/latency.hgrm" >"$1"
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" \
            && printf 'GET /latency.hgrm HTTP/1.0\r\n\r\n' >&3 \
            && sed '1,/^\r$/d' <&3) >"$1"
    fi
}

# --- running ----------------------------------------------------------------------------------

json_num() {
    local v
    v=$(grep -m1 "\"$2\":" "$1" 2>/dev/null | sed 's/.*: *//; s/,$//; s/null/0/' || true)
    echo "${v:-0}"
}

transport_flags() {
    case $1 in
        tcp) ;;
        tls) echo "--tls --cafile $PKI/ca.pem" ;;
        ws) echo "--ws" ;;
        wss) echo "--ws --tls --cafile $PKI/ca.pem" ;;
    esac
}

BOUND=$((${DURATION%.*} + ${WARMUP%.*} + 30))
RESULTS=$OUT/results.tsv
printf 'mode\ttransport\tscenario\tbroker\trun\tvalue\tp50_us\tp99_us\tlost\trss_kb\tbase\n' >"$RESULTS"

# run_one MODE TRANSPORT SCENARIO BROKER RUN: a fresh broker, one bounded generator run,
# the broker's histogram, one line of results.tsv.
run_one() {
    local mode=$1 transport=$2 name=$3 broker=$4 run=$5
    local base=$OUT/$mode/$transport-$name-$broker-run$run
    scenario "$name"
    say "$mode $transport $name against $broker (run $run/$RUNS)"
    start_broker "$broker" "$transport" "$base.log" || {
        say "$broker did not start; no result for this run"
        return 0
    }
    local flags
    flags=$(transport_flags "$transport")
    # rumqttd 0.20 refuses a CONNECT with keepalive 0 (the generator's default for load
    # clients, which never idle); 60 s never fires within a run.
    [ "$broker" = rumqttd ] && flags="$flags --keepalive 60"
    # shellcheck disable=SC2086 # ARGS and flags are word lists
    if ! timeout "$BOUND" "${LOAD_PIN[@]}" "$LOAD" $ARGS $flags --size 64 \
        --host "$HOST" --port "${PORT[$transport]}" \
        --duration "$DURATION" --warmup "$WARMUP" --quiet "${LOAD_THREADS[@]}" \
        --client-prefix "cmp-$broker" --json "$base.json" --hgrm "$base.hgrm" \
        >"$base.txt" 2>&1; then
        say "$name against $broker failed: $(tail -n 1 "$base.txt")"
        stop_broker
        return 0
    fi
    if [ "$METRIC" = delivered_per_sec ]; then
        fetch_broker_hgrm "$base.broker.hgrm" || rm -f "$base.broker.hgrm"
    fi
    local rss
    rss=$(peak_rss_kb)
    stop_broker
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$transport" "$name" \
        "$broker" "$run" "$(json_num "$base.json" "$METRIC")" \
        "$(json_num "$base.json" latency_p50_us)" "$(json_num "$base.json" latency_p99_us)" \
        "$(json_num "$base.json" lost)" "$rss" "$base" >>"$RESULTS"
}

for mode in "${MODE_LIST[@]}"; do
    mkdir -p "$OUT/$mode"
    if [ "$mode" = pinned ]; then
        BROKER_PIN=(taskset -c 0)
        LOAD_PIN=(taskset -c 1)
        LOAD_THREADS=(--threads 1)
        THREADS=1
    else
        BROKER_PIN=()
        LOAD_PIN=()
        LOAD_THREADS=()
        THREADS=$SHARDS
    fi
    for transport in "${TRANSPORTS[@]}"; do
        for name in "${SCENARIO_LIST[@]}"; do
            [ "$name" = handshake ] && [ "$transport" != tls ] && continue
            for run in $(seq "$RUNS"); do
                for broker in "${BROKER_LIST[@]}"; do
                    if ! supports "$broker" "$transport"; then
                        [ "$run" = 1 ] && say "skipping $broker over $transport: not set up for it here"
                        continue
                    fi
                    run_one "$mode" "$transport" "$name" "$broker" "$run"
                done
            done
        done
    done
done

# --- the tables -------------------------------------------------------------------------------

# median MODE TRANSPORT SCENARIO BROKER: the results.tsv line of the median run by value
# (of an even number of runs, the lower middle one).
median() {
    awk -F'\t' -v m="$1" -v t="$2" -v s="$3" -v b="$4" \
        '$1 == m && $2 == t && $3 == s && $4 == b' "$RESULTS" \
        | sort -t$'\t' -k6,6g | awk -v n="$RUNS" '{ l[NR] = $0 } END { if (NR) print l[int((NR + 1) / 2)] }'
}

# human VALUE: 2.72 M, 108 k, 950.
human() {
    awk -v v="$1" 'BEGIN {
        if (v >= 1e6) printf "%.2f M", v / 1e6; else if (v >= 1e4) printf "%.0f k", v / 1e3;
        else if (v >= 1e3) printf "%.1f k", v / 1e3; else printf "%.0f", v }'
}
# human_us MICROSECONDS: 41 µs, 1.2 ms.
human_us() {
    awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.1f ms", v / 1000; else printf "%.0f µs", v }'
}
transport_title() {
    case $1 in tcp) ;; tls) echo ", TLS" ;; ws) echo ", WebSocket" ;; wss) echo ", WebSocket over TLS" ;; esac
}

TABLES=$OUT/tables.md
: >"$TABLES"
for mode in "${MODE_LIST[@]}"; do
    if [ "$mode" = pinned ]; then
        threads=1
        heading="Pinned: broker on core 0 (\`taskset -c 0\`; ringmq 1 shard, FlashMQ 1 thread), generator on core 1 with 1 thread"
    else
        threads=$SHARDS
        heading="Unpinned: ringmq $SHARDS shards, FlashMQ $SHARDS threads, generator on all cores"
    fi
    present=()
    for broker in "${BROKER_LIST[@]}"; do
        awk -F'\t' -v m="$mode" -v b="$broker" '$1 == m && $4 == b { f = 1 } END { exit !f }' \
            "$RESULTS" && present+=("$broker")
    done
    if [ "${#present[@]}" = 0 ]; then
        echo "no results in $mode mode" >>"$TABLES"
        continue
    fi
    {
        echo "### $heading"
        echo
        printf '| scenario |'
        printf ' %s |' "${present[@]}"
        echo " ringmq / best peer |"
        printf '| --- |'
        printf ' --- |%.0s' "${present[@]}"
        echo " --- |"
        for transport in "${TRANSPORTS[@]}"; do
            for name in "${SCENARIO_LIST[@]}"; do
                [ "$name" = handshake ] && [ "$transport" != tls ] && continue
                scenario "$name"
                row="| $TITLE$(transport_title "$transport") |"
                ours=""; best=""; best_name=""; any=0
                for broker in "${present[@]}"; do
                    line=$(median "$mode" "$transport" "$name" "$broker")
                    if [ -z "$line" ]; then row+=" - |"; continue; fi
                    any=1
                    IFS=$'\t' read -r _ _ _ _ _ value _ p99 lost _ _ <<<"$line"
                    cell="$(human "$value") $UNIT"
                    [ "$METRIC" = delivered_per_sec ] && cell+=", p99 $(human_us "$p99")"
                    [ "${lost%.*}" != 0 ] && cell+=", lost $lost"
                    row+=" $cell |"
                    if [ "$broker" = ringmq ]; then ours=$value
                    elif [ -z "$best" ] || awk -v a="$value" -v b="$best" 'BEGIN { exit !(a > b) }'; then
                        best=$value; best_name=$broker
                    fi
                done
                [ "$any" = 1 ] || continue
                if [ -n "$ours" ] && [ -n "$best" ]; then
                    row+=" $(awk -v a="$ours" -v b="$best" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else printf "-" }') ($best_name) |"
                else
                    row+=" - |"
                fi
                echo "$row"
            done
        done
        echo
        rss=""
        for broker in "${present[@]}"; do
            kb=$(awk -F'\t' -v m="$mode" -v b="$broker" '$1 == m && $4 == b && $10 > x { x = $10 } END { print x + 0 }' "$RESULTS")
            [ "$kb" -gt 0 ] && rss+="${rss:+, }$broker $((kb / 1024)) MB"
        done
        echo "$(date -u +%F), $(nproc) cores, $(uname -r): ${DURATION} s per run after a ${WARMUP} s warm-up, median of $RUNS run(s), a fresh broker per run, 64 B payloads, closed loop (64 in flight per publisher), TCP_NODELAY on for every broker; $threads broker thread(s). Peak RSS: ${rss:--}."
        echo
    } >>"$TABLES"
done

# --- the plots --------------------------------------------------------------------------------

for mode in "${MODE_LIST[@]}"; do
    for transport in "${TRANSPORTS[@]}"; do
        for name in "${SCENARIO_LIST[@]}"; do
            files=(); labels=(); side=()
            for broker in "${BROKER_LIST[@]}"; do
                line=$(median "$mode" "$transport" "$name" "$broker")
                [ -n "$line" ] || continue
                base=${line##*$'\t'}
                [ -s "$base.hgrm" ] || continue
                files+=("$base.hgrm")
                labels+=("$broker")
                # An empty histogram (nothing delivered, or not measured) is not drawn.
                if [ -s "$base.broker.hgrm" ] \
                    && ! grep -q 'Total count *= *0\b' "$base.broker.hgrm"; then
                    side+=(--broker-side "$broker=$base.broker.hgrm")
                fi
            done
            [ "${#files[@]}" -gt 0 ] || continue
            echo "-- $mode $transport $name latency (ms)"
            "$LOAD" compare "${files[@]}" --labels "$(IFS=,; echo "${labels[*]}")" \
                "${side[@]}" --svg "$OUT/$mode-$transport-$name.svg" \
                || say "cannot plot $mode $transport $name"
        done
    done
done

echo
cat "$TABLES"
say "tables in $TABLES, runs in $RESULTS, plots and per-run files in $OUT"
