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

start_kamailio() { # start_kamailio auth|noauth
	local dir=$RUN/kamailio defs
	mkdir -p "$dir/tls"
	if [ ! -f "$dir/tls/cert.pem" ]; then
		# DNS:127.0.0.1 as well as IP:127.0.0.1 (as sotto init does).
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$dir/tls/key.pem" \
			-out "$dir/tls/cert.pem" -subj "/CN=127.0.0.1" \
			-addext "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 \
			|| die "openssl req failed"
	fi
	SIP_PORT=$(free_port udp); TLS_PORT=$(free_port tcp); CA_FILE=$dir/tls/cert.pem
	defs=(-A "SIP_PORT=$SIP_PORT" -A "TLS_PORT=$TLS_PORT" -A WITH_TLS -A WITH_CTL
		-A "CTL_SOCK=\"unix:$dir/ctl.sock\"" -A "DBURL=\"text://$RUN/users/dbtext\""
		-A "TLS_CERT=\"$dir/tls/cert.pem\"" -A "TLS_KEY=\"$dir/tls/key.pem\"")
	[ "$1" = auth ] && defs+=(-A WITH_AUTH)
	rm -f "$dir/ctl.sock"
	kamailio -f "$HERE/kamailio/kamailio.cfg" -c "${defs[@]}" > "$dir/check.log" 2>&1 \
		|| die "kamailio config check failed: $(tail -5 "$dir/check.log")"
	"${SERVER_PIN[@]}" kamailio -f "$HERE/kamailio/kamailio.cfg" -DD -E -Y "$dir" -m "$KAM_SHM_MB" -M 16 "${defs[@]}" \
		> "$dir/kamailio.$1.log" 2>&1 &
	SERVER_PID=$!; PIDS+=("$SERVER_PID")
	wait_listen udp "$SIP_PORT" && wait_listen tcp "$TLS_PORT" || die "kamailio did not start: $(tail -5 "$dir/kamailio.$1.log")"
	sleep 0.5
}

# sotto_config DIR auth|noauth sqlite|memory: a config from `sotto init` with the bench's
# listeners. Differences from the defaults (each checked): UDP listener on; anti_flood off
# (all load comes from one address; Kamailio's config has no pike either); digest algorithms
# ["MD5"] only (SIPp 3.6 answers only MD5 and only the first challenge, "createAuthHeader:
# authentication must use MD5"; Kamailio offers MD5 only too); security.downgrade "warn"
# (call_tls has the caller on TLS and the SIPp callee on UDP, which Kamailio relays silently;
# with the default "refuse" sotto rightly answers 403 "TLS hop downgraded to a non-TLS hop");
# log level warn.
# For the memory run only: authentication off, and the storage kind.
sotto_config() {
	local dir=$1 auth=$2 kind=$3 cfg=$1/sotto.toml
	if [ ! -f "$cfg" ]; then
		"$SOTTO_BIN" init --dir "$dir" --domain 127.0.0.1 > "$dir.init.log" 2>&1 || die "sotto init failed: $(cat "$dir.init.log")"
		cp "$cfg" "$dir/sotto.toml.orig"
	fi
	SIP_PORT=$(free_port both); TLS_PORT=$(free_port tcp); CA_FILE=$dir/ca.pem
	local auth_on=true
	[ "$auth" = noauth ] && auth_on=false
	sed -e "s|^tls = \[\"0.0.0.0:5061\"\]|tls = [\"127.0.0.1:$TLS_PORT\"]|" \
		-e "s|^udp = \[\]|udp = [\"127.0.0.1:$SIP_PORT\"]|" \
		-e "s|^listen = \"127.0.0.1:9464\"|listen = \"127.0.0.1:$METRICS_PORT\"|" \
		-e '/^\[modules.anti_flood\]/,/^\[/ s|^enabled = true|enabled = false|' \
		-e "/^\[modules.authentication\]/,/^\[/ s|^enabled = true|enabled = $auth_on|" \
		-e "s|^kind = \"sqlite\"|kind = \"$kind\"|" \
		-e "/^kind = \"redis\"/a url = \"unix://$RUN/redis.sock\"" \
		-e 's|^level = "info"|level = "warn"|' \
		-e 's|^algorithms = \["SHA-256", "MD5"\]|algorithms = ["MD5"]|' \
		-e 's|^downgrade = "refuse"|downgrade = "warn"|' \
		"$dir/sotto.toml.orig" > "$cfg"
	grep -q "^udp = \[\"127.0.0.1:$SIP_PORT\"\]" "$cfg" && grep -q "^tls = \[\"127.0.0.1:$TLS_PORT\"\]" "$cfg" \
		&& [ "$(sed -n '/^\[modules.anti_flood\]/,/^\[/p' "$cfg" | grep -c '^enabled = false')" = 1 ] \
		&& grep -q "^kind = \"$kind\"" "$cfg" && grep -q '^algorithms = \["MD5"\]' "$cfg" \
		&& grep -q '^downgrade = "warn"' "$cfg" \
		|| die "sotto.toml template changed: cannot set the bench listeners ($cfg)"
}

