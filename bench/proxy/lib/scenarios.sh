# Sourced by compare.sh: the runs beyond the call/REGISTER ramp — one overload step past the
# knee, the registration storm, the memory-per-contact runs — and the metric readers they use.
# Uses compare.sh's settings and helpers.

# overload TARGET WORKLOAD KNEE: one step at OVERLOAD_FACTOR x the knee (STEP_S seconds of
# offered load). Goodput: the calls completed within the offered period plus 2 s, per second
# of the time they took to complete (from the start to the SIPp row where the last of them is
# counted, at least STEP_S) — the knee's own measure (successful calls over elapsed time);
# against the knee. (Until 2026-12-05 13:00 it divided by the whole window, STEP_S + 2 s, even
# when every call had completed at STEP_S: at most STEP_S / (STEP_S + 2) = 0.67 of the knee.) And what became of the rest:
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
# CurrentTime is "date<TAB>time<TAB>epoch seconds": the rows' own clock, to the microsecond.
epoch = lambda v: float(v['CurrentTime'].split('\t')[-1])
start = epoch(vals[0])
secs = lambda v: epoch(v) - start
n = lambda v, f: int(v.get(f, 0) or 0)
last = vals[-1]
window = step_s + 2
in_window = [v for v in vals if secs(v) <= window]
done_in_window = n(in_window[-1], 'SuccessfulCall(C)') if in_window else 0
# When the last of them was counted: the first row that shows them all.
done_at = next((secs(v) for v in in_window if n(v, 'SuccessfulCall(C)') >= done_in_window), window)
calls = off * step_s
ok, ko = n(last, 'SuccessfulCall(C)'), n(last, 'FailedCall(C)')
answered = n(last, 'FailedUnexpectedMessage(C)')
timed_out = n(last, 'FailedMaxUDPRetrans(C)') + n(last, 'FailedTimeoutOnRecv(C)')
unfinished = calls - ok - ko
good = done_in_window / max(done_at, step_s)
ratio = round(good / knee, 3) if knee > 0 else None
print(json.dumps({"target": t, "workload": w + "_overload", "knee_per_s": knee, "offered_per_s": off,
    "goodput_per_s": round(good, 1), "goodput_ratio": ratio, "calls": calls, "completed": ok,
    "completed_in_window": done_in_window, "completed_by_s": round(done_at, 2), "answered_refusals": answered, "timed_out": timed_out,
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

# storm TARGET KNEE: a registration storm of STORM_S seconds offered at STORM_RATE REGISTER/s
# (digest, USERS accounts), then the call ramp again at once: calls/s after the storm against
# the fresh server's knee, with the server's resident set and (sotto, SQLite) WAL size before
# and after. Target (issue 14): >= 90 % of the fresh knee.
storm() {
	local t=$1 fresh=$2 r rss0 rss1 wal0 wal1 line after
	local wal=$RUN/sotto-auth-$SOTTO_STORAGE/sotto.db-wal
	# The resident set and WAL are sotto's (Kamailio keeps registrations in shared memory).
	rss0=""; rss1=""
	[ "$t" = sotto ] && rss0=$(mem_now sotto)
	wal0=$(stat -c %s "$wal" 2>/dev/null || echo 0)
	r=$(run_sipp "$t-storm" $((STORM_S * 3 + 30)) "127.0.0.1:$SIP_PORT" -sf "$HERE/sipp/register.xml" \
		-inf "$RUN/users/users.csv" -i 127.0.0.1 -p "$(free_port udp)" -r "$STORM_RATE" \
		-m $((STORM_RATE * STORM_S)) -l $((STORM_RATE * 2 + 50)) -max_socket 1000)
	[ "$t" = sotto ] && rss1=$(mem_now sotto)
	wal1=$(stat -c %s "$wal" 2>/dev/null || echo 0)
	log "storm: $r (successful failed seconds)"
	line=$(measure "$t" call_udp)
	after=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rate_per_s"] if sys.argv[1] else 0)' "$line")
	python3 -c 'import json,sys
t,fresh,after,ok,ko,el,rate,secs,r0,r1,w0,w1=sys.argv[1:13]
fresh,after=float(fresh),float(after)
ratio=round(after/fresh,3) if fresh>0 else None
print(json.dumps({"target":t,"workload":"call_udp_after_register_storm","fresh_calls_per_s":fresh,
  "after_storm_calls_per_s":after,"ratio":ratio,"storm_offered_per_s":int(rate),"storm_s":int(secs),
  "storm_registers_ok":int(ok),"storm_registers_failed":int(ko),
  "storm_registers_per_s":round(int(ok)/float(el),1) if float(el)>0 else None,
  "rss_before_storm":int(r0 or 0),"rss_after_storm":int(r1 or 0),"wal_before_bytes":int(w0),"wal_after_bytes":int(w1),
  "want_ratio":0.9,"met":bool(ratio is not None and ratio>=0.9)}))' \
		"$t" "$fresh" "$after" ${r:-0 0 0} "$STORM_RATE" "$STORM_S" "$rss0" "$rss1" "$wal0" "$wal1"
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
