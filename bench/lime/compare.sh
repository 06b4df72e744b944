#!/usr/bin/env bash
# Compares `sotto bench lime` with Linphone's liblime (Debian liblime-dev) in one run.
#
# Builds bench/lime/liblime_bench.c against liblime and sotto in release mode, then for each
# curve runs `sotto bench lime --liblime ...`: sotto's figures (messages/s in memory with the
# ratchet turning at every message and one way, persisted with SQLite synchronous=FULL; the
# first message; one message to 100 devices; key-server bundle fetches/s on SQLite) and
# liblime's persisted messages/s in the same workload (its key server is sotto's, in
# process), then one summary line per curve with the ratio and the targets.
#
# Usage: bench/lime/compare.sh                 (both curves, 2000 messages)
#        MESSAGES=200 bench/lime/compare.sh     (short)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
messages="${MESSAGES:-2000}"

[ -f /usr/include/lime/lime_ffi.h ] || {
    echo "compare.sh: liblime is missing; install it with: apt-get install -y liblime-dev" >&2
    exit 1
}
command -v gcc >/dev/null 2>&1 || { echo "compare.sh: gcc is missing; install it with: apt-get install -y gcc" >&2; exit 1; }

out="$root/target/lime-bench"
mkdir -p "$out"
gcc -O2 -Wall -Wextra -o "$out/liblime_bench" "$here/liblime_bench.c" -llime -lbctoolbox
(cd "$root" && cargo build --release -p sotto --quiet)
sotto="$root/target/release/sotto"

field() { # field NAME JSON -> number
    sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2"
}

version="$(dpkg-query -W -f='${Version}' liblime-dev 2>/dev/null || echo unknown)"
echo "{\"liblime\":\"$version\",\"messages\":$messages,\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\"}"
for curve in c25519 c448; do
    lines="$("$sotto" bench lime --curve "$curve" --messages "$messages" --liblime "$out/liblime_bench" --json)"
    echo "$lines"
    s="$(grep '"impl":"sotto"' <<<"$lines")"
    l="$(grep '"impl":"liblime"' <<<"$lines")"
    awk -v c="$curve" -v sp="$(field messages_per_s_persisted "$s")" \
        -v lp="$(field messages_per_s_persisted "$l")" \
        -v ow="$(field messages_per_s_memory_one_way "$s")" \
        -v hd="$(field hundred_devices_ms "$s")" -v bf="$(field bundle_fetches_per_s "$s")" 'BEGIN {
        r = sp / lp;
        printf "{\"curve\":\"%s\",\"sotto_persisted_per_s\":%.0f,\"liblime_persisted_per_s\":%.0f,\"times_faster\":%.2f,\"target_times\":10,\"meets_times\":%s,\"memory_one_way_per_s\":%.0f,\"meets_30000\":%s,\"hundred_devices_ms\":%.2f,\"meets_5ms\":%s,\"bundle_fetches_per_s\":%.0f,\"meets_10000\":%s}\n",
            c, sp, lp, r, (r >= 10 ? "true" : "false"), ow, (ow >= 30000 ? "true" : "false"),
            hd, (hd <= 5 ? "true" : "false"), bf, (bf >= 10000 ? "true" : "false");
    }'
done
