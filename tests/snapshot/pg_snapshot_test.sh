#!/bin/bash
# PostgreSQL on a snapshot (issue 5): a private PostgreSQL 15 server (user
# postgres, scripts/lib/pg.sh) runs pgbench TPC-B and the acknowledged-id
# client on an encrypted cipherfs cluster; a snapshot is taken through the
# mount daemon in the middle of the load; the snapshot is restored to a new
# cluster, mounted, and PostgreSQL started on it: it must recover (as after a
# power cut at the snapshot's instant), pgbench's balance invariant must
# hold, every id acknowledged before the snapshot was asked for must be
# there, pg_amcheck and (after a clean stop) pg_checksums must pass. The
# live cluster passes db-crash-loop's checks at the end (CIPHERFS_LONG=1).
# Needs root, FUSE and PostgreSQL 15; exits 77 (skipped) otherwise.
# CIPHERFS_LONG=1: a longer load at a larger scale.
# Usage: pg_snapshot_test.sh PATH-TO-cipherfs
set -u
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs}
CFS_TAG=pg-snapshot
source "$(dirname "$0")/../../scripts/lib/common.sh"
source "$(dirname "$0")/../../scripts/lib/pg.sh"
skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (a private server run as postgres)"
[[ -x $CFS_PG_BIN/initdb ]] && id postgres >/dev/null 2>&1 || skip "PostgreSQL 15 is not installed"
command -v fusermount3 >/dev/null && [[ -c /dev/fuse ]] || skip "FUSE is not usable here"

SCALE=2 DURATION=10 SNAP_AT=4
[[ ${CIPHERFS_LONG:-0} == 1 ]] && SCALE=50 DURATION=60 SNAP_AT=25
WORK=$(mktemp -d /tmp/cipherfs-pgsnap.XXXXXX)
chmod 755 "$WORK"
export CIPHERFS_HOME=$WORK/home CIPHERFS_BACKUP_CHECK_SECONDS=0
LIVE=$WORK/live REST=$WORK/restored
mkdir -p "$LIVE" "$REST"
cleanup() {
  [[ -n ${CFS_PG_RUN:-} ]] && cfs_pg_stop_or_kill
  for m in "$LIVE" "$REST"; do
    if mountpoint -q "$m" 2>/dev/null; then "$CIPHERFS" umount "$m" >/dev/null 2>&1 || fusermount3 -uz "$m"; fi
  done
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
cli() { "$CIPHERFS" "$@" || cfs_die "cipherfs $* failed"; }

cli cluster create --id pg --storage-encrypted >/dev/null
cli mount pg "$LIVE" -o allow_other >/dev/null
cfs_pg_setup "$LIVE/data" "$WORK/run"
cfs_pg_initdb
cfs_pg_start
cfs_pg_load_init "$SCALE"
cfs_say "load: pgbench -c 4 -T $DURATION (scale $SCALE) and the ack client; snapshot after ${SNAP_AT}s"
cfs_pg_load_start 4 "$DURATION" "$WORK" 1
sleep "$SNAP_AT"
# Ids acknowledged before the snapshot is asked for must all be in it.
awk '$1 == "ACK" {print $2}' "$WORK/ack.1" | sort -u >"$WORK/acked-before.sorted"
cli snapshot create --cluster pg --id pg-during-load --output json >"$WORK/snap.json"
pause_us=$(jq -r '.DBClusterSnapshot.WritePauseMicroseconds' "$WORK/snap.json")
cfs_say "snapshot taken under load: write pause $((pause_us / 1000)) ms, $(wc -l <"$WORK/acked-before.sorted") ids acknowledged before"
cfs_pg_load_stop "$WORK" 1
[[ ${CIPHERFS_LONG:-0} == 1 ]] && cfs_pg_check_online "$WORK" 4 1  # the live cluster too (db-crash-loop's checks)
cfs_pg_stop
cli umount "$LIVE" >/dev/null

# --- the snapshot, restored to a new cluster, started ---
cli cluster restore-from-snapshot --snapshot pg-during-load --id pg-restored >/dev/null
cli mount pg-restored "$REST" -o allow_other >/dev/null
CFS_PG_DATA=$REST/data
CFS_PG_PORT=$(cfs_free_port)
rm -f "$CFS_PG_RUN/postmaster.pid"
cfs_pg_start
grep -q "redo done\|database system was not properly shut down\|database system was interrupted" \
  "$CFS_PG_RUN/postgres.log" || cfs_die "no crash recovery in the log of the restored server"
sums=$(cfs_pg_sql -d bench -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
    (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta),0) FROM pgbench_history),
    (SELECT count(*) FROM pgbench_history)") || cfs_die "cannot read the restored pgbench tables"
IFS='|' read -r sa st sb sd nh <<<"$sums"
[[ $sa == "$st" && $st == "$sb" && $sb == "$sd" ]] || cfs_die "restored: pgbench balance invariant broken: $sums"
((nh > 0)) || cfs_die "restored: no pgbench history (the snapshot missed the load)"
cfs_pg_sql -d bench -c "SELECT id FROM acked" | sort -u >"$WORK/restored.sorted" || cfs_die "cannot read acked"
missing=$(comm -23 "$WORK/acked-before.sorted" "$WORK/restored.sorted" | wc -l)
((missing == 0)) || cfs_die "restored: $missing id(s) acknowledged before the snapshot are missing"
cfs_as_pg "$CFS_PG_BIN/pg_amcheck" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" --install-missing --heapallindexed \
  --parent-check -d bench >"$CFS_PG_RUN/amcheck-restored.log" 2>&1 ||
  { cat "$CFS_PG_RUN/amcheck-restored.log" >&2; cfs_die "restored: pg_amcheck found problems"; }
cfs_pg_stop
cfs_pg_check_offline
cli umount "$REST" >/dev/null
cfs_say "ok: restored snapshot recovered; sums $sa, $nh history rows, all $(wc -l <"$WORK/acked-before.sorted") ids acknowledged before the snapshot present, amcheck and checksums clean"
