#!/bin/bash
# Snapshot figures of issue 5 under pgbench (not a test; run by hand as
# root; docs/snapshots.md "Measured"). For each SIZE: an encrypted cluster
# holding SIZE GiB (a dd file plus a PostgreSQL 15 database, pgbench scale
# $SCALE), pgbench -c 4 running for $DURATION s with per-transaction
# latency logs; a snapshot taken through the daemon after $SNAP_AT s.
# Reported: the daemon's write pause and chunk-linking time, the command's
# total time, pgbench's longest transaction while the snapshot was taken
# (from the ask until 1 s after the answer) against its longest in the rest
# of the run; then, with PostgreSQL stopped, fio 8 KiB random writes
# (fdatasync each) on a 256 MiB file right after a snapshot against without
# one (the first-write copy-on-write cost); then restore-from-snapshot time.
# Usage: measure_snapshot_pg.sh PATH-TO-cipherfs [SIZE_GIB...]   (default 1)
set -u
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs [SIZE_GIB...]}
shift
SIZES=${*:-1}
SCALE=${SCALE:-20} DURATION=${DURATION:-24} SNAP_AT=${SNAP_AT:-10}
CFS_TAG=measure-snapshot
source "$(dirname "$0")/../../scripts/lib/common.sh"
source "$(dirname "$0")/../../scripts/lib/pg.sh"
WORK=$(mktemp -d /tmp/cipherfs-measure-pg.XXXXXX)
chmod 755 "$WORK"
export CIPHERFS_HOME=$WORK/home CIPHERFS_BACKUP_CHECK_SECONDS=0
M=$WORK/m
mkdir -p "$M"
cleanup() {
  [[ -n ${CFS_PG_RUN:-} ]] && cfs_pg_stop_or_kill
  if mountpoint -q "$M"; then "$CIPHERFS" umount "$M" >/dev/null 2>&1 || fusermount3 -uz "$M"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cli() { "$CIPHERFS" "$@" || cfs_die "cipherfs $* failed"; }

fio_iops() { # fio_iops FILE: IOPS of 8 KiB random writes, fdatasync each, 8 s
  fio --name=w --filename="$1" --rw=randwrite --bs=8k --ioengine=psync --fdatasync=1 --runtime=8 --time_based \
    --size=256m --output-format=json 2>/dev/null | jq -r '.jobs[0].write.iops | floor'
}

# max_latency LOGDIR FROM_US TO_US: longest pgbench transaction (ms) ending
# inside [FROM, TO] ("in") and outside it ("out"), from pgbench -l logs
# (client tx latency_us script epoch_s epoch_us).
max_latency() {
  cat "$1"/pgbench_log.* | awk -v a="$2" -v b="$3" '
    { t = $5 * 1000000 + $6; if (t >= a && t <= b) { if ($3 > in_) in_ = $3; n_in++ } else { if ($3 > out) out = $3; n_out++ } }
    END { printf "%.1f ms (%d tx) / %.1f ms (%d tx)", in_ / 1000, n_in, out / 1000, n_out }'
}

for gib in $SIZES; do
  id=p$gib
  cli cluster create --id "$id" --storage-encrypted >/dev/null
  cli mount "$id" "$M" -o allow_other >/dev/null
  t0=$(date +%s)
  dd if=/dev/zero of="$M/fill" bs=1M count=$((gib * 1024 - 400)) conv=fsync status=none
  dd if=/dev/urandom of="$M/hot" bs=1M count=256 conv=fsync status=none
  cfs_pg_setup "$M/data" "$WORK/run"
  cfs_pg_initdb
  cfs_pg_start
  cfs_pg_load_init "$SCALE"
  cfs_say "$gib GiB: filled and pgbench -i -s $SCALE in $(($(date +%s) - t0)) s ($(du -sh --apparent-size "$M" | cut -f1) on the mount)"
  logs=$WORK/pglog
  install -d -o postgres -m 755 "$logs"
  (cd "$logs" && cfs_as_pg "$CFS_PG_BIN/pgbench" -n -c 4 -j 2 -T "$DURATION" -l -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" bench \
    >"$WORK/pgbench.log" 2>&1) &
  pgb=$!
  sleep "$SNAP_AT"
  ts=$(date +%s%6N)
  cli snapshot create --cluster "$id" --id "$id-s1" --output json >"$WORK/s.json"
  te=$(date +%s%6N)
  wait $pgb || { tail "$WORK/pgbench.log" >&2; cfs_die "pgbench failed"; }
  tps=$(awk '/^tps/ {print int($3); exit}' "$WORK/pgbench.log")
  cfs_say "$gib GiB: daemon write pause $(jq -r '.DBClusterSnapshot.WritePauseMicroseconds / 1000' "$WORK/s.json") ms," \
    "(waiting for operations in flight $(jq -r '.DBClusterSnapshot.WritePauseDetail.WaitForOperationsInFlightMicroseconds / 1000' "$WORK/s.json") ms," \
    "tree/ copy $(jq -r '.DBClusterSnapshot.WritePauseDetail.TreeCopyMicroseconds / 1000' "$WORK/s.json") ms" \
    "of $(jq -r '.DBClusterSnapshot.WritePauseDetail.TreeEntries' "$WORK/s.json") entries)," \
    "chunks linked after it in $(jq -r '.DBClusterSnapshot.ChunkLinkMicroseconds / 1000 | floor' "$WORK/s.json") ms," \
    "snapshot create $(((te - ts) / 1000)) ms; pgbench ($tps tps) longest transaction during the snapshot / rest of the run:" \
    "$(max_latency "$logs" "$ts" $((te + 1000000)))"
  rm -rf "$logs"
  cfs_pg_stop
  cli snapshot create --cluster "$id" --id "$id-s2" >/dev/null
  after=$(fio_iops "$M/hot")
  cli snapshot delete --id "$id-s2" >/dev/null
  cli snapshot delete --id "$id-s1" >/dev/null
  without=$(fio_iops "$M/hot")
  cfs_say "$gib GiB: fio 8k randwrite+fdatasync on 256 MiB: $after IOPS right after a snapshot, $without IOPS without"
  cli snapshot create --cluster "$id" --id "$id-s3" >/dev/null
  cli umount "$M" >/dev/null
  ts=$(date +%s%N)
  cli cluster restore-from-snapshot --snapshot "$id-s3" --id "$id-r" >/dev/null
  te=$(date +%s%N)
  cfs_say "$gib GiB: restore-from-snapshot $(((te - ts) / 1000000)) ms"
  cli cluster delete --id "$id-r" --skip-final-snapshot >/dev/null
  cli snapshot delete --id "$id-s3" >/dev/null
  cli cluster delete --id "$id" --skip-final-snapshot >/dev/null
done
