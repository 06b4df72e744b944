#!/bin/bash
# sotto proxy benchmark: SIPp load against `sotto server` and against Kamailio 5.6 (the
# reference, kamailio/kamailio.cfg), same machine, same scenarios, loopback only.
#
# Workloads (each a digest-authenticated flow, the same for both servers):
#   register_digest_udp  REGISTER -> 401 -> REGISTER+Authorization -> 200         (sipp/register.xml)
#   register_digest_tls  the same through TLS
#   call_udp             INVITE -> 407 -> ACK -> INVITE+auth -> 200 -> ACK -> BYE -> 200 through
#                        the proxy to a registered SIPp callee (sipp/uac_call.xml, sipp/uas.xml)
#   call_tls             the same with the caller on TLS (the callee stays on UDP)
# Debian's SIPp has no TLS, so for TLS SIPp speaks TCP (-t t1) to an stunnel client that
# verifies the server's certificate and speaks TLS to the server: the same for both servers.
#
# For each target and workload the script steps the offered rate up (RATES) and keeps the
# highest step that passed: < 0.1 % failed calls, every call finished, and at least 90 % of
# the offered rate achieved. Every SIPp run has -m and runs under `timeout`; the whole script
# stops starting new steps after BUDGET_S seconds.
#
# Memory per registered contact: a fresh `sotto server` (authentication off, so no accounts are
# needed; storage "memory" and the default "sqlite") gets MEM_CONTACTS distinct REGISTERs;
# (RSS after - RSS before) / MEM_CONTACTS, and the same with the heap bytes in use that the
# server's counting allocator reports (gauge sotto_heap_bytes on /metrics). For Kamailio its
# shared memory in use (kamcmd core.shmmem: its allocator's used bytes), which is where usrloc
# keeps contacts: the like-for-like figure is sotto's heap bytes.
#
# Output (stdout): one JSON object per line:
#   {"target":"sotto"|"kamailio","workload":...,"rate_per_s":..,"offered_per_s":..,"calls":..,
#    "failed":..,"failed_pct":..}
#   {"ratio":..,"workload":..,"want":..,"met":..}              sotto / kamailio per workload
#   {"target":..,"workload":"memory_per_contact","storage":..,"contacts":..,"bytes_per_contact":..,
#    "heap_bytes_per_contact":..}  (sotto: RSS and heap in use; Kamailio: shm in use)
# Progress and per-step lines go to stderr; everything else to the run directory.
#
# usage: bench/proxy/compare.sh
# knobs (environment): SOTTO_BIN (default target/release/sotto, built if missing),
#   TARGETS="kamailio sotto", WORKLOADS="call_udp call_tls register_digest_udp register_digest_tls",
#   RATES="250 500 1000 1500 2000 3000 4000 5000 6000 7000 8000 10000", STEP_S=4 (seconds of load per step),
#   HOLD_MS=0 (call hold between ACK and BYE), USERS=500 (accounts for REGISTER load),
#   MEM_CONTACTS=10000 (0 skips the memory runs), MEM_SETTLE_S=35 (second RSS reading, after
#   the REGISTER transactions are gone), MEM_STORAGES="memory sqlite" (sotto's stores measured),
#   BUDGET_S=900, BENCH_RUN (run directory), KAM_SHM_MB=512,
#   SOTTO_STORAGE=sqlite (sotto's store under load: sqlite, memory, or redis: a redis-server
#   started by the script on a Unix socket in the run directory, no persistence).
#   WORKLOADS=none runs only the memory runs.
#   OVERLOAD_FACTOR=2 (default 0: off): after each call workload's knee, one step at that
#   many times the knee: {"workload":"call_udp_overload","knee_per_s":..,"offered_per_s":..,
#   "goodput_per_s":..,"goodput_ratio":..,"answered_refusals":..,"timed_out":..,"shed_by_server":..}
#   STORM_S=60 [STORM_RATE=12000]: after the call_udp knee, a registration storm, then the call
#   ramp again: {"workload":"call_udp_after_register_storm","fresh_calls_per_s":..,
#   "after_storm_calls_per_s":..,"ratio":..,"rss_before_storm":..,"wal_after_bytes":..}
# needs: sipp (sip-tester), stunnel4, kamailio + kamailio-tls-modules, openssl, python3, ss.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SOTTO_BIN=${SOTTO_BIN:-$REPO/target/release/sotto}
TARGETS=${TARGETS:-"kamailio sotto"}
WORKLOADS=${WORKLOADS:-"call_udp call_tls register_digest_udp register_digest_tls"}
RATES=${RATES:-"250 500 1000 1500 2000 3000 4000 5000 6000 7000 8000 10000"}
STEP_S=${STEP_S:-4}
HOLD_MS=${HOLD_MS:-0}
USERS=${USERS:-500}
MEM_CONTACTS=${MEM_CONTACTS:-10000}
MEM_SETTLE_S=${MEM_SETTLE_S:-35}
MEM_STORAGES=${MEM_STORAGES:-"memory sqlite"}
SOTTO_STORAGE=${SOTTO_STORAGE:-sqlite}
OVERLOAD_FACTOR=${OVERLOAD_FACTOR:-0}
# STORM_S=60 (default 0: off): after the call_udp knee, a registration storm of STORM_S seconds
# offered at STORM_RATE (default 12000) REGISTER/s, then the call ramp again.
STORM_S=${STORM_S:-0}
STORM_RATE=${STORM_RATE:-12000}
# SIPp's socket buffers (its default, 64 KB, drops datagrams in bursts past about 5,000
# calls/s: the load generator's losses would be counted against the server).
SIPP_BUFFER=${SIPP_BUFFER:-4194304}
BUDGET_S=${BUDGET_S:-900}
# SERVER_CPUS, LOAD_CPUS (taskset CPU lists, e.g. 0 and 1; default: unpinned): the server
# under test on some CPUs, SIPp and stunnel on others, so that the load generator's own CPU
# (which grows with the offered rate) is not taken from the server.
SERVER_PIN=(); [ -n "${SERVER_CPUS:-}" ] && SERVER_PIN=(taskset -c "$SERVER_CPUS")
LOAD_PIN=(); [ -n "${LOAD_CPUS:-}" ] && LOAD_PIN=(taskset -c "$LOAD_CPUS")
KAM_SHM_MB=${KAM_SHM_MB:-512}
RUN=${BENCH_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/sotto-bench-proxy.XXXXXX")}
START_S=$SECONDS

PIDS=()
log() { echo "[compare] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PIDS=()
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

# stop PID...: stops processes this script started, by PID, and forgets them.
stop() {
	local p q keep=()
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		for _ in $(seq 1 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for q in "${PIDS[@]}"; do
		local gone=0
		for p in "$@"; do [ "$p" = "$q" ] && gone=1; done
		[ $gone = 0 ] && keep+=("$q")
	done
	PIDS=("${keep[@]}")
}

tools=(sipp stunnel openssl python3 ss timeout)
case " $TARGETS " in *" kamailio "*) tools+=(kamailio kamcmd) ;; esac
for tool in "${tools[@]}"; do
	command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y sip-tester stunnel4 kamailio kamailio-tls-modules openssl python3 iproute2"
done
if [ ! -x "$SOTTO_BIN" ]; then
	log "building $SOTTO_BIN (cargo build --release -p sotto)"
	(cd "$REPO" && cargo build --release -p sotto >&2) || die "build failed"
fi
mkdir -p "$RUN"
log "run directory: $RUN"

# free_port udp|tcp: a port the kernel says is free on 127.0.0.1 now.
# free_port udp|tcp|both: a port the kernel says is free on 127.0.0.1 now (both: for UDP and TCP).
free_port() {
	python3 -c 'import socket,sys
for _ in range(100):
    k=socket.SOCK_STREAM if sys.argv[1]=="tcp" else socket.SOCK_DGRAM
    s=socket.socket(socket.AF_INET,k); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]
    if sys.argv[1]!="both": break
    t=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1",p)); break
    except OSError:
        continue
    finally:
        t.close(); s.close()
print(p)' "$1"
}

over_budget() { [ $((SECONDS - START_S)) -ge "$BUDGET_S" ]; }

# wait_listen udp|tcp PORT: until something listens on 127.0.0.1:PORT (bounded, 10 s).
wait_listen() {
	local flag=-lun
	[ "$1" = tcp ] && flag=-ltn
	for _ in $(seq 1 50); do
		ss $flag | grep -q "127.0.0.1:$2 " && return 0
		sleep 0.2
	done
	return 1
}

# stats CSV: "successful failed elapsed_s" from the last line of a sipp -trace_stat file.
stats() {
	python3 - "$1" <<'PY'
import csv, sys
try:
    rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
    v = dict(zip(rows[0], rows[-1]))
    ep = lambda f: float(v[f].split('\t')[-1])
    print(int(v['SuccessfulCall(C)']), int(v['FailedCall(C)']), f"{ep('CurrentTime') - ep('StartTime'):.3f}")
except Exception:
    print(0, 0, 0)
PY
}

# failures CSV: how SIPp's failed calls failed: "answered timed_out" — answered: ended by a
# response the scenario did not expect (the 503 of a refused call), timed_out: a request
# retransmitted to the limit or a response that never came (what overload must not cause).
failures() {
	python3 - "$1" <<'PY'
import csv, sys
try:
    rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
    v = dict(zip(rows[0], rows[-1]))
    n = lambda f: int(v.get(f, 0) or 0)
    print(n('FailedUnexpectedMessage(C)'), n('FailedMaxUDPRetrans(C)') + n('FailedTimeoutOnRecv(C)'))
except Exception:
    print(0, 0)
PY
}

# run_sipp NAME LIMIT_S args...: one bounded SIPp run (SIGINT at the limit: SIPp still writes
# its statistics). Prints "successful failed elapsed_s".
run_sipp() {
	local name=$1 limit=$2; shift 2
	rm -f "$RUN/$name.csv"
	"${LOAD_PIN[@]}" timeout -s INT -k 10 "$limit" sipp "$@" -buff_size "$SIPP_BUFFER" -nostdin -trace_stat -stf "$RUN/$name.csv" -fd 1 \
		-trace_err -error_file "$RUN/$name.errors.log" > "$RUN/$name.out" 2>&1
	stats "$RUN/$name.csv"
}

# ---------------------------------------------------------------- accounts (both servers)
UAS_PORT=$(free_port udp)
python3 "$HERE/gen_users.py" "$RUN/users" "$USERS" "127.0.0.1:$UAS_PORT" || die "gen_users.py failed"
read -r LOADGEN_USER LOADGEN_PW < "$RUN/users/loadgen.txt"

# ---------------------------------------------------------------- targets
SIP_PORT=""; TLS_PORT=""; CA_FILE=""; SERVER_PID=""
METRICS_PORT=0 # sotto's metrics endpoint: any free port (0) unless a memory run reads it

. "$HERE/lib/servers.sh"

# step TARGET WORKLOAD RATE: one load step; prints "successful failed elapsed_s calls".
step() {
	local target=$1 workload=$2 rate=$3 calls=$(($3 * STEP_S)) name="$1-$2-$3"
	local limit=$((STEP_S * 3 + 20)) args
	case $workload in
	*-overload) workload=${workload%-overload} ;;
	esac
	case $workload in
	register_digest_udp) args=("127.0.0.1:$SIP_PORT" -sf "$HERE/sipp/register.xml" -inf "$RUN/users/users.csv") ;;
	register_digest_tls) args=("127.0.0.1:$STUNNEL_PORT" -t t1 -sf "$HERE/sipp/register.xml" -inf "$RUN/users/users.csv") ;;
	call_udp) args=("127.0.0.1:$SIP_PORT" -sf "$HERE/sipp/uac_call.xml" -s uas -au "$LOADGEN_USER" -ap "$LOADGEN_PW" -d "$HOLD_MS" -mp "$(free_port udp)") ;;
	call_tls) args=("127.0.0.1:$STUNNEL_PORT" -t t1 -sf "$HERE/sipp/uac_call.xml" -s uas -au "$LOADGEN_USER" -ap "$LOADGEN_PW" -d "$HOLD_MS" -mp "$(free_port udp)") ;;
	esac
	local r
	r=$(run_sipp "$name" "$limit" "${args[@]}" -i 127.0.0.1 -p "$(free_port udp)" \
		-r "$rate" -m "$calls" -l $((rate * 2 + 50)) -max_socket 1000)
	echo "$r $calls"
}

