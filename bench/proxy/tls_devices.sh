#!/bin/bash
# 10,000 TLS devices on one `sotto server`: bytes of memory per idle TLS connection, and every
# device still reachable by a call (tls_devices.py does the work; this sets up the server).
#
# The server runs the config `sotto init --domain example.test` writes, unchanged but for its
# TLS and metrics ports (loopback). ACCOUNTS accounts hold DEVICES devices between them (10 per
# account by default, under the registrar's max_contacts of 16), each device on its own TLS
# connection from one of many loopback source addresses (250 per address, under
# [connections] per_source). Output: tls_devices.py's JSON line on stdout.
#
# Then FLOOD idle connections (no handshake) from one address, and a device of another address
# registers and calls: {"flood": {"register_and_call_s":..}} (target: under 1 s).
#
# usage: bench/proxy/tls_devices.sh        knobs: DEVICES=10000 ACCOUNTS=1000 FLOOD=5000 SETTLE_S=5
#        (idle time before the calls) LOG_LEVEL=info SOTTO_BIN
#        TIMEOUT_S=900 (every wait of the client is bounded by it), BENCH_RUN (run directory)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SOTTO_BIN=${SOTTO_BIN:-$REPO/target/release/sotto}
DEVICES=${DEVICES:-10000}
ACCOUNTS=${ACCOUNTS:-1000}
TIMEOUT_S=${TIMEOUT_S:-900}
RUN=${BENCH_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/sotto-tls-devices.XXXXXX")}
log() { echo "[tls_devices.sh] $*" >&2; }
[ -x "$SOTTO_BIN" ] || (cd "$REPO" && cargo build --release -p sotto >&2) || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TLS_PORT=$(free_port); METRICS_PORT=$(free_port)
mkdir -p "$RUN"; dir=$RUN/server
"$SOTTO_BIN" init --dir "$dir" --domain example.test > "$RUN/init.log" 2>&1 || { log "init failed"; exit 1; }
sed -i -e "s|^tls = \[\"0.0.0.0:5061\"\]|tls = [\"127.0.0.1:$TLS_PORT\"]|" \
	-e "s|^listen = \"127.0.0.1:9464\"|listen = \"127.0.0.1:$METRICS_PORT\"|" \
	-e "s|^level = \"info\"|level = \"${LOG_LEVEL:-info}\"|" "$dir/sotto.toml"
grep -q "^tls = \[\"127.0.0.1:$TLS_PORT\"\]" "$dir/sotto.toml" || { log "template changed"; exit 1; }
log "adding $((ACCOUNTS + 1)) accounts"
: > "$RUN/users.txt"
for i in $(seq 0 "$ACCOUNTS"); do
	name=$([ "$i" = 0 ] && echo caller || echo "u$i"); pw="pw-$i-$RANDOM"
	printf '%s\n' "$pw" | "$SOTTO_BIN" user add "$name" --password-stdin -c "$dir/sotto.toml" > /dev/null || exit 1
	echo "$name $pw" >> "$RUN/users.txt"
done
"$SOTTO_BIN" server -c "$dir/sotto.toml" > "$RUN/server.out" 2> "$RUN/server.err" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break; sleep 0.1; done
sleep 2
timeout -k 10 "$((TIMEOUT_S + 60))" python3 "$HERE/tls_devices.py" --server-pid "$PID" \
	--tls "127.0.0.1:$TLS_PORT" --domain example.test --ca "$dir/ca.pem" --users "$RUN/users.txt" \
	--devices "$DEVICES" --metrics "127.0.0.1:$METRICS_PORT" --timeout "$TIMEOUT_S" --flood "${FLOOD:-5000}" \
	--settle "${SETTLE_S:-5}"
log "run directory: $RUN"
