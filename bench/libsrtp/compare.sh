#!/usr/bin/env bash
# Compares `sotto bench srtp` with Debian's libsrtp2 on the same workloads, in one run.
#
# Builds bench/libsrtp/srtp_bench.c against libsrtp2 (pkg-config libsrtp2) and sotto in
# release mode, runs both on each workload (the same packets, keys, batching and timing; see
# the C file's header) and prints one JSON line per workload with both rates and the ratios
# sotto/libsrtp2, plus the issue's target ratio for that workload and whether it is met.
#
# Usage: bench/libsrtp/compare.sh                 (the four default workloads)
#        PACKETS=500000 bench/libsrtp/compare.sh  (fewer packets per run; default 1000000)
#        WORKLOADS="AES_CM_128_HMAC_SHA1_32@160 AEAD_AES_256_GCM@1200" bench/libsrtp/compare.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
packets="${PACKETS:-1000000}"
workloads="${WORKLOADS:-AES_CM_128_HMAC_SHA1_80@160 AEAD_AES_128_GCM@160 AES_CM_128_HMAC_SHA1_80@1200 AEAD_AES_128_GCM@1200}"

missing() {
    echo "compare.sh: $1 is missing; install it with: apt-get install -y libsrtp2-dev pkg-config" >&2
    exit 1
}
command -v pkg-config >/dev/null 2>&1 || missing "pkg-config"
pkg-config --exists libsrtp2 || missing "libsrtp2 (libsrtp2-dev)"
command -v gcc >/dev/null 2>&1 || { echo "compare.sh: gcc is missing; install it with: apt-get install -y gcc" >&2; exit 1; }

out="$root/target/libsrtp-bench"
mkdir -p "$out"
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -o "$out/srtp_bench" "$here/srtp_bench.c" $(pkg-config --cflags --libs libsrtp2)
(cd "$root" && cargo build --release -p sotto --quiet)
sotto="$root/target/release/sotto"

field() { # field NAME JSON -> number
    sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2"
}

echo "{\"libsrtp2\":\"$(pkg-config --modversion libsrtp2)\",\"packets\":$packets,\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\"}"
for w in $workloads; do
    suite="${w%@*}"
    payload="${w#*@}"
    s="$("$sotto" bench srtp --suite "$suite" --payload "$payload" --packets "$packets" --json)"
    l="$("$out/srtp_bench" "$suite" "$payload" "$packets")"
    sp="$(field protect_pps "$s")"; su="$(field unprotect_pps "$s")"
    lp="$(field protect_pps "$l")"; lu="$(field unprotect_pps "$l")"
    case "$suite@$payload" in
        AES_CM_128_HMAC_SHA1_80@160) target=6.5 ;;
        AEAD_AES_128_GCM@160) target=3.5 ;;
        *@1200) target=1.0 ;;
        *) target=0 ;;
    esac
    awk -v suite="$suite" -v payload="$payload" -v packets="$packets" -v sp="$sp" -v su="$su" \
        -v lp="$lp" -v lu="$lu" -v target="$target" 'BEGIN {
        pr = sp / lp; ur = su / lu;
        meets = (target == 0) ? "null" : ((pr >= target && ur >= target) ? "true" : "false");
        printf "{\"suite\":\"%s\",\"payload\":%d,\"packets\":%d,\"sotto_protect_pps\":%.0f,\"sotto_unprotect_pps\":%.0f,\"libsrtp_protect_pps\":%.0f,\"libsrtp_unprotect_pps\":%.0f,\"protect_ratio\":%.2f,\"unprotect_ratio\":%.2f,\"target_ratio\":%s,\"meets_target\":%s}\n",
            suite, payload, packets, sp, su, lp, lu, pr, ur, (target == 0 ? "null" : target), meets
    }'
done
