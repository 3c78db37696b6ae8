# loadtest/lib.sh: what the benchmark scripts and the interop suite share, sourced by them:
# free loopback ports, Mosquitto's comparison baseline config and a throwaway CA with
# certificates for loopback. Functions only; nothing runs when it is sourced.

# mosquitto_baseline PORT [PERSISTENCE_DIR]: Mosquitto 2.0's comparison baseline on stdout
# (the settings of ../shared/peers/mosquitto.conf: Nagle off, queue limits large enough that
# a run measures the broker and not truncation, no $SYS), one plain listener on 127.0.0.1;
# with PERSISTENCE_DIR, `persistence true` there (autosave every 30 min, as shipped), else
# off. Callers append further listeners or a bridge.
mosquitto_baseline() {
    local persistence="persistence false"
    [ -n "${2:-}" ] && persistence="persistence true
persistence_location $2/"
    cat <<CONF
per_listener_settings false
allow_anonymous true
$persistence
log_dest stderr
log_type error
log_type warning
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 100
max_connections -1
sys_interval 0
set_tcp_nodelay true
listener $1 127.0.0.1
CONF
}

# make_loopback_pki DIR NAME [CLIENT_CN]: in DIR a P-256 CA (ca.pem, ca.key, CN "NAME CA"), a
# server certificate for localhost and 127.0.0.1 (server.pem, server.key; X.509 v3, which
# rustls requires) and, with CLIENT_CN, a client certificate (client.pem, client.key). Files
# are world-readable: Mosquitto started as root reads them as its own user.
make_loopback_pki() {
    local dir=$1 name=$2 client=${3:-}
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    mkdir -p "$dir"
    openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=$name CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$dir/server.key" \
        -out "$dir/server.csr" 2>/dev/null
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -out "$dir/server.pem" \
        -extfile <(printf "subjectAltName=DNS:localhost,IP:127.0.0.1") 2>/dev/null
    if [ -n "$client" ]; then
        openssl req "${ec[@]}" -subj "/CN=$client" -keyout "$dir/client.key" \
            -out "$dir/client.csr" 2>/dev/null
        openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 2 -out "$dir/client.pem" \
            -extfile <(printf "extendedKeyUsage=clientAuth") 2>/dev/null
    fi
    chmod 644 "$dir"/*
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port VAR: sets VAR to the next free port in PORT_BASE+1 .. PORT_BASE+999 (PORT_BASE set
# by the script, so that two scripts never hand out the same ports). Not `$(free_port)`: a
# command substitution runs in a subshell, whose NEXT_PORT would never advance.
free_port() {
    local _ base=${PORT_BASE:-21000}
    NEXT_PORT=${NEXT_PORT:-$base}
    for _ in $(seq 999); do
        NEXT_PORT=$((NEXT_PORT + 1))
        [ "$NEXT_PORT" -gt $((base + 999)) ] && NEXT_PORT=$((base + 1))
        if ! port_in_use "$NEXT_PORT"; then printf -v "$1" '%s' "$NEXT_PORT"; return; fi
    done
    echo "no free port in $((base + 1))-$((base + 999))" >&2
    exit 1
}