start_sotto() { # start_sotto auth|noauth sqlite|memory
	local dir=$RUN/sotto-$1-$2
	mkdir -p "$(dirname "$dir")"
	local fresh=0
	[ -f "$dir/sotto.toml" ] || fresh=1
	sotto_config "$dir" "$1" "$2"
	if [ "$1" = auth ] && [ $fresh = 1 ]; then
		log "adding $((USERS + 2)) accounts to sotto ($dir)"
		local name pw
		while read -r name pw; do
			printf '%s\n' "$pw" | "$SOTTO_BIN" user add "$name" --password-stdin --config "$dir/sotto.toml" > /dev/null \
				|| die "sotto user add $name failed"
		done < "$RUN/users/sotto_users.txt"
	fi
	# Request lines are sampled by default ([log] requests); stdout goes to /dev/null.
	"${SERVER_PIN[@]}" "$SOTTO_BIN" server --config "$dir/sotto.toml" > /dev/null 2> "$dir.server.log" &
	SERVER_PID=$!; PIDS+=("$SERVER_PID")
	wait_listen udp "$SIP_PORT" && wait_listen tcp "$TLS_PORT" || die "sotto server did not start: $(tail -5 "$dir.server.log")"
}

# start_redis: a redis-server for SOTTO_STORAGE=redis, on a Unix socket in the run directory,
# nothing persisted; stopped with the other processes.
start_redis() {
	[ -S "$RUN/redis.sock" ] && return 0
	command -v redis-server > /dev/null || die "redis-server missing: apt-get install -y redis-server"
	redis-server --port 0 --unixsocket "$RUN/redis.sock" --unixsocketperm 700 --save "" \
		--appendonly no --dir "$RUN" > "$RUN/redis.log" 2>&1 &
	PIDS+=("$!")
	local i
	for i in $(seq 1 50); do [ -S "$RUN/redis.sock" ] && return 0; sleep 0.1; done
	die "redis-server did not start: $(tail -3 "$RUN/redis.log")"
}

STUNNEL_PORT=""; STUNNEL_PID=""
# start_stunnel NAME [PORT]: client, TCP 127.0.0.1:PORT -> TLS 127.0.0.1:TLS_PORT, verifying the
# server's certificate. SIPp puts its remote address (here stunnel's) into the digest uri, not
# the Request-URI; sotto accepts a digest uri that names one of its own listener ports (and
# Kamailio does not check it), so for sotto stunnel listens on TCP at sotto's UDP port number.
start_stunnel() {
	STUNNEL_PORT=${2:-$(free_port tcp)}
	cat > "$RUN/stunnel-$1.conf" <<EOF
foreground = yes
pid =
output = $RUN/stunnel-$1.log
debug = 4
[sip-tls]
client = yes
accept = 127.0.0.1:$STUNNEL_PORT
connect = 127.0.0.1:$TLS_PORT
CAfile = $CA_FILE
verifyChain = yes
checkIP = 127.0.0.1
EOF
	stunnel "$RUN/stunnel-$1.conf" > "$RUN/stunnel-$1.stdout" 2>&1 &
	STUNNEL_PID=$!; PIDS+=("$STUNNEL_PID")
	wait_listen tcp "$STUNNEL_PORT" || die "stunnel did not start"
}

