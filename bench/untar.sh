#!/usr/bin/env bash
# Untar + sync on several peers, interleaved, for quick A/B runs of the
# metadata path (the full `meta` workload of ../shared/bench takes ~5 min
# per peer and round; this is its last step alone, same tarball, same
# timing: caches dropped, `tar -xf` then `sync`).
#   bench/untar.sh [--rounds N] PEER...
# PEER is a peer script name found in BENCH_PEERS_PATH (colon-separated,
# default: this repo's bench/peers, then ../shared/bench/peers), e.g.
#   BENCH_PEERS_PATH=/tmp/ab-peers:$PWD/bench/peers bench/untar.sh --rounds 2 gocryptfs cipherfs
# Env: TARBALL (default $BENCH_ROOT/cache/usr_include.tar, which the
# shared bench's meta workload builds), BENCH_ROOT (default /tmp/bench),
# BENCH_PASSFILE (default $BENCH_ROOT/passfile, for gocryptfs).
# Prints one line per round and peer: "<peer> r<N> untar_s <seconds> load <1-min load>".
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rounds=1
if [[ ${1:-} == --rounds ]]; then rounds=$2; shift 2; fi
[[ $# -ge 1 ]] || { echo "usage: $0 [--rounds N] PEER..." >&2; exit 2; }
export BENCH_ROOT=${BENCH_ROOT:-/tmp/bench}
export BENCH_PASSFILE=${BENCH_PASSFILE:-$BENCH_ROOT/passfile}
[[ -s $BENCH_PASSFILE ]] || { umask 077; printf 'bench-%s' "$RANDOM$RANDOM" > "$BENCH_PASSFILE"; chmod 644 "$BENCH_PASSFILE"; }
tarball=${TARBALL:-$BENCH_ROOT/cache/usr_include.tar}
[[ -s $tarball ]] || { echo "no tarball $tarball (run the shared bench's meta workload once, or set TARBALL)" >&2; exit 2; }
IFS=: read -r -a path <<< "${BENCH_PEERS_PATH:-$here/peers}:$here/../../shared/bench/peers"

peer_script() {
  local d
  for d in "${path[@]}"; do [[ -x $d/$1.sh ]] && { echo "$d/$1.sh"; return 0; }; done
  echo "peer $1 not found in ${path[*]}" >&2; return 1
}

for ((r = 1; r <= rounds; r++)); do
  for p in "$@"; do
    script=$(peer_script "$p")
    dir=$BENCH_ROOT/untar/$p cipher=$BENCH_ROOT/untar/$p/cipher mnt=$BENCH_ROOT/untar/$p/mnt
    rm -rf "$dir"; mkdir -p "$cipher" "$mnt"
    "$script" mount "$cipher" "$mnt" > "$dir.log" 2>&1 || { echo "$p: mount failed (see $dir.log)" >&2; continue; }
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=$(date +%s.%N)
    tar -xf "$tarball" -C "$mnt"; sync
    t1=$(date +%s.%N)
    echo "$p r$r untar_s $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') load $(cut -d' ' -f1 /proc/loadavg)"
    "$script" umount "$cipher" "$mnt" >> "$dir.log" 2>&1 || true
    rm -rf "$dir"
  done
done
