# Sourced by compare.sh: starting the servers under test (Kamailio, sotto with its config and
# accounts, Redis for sotto's store), stunnel for TLS, and the SIPp callee. Uses compare.sh's
# settings and helpers (log, die, free_port, wait_listen, run_sipp, PIDS).

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
# For the memory run only: authentication off, and the storage kind. SOTTO_SET="section.key=value
# ..." (knob, for experiments) sets more keys, e.g. SOTTO_SET="overload.shed_unauthenticated_at=768".
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
	local kv section key value
	for kv in ${SOTTO_SET:-}; do
		section=${kv%%.*}; key=${kv#*.}; key=${key%%=*}; value=${kv#*=}
		sed -i "/^\[$section\]/,/^\[/ s|^$key = .*|$key = $value|" "$cfg"
		sed -n "/^\[$section\]/,/^\[/p" "$cfg" | grep -q "^$key = $value\$" || die "SOTTO_SET: no $key in [$section]"
	done
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