UAS_PID=""
start_uas() { # start_uas NAME: registers "uas" (UDP) and starts the SIPp callee
	local r
	r=$(run_sipp "$1-reg-uas" 15 "127.0.0.1:$SIP_PORT" -sf "$HERE/sipp/register.xml" \
		-inf "$RUN/users/uas.csv" -i 127.0.0.1 -p "$(free_port udp)" -m 1)
	[ "${r%% *}" = 1 ] || die "$1: registering the callee failed ($r), see $RUN/$1-reg-uas.out"
	# Bounded by the script budget; stopped by PID when the target is done.
	"${LOAD_PIN[@]}" timeout -s INT -k 5 $((BUDGET_S + 120)) sipp -sf "$HERE/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -buff_size "$SIPP_BUFFER" \
		-mp "$(free_port udp)" -nostdin -trace_err -error_file "$RUN/$1-uas.errors.log" \
		> "$RUN/$1-uas.out" 2>&1 &
	UAS_PID=$!; PIDS+=("$UAS_PID")
	wait_listen udp "$UAS_PORT" || die "sipp callee did not start"
}

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

# overload TARGET WORKLOAD KNEE: one step at OVERLOAD_FACTOR x the knee (STEP_S seconds of
# offered load). Goodput: calls completed within the offered period plus 2 s, per second of
# that window (from SIPp's per-second rows); against the knee. And what became of the rest:
# answered (ended by a response the scenario did not expect: the 503 of a refused call),
# timed_out (a request retransmitted to the limit, or no response), unfinished (still open
# when SIPp was stopped, STEP_S*3+20 s after the start). Target (issue 14): goodput >= 90 %
# of the knee, every refused call answered, none timed out or unfinished.
overload() {
	local t=$1 w=$2 knee=$3 rate shed
	rate=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * float(sys.argv[2])))' "$knee" "$OVERLOAD_FACTOR")
	step "$t" "$w-overload" "$rate" > /dev/null
	shed=$([ "$t" = sotto ] && echo "$(metric_now sotto_overload_shed_unauthenticated_total) $(metric_now sotto_overload_shed_all_total)")
	python3 - "$t" "$w" "$knee" "$rate" "$STEP_S" "$RUN/$t-$w-overload-$rate.csv" "$shed" <<'PY'
import csv, json, sys
t, w, knee, off, step_s, path, shed = sys.argv[1:8]
knee, off, step_s = float(knee), int(off), int(step_s)
rows = list(csv.reader(open(path), delimiter=';'))
h = rows[0]
vals = [dict(zip(h, r)) for r in rows[1:]]
secs = lambda v: sum(int(x) * m for x, m in zip(v['ElapsedTime(C)'].split('.')[0].split(':'), (3600, 60, 1)))
n = lambda v, f: int(v.get(f, 0) or 0)
last = vals[-1]
window = step_s + 2
in_window = [v for v in vals if secs(v) <= window]
done_in_window = n(in_window[-1], 'SuccessfulCall(C)') if in_window else 0
calls = off * step_s
ok, ko = n(last, 'SuccessfulCall(C)'), n(last, 'FailedCall(C)')
answered = n(last, 'FailedUnexpectedMessage(C)')
timed_out = n(last, 'FailedMaxUDPRetrans(C)') + n(last, 'FailedTimeoutOnRecv(C)')
unfinished = calls - ok - ko
good = done_in_window / window
ratio = round(good / knee, 3) if knee > 0 else None
print(json.dumps({"target": t, "workload": w + "_overload", "knee_per_s": knee, "offered_per_s": off,
    "goodput_per_s": round(good, 1), "goodput_ratio": ratio, "calls": calls, "completed": ok,
    "completed_in_window": done_in_window, "answered_refusals": answered, "timed_out": timed_out,
    "unfinished": unfinished, "other_failures": ko - answered - timed_out,
    "retransmissions": n(last, 'Retransmissions(C)'),
    "shed_by_server": dict(zip(("unauthenticated", "all"), map(int, shed.split()))) if shed.strip() else None,
    "want_ratio": 0.9,
    "met": bool(ratio is not None and ratio >= 0.9 and timed_out == 0 and unfinished == 0)}))
