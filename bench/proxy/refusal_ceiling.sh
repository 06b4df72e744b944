#!/bin/bash
# How many refusals a second `sotto server` answers when it sheds every new call: SIPp sends
# INVITEs (bench/proxy/sipp/uac_call.xml, no credentials yet), the server refuses each with a
# stateless 503 + Retry-After before any other work ([overload] thresholds at zero), SIPp ACKs
# it. Server on CPU SERVER_CPUS, SIPp on LOAD_CPUS. One line per rate: offered, refusals
# answered, SIPp's retransmissions (a late 503) and timeouts. Against the call knee of the same
# pinning (compare.sh with SERVER_CPUS/LOAD_CPUS), this is what a refusal costs next to a call.
#
# usage: bench/proxy/refusal_ceiling.sh   knobs: RATES="10000 20000 30000 40000" STEP_S=4
#        SERVER_CPUS=0 LOAD_CPUS=1 SOTTO_BIN          (loopback only; every SIPp run bounded)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SOTTO_BIN=${SOTTO_BIN:-$REPO/target/release/sotto}
STEP_S=${STEP_S:-4}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/sotto-refusals.XXXXXX")
[ -x "$SOTTO_BIN" ] || (cd "$REPO" && cargo build --release -p sotto >&2) || exit 1
free_udp() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_udp)
"$SOTTO_BIN" init --dir "$RUN/server" --domain 127.0.0.1 > /dev/null || exit 1
cfg=$RUN/server/sotto.toml
sed -i -e "s|^tls = \[\"0.0.0.0:5061\"\]|tls = [\"127.0.0.1:0\"]|" -e "s|^udp = \[\]|udp = [\"127.0.0.1:$PORT\"]|" \
	-e "s|^listen = \"127.0.0.1:9464\"|listen = \"127.0.0.1:0\"|" \
	-e '/^\[modules.anti_flood\]/,/^\[/ s|^enabled = true|enabled = false|' \
	-e 's|^shed_unauthenticated_after_ms = 20|shed_unauthenticated_after_ms = 0|' \
	-e 's|^standing_ms = 100|standing_ms = 0|' "$cfg"
grep -q '^standing_ms = 0' "$cfg" && grep -q "^udp = \[\"127.0.0.1:$PORT\"\]" "$cfg" || { echo "template changed" >&2; exit 1; }
taskset -c "${SERVER_CPUS:-0}" "$SOTTO_BIN" server -c "$cfg" > /dev/null 2> "$RUN/server.err" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
sleep 1
for rate in ${RATES:-10000 20000 30000 40000}; do
	n=$((rate * STEP_S))
	taskset -c "${LOAD_CPUS:-1}" timeout -s INT $((STEP_S * 3 + 20)) sipp "127.0.0.1:$PORT" \
		-sf "$HERE/sipp/uac_call.xml" -s nobody -au x -ap y -i 127.0.0.1 -p "$(free_udp)" \
		-r "$rate" -m "$n" -l $((rate * 2)) -buff_size 4194304 -nostdin -trace_stat \
		-stf "$RUN/r$rate.csv" -fd 1 > "$RUN/r$rate.out" 2>&1
	python3 - "$rate" "$n" "$RUN/r$rate.csv" <<'PY'
import csv, json, sys
rate, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows = list(csv.reader(open(path), delimiter=';'))
last = dict(zip(rows[0], rows[-1]))
v = lambda f: int(last.get(f, 0) or 0)
print(json.dumps({"offered_per_s": rate, "calls": n, "refusals_answered": v("FailedUnexpectedMessage(C)"),
    "retransmissions": v("Retransmissions(C)"), "timed_out": v("FailedMaxUDPRetrans(C)") + v("FailedTimeoutOnRecv(C)"),
    "unfinished": n - v("SuccessfulCall(C)") - v("FailedCall(C)")}))
PY
done
