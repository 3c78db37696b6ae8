#!/usr/bin/env bash
# Starts Mosquitto in place of ringmq for the test harness (tests/support): takes `--listen
# ADDR` (a free port when ADDR ends in :0; other flags ignored), then execs Mosquitto, so the
# PID the harness measures is Mosquitto's, and prints the line the harness waits for when it
# has had half a second to bind. For the memory probes beside Mosquitto (docs/reliability.md):
#   RINGMQ_BIN=loadtest/mosquitto-as-ringmq.sh cargo test --release --test reliability_probes \
#     -- --ignored --nocapture --test-threads 1
addr=127.0.0.1:1883
while [ $# -gt 0 ]; do case $1 in --listen) addr=$2; shift 2;; *) shift;; esac; done
if [ "${addr##*:}" = 0 ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    addr=${addr%:*}:$port
fi
conf=$(mktemp /tmp/mosq-XXXX.conf)
cat >"$conf" <<CONF
listener ${addr##*:} ${addr%:*}
allow_anonymous true
set_tcp_nodelay true
persistence false
max_keepalive 65535
log_type none
CONF
( sleep 0.5; echo "mosquitto-as-ringmq: ringmq listening on $addr with 1 shards" >&2 ) &
exec /usr/sbin/mosquitto -c "$conf"