# judge TARGET WORKLOAD RATE: runs one step; prints its JSON line ("passed": true|false).
judge() {
	local ok ko el calls
	read -r ok ko el calls < <(step "$1" "$2" "$3")
	python3 -c 'import json,sys
t,w,off,ok,ko,el,calls=sys.argv[1],sys.argv[2],int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]),float(sys.argv[6]),int(sys.argv[7])
done=ok+ko
pct=100.0*ko/done if done else 100.0
ach=ok/el if el>0 else 0.0
passed= done==calls and pct<0.1 and ach>=0.9*off
print(json.dumps({"target":t,"workload":w,"rate_per_s":round(ach,1),"offered_per_s":off,"calls":calls,"failed":calls-ok,"failed_pct":round(100.0*(calls-ok)/calls,3),"passed":passed}))' \
		"$1" "$2" "$3" "$ok" "$ko" "$el" "$calls"
}

# measure TARGET WORKLOAD: steps the rate up (RATES) until a step fails, then tries once the
# midpoint between the last pass and that failure; prints the JSON line of the best pass.
measure() {
	local target=$1 workload=$2 rate best="" first="" last_pass=0 line
	for rate in $RATES; do
		if over_budget; then log "$target $workload: time budget used up, stopping at $rate/s"; break; fi
		line=$(judge "$target" "$workload" "$rate")
		log "step $line"
		[ -z "$first" ] && first=$line
		if [[ $line == *'"passed": true'* ]]; then
			best=$line; last_pass=$rate
			continue
		fi
		local mid=$(((last_pass + rate) / 100 * 50))
		if [ "$last_pass" -gt 0 ] && [ $((mid * 100)) -ge $((last_pass * 115)) ] && ! over_budget; then
			line=$(judge "$target" "$workload" "$mid")
			log "step $line"
			[[ $line == *'"passed": true'* ]] && best=$line
		fi
		break
	done
	if [ -n "$best" ]; then echo "$best"; elif [ -n "$first" ]; then
		# nothing passed: report the lowest step, with rate 0
		python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["rate_per_s"]=0; print(json.dumps(d))' "$first"
	fi
}