PY
}

# metric_now REGEX: the sum of sotto's metrics whose name matches REGEX (empty if unknown).
metric_now() {
	python3 -c 'import re,sys,urllib.request
try:
    body=urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
    print(int(sum(float(l.split()[1]) for l in body.splitlines() if re.match(sys.argv[2] + " ", l))))
except Exception:
    pass' "$METRICS_PORT" "$1"
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

# storm TARGET KNEE: a registration storm of STORM_S seconds offered at STORM_RATE REGISTER/s
# (digest, USERS accounts), then the call ramp again at once: calls/s after the storm against
# the fresh server's knee, with the server's resident set and (sotto, SQLite) WAL size before
# and after. Target (issue 14): >= 90 % of the fresh knee.
storm() {
	local t=$1 fresh=$2 r rss0 rss1 wal0 wal1 line after
	local wal=$RUN/sotto-auth-$SOTTO_STORAGE/sotto.db-wal
	rss0=$(mem_now sotto); wal0=$(stat -c %s "$wal" 2>/dev/null || echo 0)
	r=$(run_sipp "$t-storm" $((STORM_S * 3 + 30)) "127.0.0.1:$SIP_PORT" -sf "$HERE/sipp/register.xml" \
		-inf "$RUN/users/users.csv" -i 127.0.0.1 -p "$(free_port udp)" -r "$STORM_RATE" \
		-m $((STORM_RATE * STORM_S)) -l $((STORM_RATE * 2 + 50)) -max_socket 1000)
	rss1=$(mem_now sotto); wal1=$(stat -c %s "$wal" 2>/dev/null || echo 0)
	log "storm: $r (successful failed seconds)"
	line=$(measure "$t" call_udp)
	after=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rate_per_s"] if sys.argv[1] else 0)' "$line")
	python3 -c 'import json,sys
fresh,after,ok,ko,el,rate,secs,r0,r1,w0,w1=sys.argv[1:12]
fresh,after=float(fresh),float(after)
ratio=round(after/fresh,3) if fresh>0 else None
print(json.dumps({"target":"sotto","workload":"call_udp_after_register_storm","fresh_calls_per_s":fresh,
  "after_storm_calls_per_s":after,"ratio":ratio,"storm_offered_per_s":int(rate),"storm_s":int(secs),
  "storm_registers_ok":int(ok),"storm_registers_failed":int(ko),
  "storm_registers_per_s":round(int(ok)/float(el),1) if float(el)>0 else None,
  "rss_before_storm":int(r0 or 0),"rss_after_storm":int(r1 or 0),"wal_before_bytes":int(w0),"wal_after_bytes":int(w1),
  "want_ratio":0.9,"met":bool(ratio is not None and ratio>=0.9)}))' \
		"$fresh" "$after" ${r:-0 0 0} "$STORM_RATE" "$STORM_S" "$rss0" "$rss1" "$wal0" "$wal1"
}

# memory TARGET STORAGE: bytes per registered contact.
memory() {
	local t=$1 kind=$2 before after r heap_before="" heap_after="" heap_settled=""
	python3 "$HERE/gen_users.py" "$RUN/mem-users" "$MEM_CONTACTS" 127.0.0.1:5999 || die "gen_users.py failed"
	if [ "$t" = kamailio ]; then
		start_kamailio noauth
		sleep 1
	else
		METRICS_PORT=$(free_port tcp)
		start_sotto noauth "$kind"
		wait_listen tcp "$METRICS_PORT" || log "sotto metrics endpoint not up: no heap figures"
		sleep 1
		heap_before=$(heap_now)
	fi
	before=$(mem_now "$t")
	r=$(run_sipp "$t-mem-$kind" $((MEM_CONTACTS / 500 + 60)) "127.0.0.1:$SIP_PORT" \
		-sf "$HERE/sipp/register_noauth.xml" -inf "$RUN/mem-users/users.csv" -i 127.0.0.1 \
		-p "$(free_port udp)" -r 1000 -m "$MEM_CONTACTS" -l 2000)
	sleep 1
	after=$(mem_now "$t")
	[ "$t" = sotto ] && heap_after=$(heap_now)
	# Again once the REGISTER transactions are gone (RFC 3261 Timer J: 64*T1 = 32 s for UDP),
	# so that what remains is the registrations. (Kamailio answers REGISTER statelessly.)
	local settled=$after
	heap_settled=$heap_after
	if [ "$t" = sotto ] && [ "$MEM_SETTLE_S" -gt 0 ]; then
		sleep "$MEM_SETTLE_S"
		settled=$(mem_now "$t")
		heap_settled=$(heap_now)
	fi
	stop "$SERVER_PID"
	METRICS_PORT=0
	python3 -c 'import json,sys
t,kind,b,a,s,ok,wait=sys.argv[1],sys.argv[2],int(sys.argv[3] or 0),int(sys.argv[4] or 0),int(sys.argv[5] or 0),int(sys.argv[6]),int(sys.argv[7])
hb,ha,hs=[int(x) if x else None for x in sys.argv[8:11]]
what = "shm_used" if t=="kamailio" else "rss"
per = lambda x,b=b: round((x-b)/ok,1) if ok else None
d={"target":t,"workload":"memory_per_contact","storage":kind,"contacts":ok,"measure":what,
  "before_bytes":b,"after_bytes":a,"bytes_per_contact":per(s),"bytes_per_contact_at_once":per(a)}
if t=="sotto":
    d.update({"settled_after_s":wait,"settled_bytes":s,"want_max_bytes":614,"met":bool(ok and per(s)<=614)})
    if hb is not None and hs is not None:
        # The counting allocator'"'"'s live bytes: what Kamailio'"'"'s shm "used" figure measures.
        d.update({"heap_before_bytes":hb,"heap_settled_bytes":hs,"heap_bytes_per_contact":per(hs,hb),
          "heap_bytes_per_contact_at_once":per(ha,hb) if ha is not None else None,
          "heap_met":bool(ok and per(hs,hb)<=614)})
print(json.dumps(d))' "$t" "$kind" "$before" "$after" "$settled" "${r%% *}" "$MEM_SETTLE_S" \
		"$heap_before" "$heap_after" "$heap_settled"
}

# mem_now TARGET: Kamailio's shared memory in use, or the sotto server's resident set (bytes).
mem_now() {
	if [ "$1" = kamailio ]; then
		kamcmd -s "unix:$RUN/kamailio/ctl.sock" core.shmmem | awk '/used:/ {print $2; exit}'
	else
		awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$SERVER_PID/status"
	fi
}

# heap_now: the sotto server's heap bytes in use (gauge sotto_heap_bytes), empty if unknown.
heap_now() {
	python3 -c 'import sys,urllib.request
try:
    body=urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
    print(next(l.split()[1] for l in body.splitlines() if l.startswith("sotto_heap_bytes ")))
except Exception:
    pass' "$METRICS_PORT"
}

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
