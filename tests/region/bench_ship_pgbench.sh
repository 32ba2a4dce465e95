#!/bin/bash
# Benchmark (not a ctest test): pgbench TPS on an encrypted source cluster
# without a replica and while a cross-region replica ships continuously
# (`replica ship --follow`), ROUNDS alternating runs of each, medians quoted
# (issue 6 goal: with shipping >= 0.9x of without). Root only.
# Usage: bench_ship_pgbench.sh PATH-TO-cipherfs [SCALE] [SECONDS] [ROUNDS] [INTERVAL_MS]
# INTERVAL_MS "default" (the default) runs `replica ship --follow` without
# --interval-ms, i.e. at the command's default interval (10 s).
# BASELINE=PATH-TO-other-cipherfs adds, in every round, a run shipping with
# that binary (before/after of the shipper in one run; the source's daemon
# is always PATH-TO-cipherfs). Each round prints the shipments' median
# phases (from their "shipped replica" lines).
set -uo pipefail
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs [SCALE] [SECONDS] [ROUNDS] [INTERVAL_MS]}
SCALE=${2:-10}
SECS=${3:-30}
ROUNDS=${4:-3}
INTERVAL=${5:-default}
CLIENTS=4
root=$(cd "$(dirname "$0")/../.." && pwd)
export CFS_TAG=bench-ship
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"
[[ $(id -u) -eq 0 ]] || cfs_die "needs root (PostgreSQL runs as postgres on an allow_other mount)"
WORK=$(mktemp -d /var/tmp/cipherfs-bench-ship.XXXXXX)
chmod 755 "$WORK"
export CIPHERFS_HOME=$WORK/home
unset CIPHERFS_REGION
trap 'cfs_cleanup' EXIT
cfs_on_exit "rm -rf '$WORK'"
cfs() { "$CIPHERFS" "$@"; }

K1=$(cfs kms create-key | jq -r .KeyMetadata.Arn) || cfs_die "create-key"
K2=$(cfs kms create-key --region dr-1 | jq -r .KeyMetadata.Arn) || cfs_die "create-key dr-1"
cfs cluster create --id pgsrc --storage-encrypted --kms-key-id "$K1" >/dev/null || cfs_die "cluster create"
M=$WORK/src; mkdir -p "$M"
cfs mount pgsrc "$M" -o allow_other >/dev/null || cfs_die "mount"
cfs_on_exit "cfs umount '$M' >/dev/null 2>&1 || fusermount3 -u '$M'"
chmod 755 "$M"
cfs_pg_setup "$M/pgdata" "$WORK/run"
cfs_on_exit "cfs_pg_stop_or_kill"
cfs_pg_initdb
cfs_pg_start
cfs_pg_load_init "$SCALE"
cfs replica create --source pgsrc --source-region local-1 --id rep --region dr-1 --kms-key-id "$K2" >/dev/null ||
  cfs_die "replica create"

tps() {  # one pgbench run; prints its TPS
  cfs_as_pg "$CFS_PG_BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECS" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" bench 2>/dev/null |
    awk '/^tps = / {print $3; exit}'
}
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -a T0 T1 T2 SHIPS
BASELINE=${BASELINE:-}
IARGS=(--interval-ms "$INTERVAL"); [[ $INTERVAL == default ]] && IARGS=()
shipping() {  # BINARY LOG: one pgbench run while BINARY ships; prints its TPS
  "$1" replica ship --id rep --region dr-1 --follow "${IARGS[@]}" >"$2" 2>&1 &
  local shipper=$! t
  t=$(tps)
  kill "$shipper"; wait "$shipper" 2>/dev/null
  echo "$t"
}
phases() {  # LOG: shipments and their median seconds (total, source snapshot, writes held)
  gawk '/shipped replica/ {n++; for (i = 1; i <= NF; i++) { if ($i == "snapshot") s[n] = $(i+1);
         if ($i == "held") h[n] = $(i+1); if ($i == "removed,") t[n] = $(i+1) } }
       END { if (n == 0) { print "0 shipments"; exit }
             asort(s); asort(h); asort(t); m = int((n + 1) / 2);
             printf "%d shipments, median %s s + source snapshot %s s (writes held %s s)", n, t[m], s[m], h[m] }' "$1"
}
for ((r = 1; r <= ROUNDS; r++)); do
  T0+=("$(tps)")
  T1+=("$(shipping "$CIPHERFS" "$WORK/ship.$r")")
  echo "round $r: no replica ${T0[-1]} tps, shipping ${T1[-1]} tps ($(phases "$WORK/ship.$r"); last: $(tail -1 "$WORK/ship.$r"))"
  if [[ -n $BASELINE ]]; then
    T2+=("$(shipping "$BASELINE" "$WORK/base.$r")")
    echo "round $r: shipping with the baseline binary ${T2[-1]} tps ($(grep -c 'shipped replica' "$WORK/base.$r") shipments)"
  fi
done
m0=$(med "${T0[@]}"); m1=$(med "${T1[@]}")
every="every $INTERVAL ms"; [[ $INTERVAL == default ]] && every="at the default interval"
echo "scale $SCALE, $CLIENTS clients, ${SECS}s runs, shipping $every, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median: no replica $m0 tps, while shipping $m1 tps: $(echo "scale=2; $m1 / $m0" | bc)x (goal >= 0.9x)"
if [[ -n $BASELINE ]]; then
  m2=$(med "${T2[@]}")
  echo "baseline binary shipping: $m2 tps: $(echo "scale=2; $m2 / $m0" | bc)x"
fi