declare -A RESULT
run_target() { # run_target kamailio|sotto
	local t=$1
	log "=== $t: load"
	if [ "$t" = kamailio ]; then start_kamailio auth; else
		[ "$SOTTO_STORAGE" = redis ] && start_redis
		# The overload step reads the server's shed counters.
		[ "$OVERLOAD_FACTOR" != 0 ] && METRICS_PORT=$(free_port tcp)
		start_sotto auth "$SOTTO_STORAGE"
	fi
	if [ "$t" = kamailio ]; then start_stunnel "$t"; else start_stunnel "$t" "$SIP_PORT"; fi
	start_uas "$t"
	local w line
	for w in $WORKLOADS; do
		line=$(measure "$t" "$w")
		[ -n "$line" ] || continue
		echo "$line"
		RESULT[$t/$w]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rate_per_s"])' "$line")
		if [ "$OVERLOAD_FACTOR" != 0 ] && [[ $w == call_* ]] && ! over_budget; then
			overload "$t" "$w" "${RESULT[$t/$w]}"
		fi
		if [ "$STORM_S" != 0 ] && [ "$w" = call_udp ] && ! over_budget; then
			storm "$t" "${RESULT[$t/$w]}"
		fi
	done
	stop "$UAS_PID" "$STUNNEL_PID" "$SERVER_PID"
}

