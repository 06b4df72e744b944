#!/usr/bin/env bash
# Compares `sotto bench zrtp` with Linphone's bzrtp (Debian libbzrtp-dev) in one run.
#
# Builds bench/zrtp/bzrtp_bench.c against libbzrtp and sotto in release mode, runs both for
# each key agreement (whole handshakes between two in-process endpoints, both peers, context
# setup and SRTP key export included, cacheless, no timer firing; the same cipher on both, so
# the same DH exponent length) and prints one JSON line per key agreement with both CPU
# costs, the ratio bzrtp/sotto (how many times cheaper sotto is), the target (2) and whether
# it is met.
#
# Usage: bench/zrtp/compare.sh                     (X255 X448 DH2k DH3k, AES1)
#        HANDSHAKES=50 bench/zrtp/compare.sh        (fewer handshakes; default 300)
#        AGREEMENTS="X255 DH3k" CIPHER=AES3 bench/zrtp/compare.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
handshakes="${HANDSHAKES:-300}"
agreements="${AGREEMENTS:-X255 X448 DH2k DH3k}"
cipher="${CIPHER:-AES1}"

[ -f /usr/include/bzrtp/bzrtp.h ] || {
    echo "compare.sh: bzrtp is missing; install it with: apt-get install -y libbzrtp-dev" >&2
    exit 1
}
command -v gcc >/dev/null 2>&1 || { echo "compare.sh: gcc is missing; install it with: apt-get install -y gcc" >&2; exit 1; }

out="$root/target/zrtp-bench"
mkdir -p "$out"
gcc -O2 -Wall -Wextra -o "$out/bzrtp_bench" "$here/bzrtp_bench.c" -lbzrtp -lbctoolbox
(cd "$root" && cargo build --release -p sotto --quiet)
sotto="$root/target/release/sotto"

field() { # field NAME JSON -> number
    sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2"
}

version="$(dpkg-query -W -f='${Version}' libbzrtp-dev 2>/dev/null || echo unknown)"
echo "{\"bzrtp\":\"$version\",\"handshakes\":$handshakes,\"cipher\":\"$cipher\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\"}"
for ka in $agreements; do
    # bzrtp's DH2k/DH3k handshakes take milliseconds: fewer of them keep the run short.
    n="$handshakes"
    case "$ka" in DH*) n=$(( handshakes / 5 > 10 ? handshakes / 5 : 10 )) ;; esac
    s="$("$sotto" bench zrtp --key-agreement "$ka" --cipher "$cipher" --handshakes "$n" --json)"
    b="$("$out/bzrtp_bench" "$ka" "$n" "$cipher")"
    sc="$(field cpu_ms_per_handshake "$s")"; bc="$(field cpu_ms_per_handshake "$b")"
    sw="$(field wall_ms_per_handshake "$s")"; bw="$(field wall_ms_per_handshake "$b")"
    awk -v ka="$ka" -v n="$n" -v sc="$sc" -v bc="$bc" -v sw="$sw" -v bw="$bw" 'BEGIN {
        r = bc / sc;
        printf "{\"key_agreement\":\"%s\",\"handshakes\":%d,\"sotto_cpu_ms_per_handshake\":%.3f,\"bzrtp_cpu_ms_per_handshake\":%.3f,\"sotto_wall_ms_per_handshake\":%.3f,\"bzrtp_wall_ms_per_handshake\":%.3f,\"times_cheaper\":%.2f,\"target\":2,\"meets_target\":%s}\n",
            ka, n, sc, bc, sw, bw, r, (r >= 2 ? "true" : "false")
    }'
done