. "$HERE/lib/scenarios.sh"


for t in $TARGETS; do
	case $t in kamailio | sotto) ;; *) die "unknown target $t" ;; esac
	[ "$WORKLOADS" = none ] || [ -z "${WORKLOADS// /}" ] || run_target "$t"
done

# Targets of issue 4: sotto / kamailio >= 1.0 (calls UDP), 1.5 (calls TLS), 1.2 (REGISTER).
for w in $WORKLOADS; do
	s=${RESULT[sotto/$w]:-}; k=${RESULT[kamailio/$w]:-}
	[ -n "$s" ] && [ -n "$k" ] || continue
	python3 -c 'import json,sys
w,s,k=sys.argv[1],float(sys.argv[2]),float(sys.argv[3])
want={"call_udp":1.0,"call_tls":1.5,"register_digest_udp":1.2,"register_digest_tls":1.2}[w]
r=round(s/k,3) if k>0 else None
print(json.dumps({"ratio":r,"workload":w,"sotto_per_s":s,"kamailio_per_s":k,"want":want,"met":bool(r is not None and r>=want)}))' "$w" "$s" "$k"
done

if [ "$MEM_CONTACTS" -gt 0 ]; then
	for t in $TARGETS; do
		if over_budget; then log "time budget used up: skipping memory runs"; break; fi
		log "=== $t: memory per contact ($MEM_CONTACTS contacts)"
		if [ "$t" = sotto ]; then
			for kind in $MEM_STORAGES; do memory sotto "$kind"; done
		else
			memory kamailio memory
		fi
	done
fi
log "done in $((SECONDS - START_S)) s; logs and SIPp outputs in $RUN"
