#!/bin/bash
# PostgreSQL across regions (issue 6): a live snapshot of an encrypted
# cluster running PostgreSQL is copied to region dr-1 under a dr-1 key,
# restored there, and PostgreSQL recovers on it with a marker row committed
# before the snapshot; then a cross-region replica follows pgbench (shipped
# three times during the load), is promoted, and PostgreSQL recovers on it
# with every id acknowledged before the last shipment present and the
# pgbench balance invariant intact. Root only (PostgreSQL runs as postgres on
# allow_other mounts). Exits 77 (skipped) without root, FUSE or PostgreSQL 15.
# MODE short (default, ctest region_pg): 2 clients for 6 s, one shipment
# during the load; long (ctest region_pg_long, only with CIPHERFS_LONG=1):
# 4 clients for 15 s, two shipments 3 s apart.
# Usage: pg_region_test.sh PATH-TO-cipherfs [short|long]
set -uo pipefail
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs [short|long]}
MODE=${2:-short}
root=$(cd "$(dirname "$0")/../.." && pwd)
export CFS_TAG=pg-region-$MODE
source "$root/scripts/lib/common.sh"
source "$root/scripts/lib/pg.sh"
case $MODE in
  short) CLIENTS=2 SECONDS_LOAD=6 SHIPS=1 ;;
  long)
    [[ ${CIPHERFS_LONG:-0} == 1 ]] || { echo "SKIP: long test, run with CIPHERFS_LONG=1"; exit 77; }
    CLIENTS=4 SECONDS_LOAD=15 SHIPS=2 ;;
  *) echo "usage: $0 PATH-TO-cipherfs [short|long]" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
[[ -x $CFS_PG_BIN/initdb ]] && id postgres >/dev/null 2>&1 || { echo "SKIP: no PostgreSQL 15"; exit 77; }
command -v fusermount3 >/dev/null && [[ -c /dev/fuse ]] || { echo "SKIP: no FUSE"; exit 77; }
WORK=$(mktemp -d /tmp/cipherfs-pg-region.XXXXXX)
chmod 755 "$WORK"
export CIPHERFS_HOME=$WORK/home
unset CIPHERFS_REGION
trap 'cfs_cleanup' EXIT
cfs_on_exit "rm -rf '$WORK'"
cfs() { "$CIPHERFS" "$@"; }
json() { jq -r "$1"; }
umount_quiet() { cfs umount "$1" >/dev/null 2>&1 || fusermount3 -u "$1" 2>/dev/null || true; }

K1=$(cfs kms create-key --description pg-src | json .KeyMetadata.Arn) || cfs_die "create-key"
K2=$(cfs kms create-key --description pg-dr --region dr-1 | json .KeyMetadata.Arn) || cfs_die "create-key dr-1"
cfs cluster create --id pgsrc --storage-encrypted --kms-key-id "$K1" >/dev/null || cfs_die "cluster create"
M=$WORK/src; mkdir -p "$M"
cfs mount pgsrc "$M" -o allow_other >/dev/null || cfs_die "mount pgsrc"
cfs_on_exit "umount_quiet '$M'"
chmod 755 "$M"
cfs_pg_setup "$M/pgdata" "$WORK/run-src"
cfs_on_exit "cfs_pg_stop_or_kill"
# initdb without its fsyncs (-N): nothing here depends on initdb's own
# durability (the live snapshot flushes the mount), and it saves ~40 s.
install -d -o postgres -g postgres -m 700 "$CFS_PG_DATA"
cfs_as_pg "$CFS_PG_BIN/initdb" -N -D "$CFS_PG_DATA" --data-checksums --auth=trust -U postgres \
  >"$CFS_PG_RUN/initdb.log" 2>&1 || { tail -30 "$CFS_PG_RUN/initdb.log" >&2; cfs_die "initdb failed"; }
cfs_pg_start
cfs_pg_load_init 1
cfs_pg_sql -d bench -c "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('before-snapshot')" || cfs_die "marker"

# --- copy of a live snapshot to dr-1, restore, PostgreSQL recovers ---
cfs snapshot create --cluster pgsrc --id pg1 >/dev/null || cfs_die "live snapshot"
cfs snapshot copy --source-snapshot pg1 --source-region local-1 --target-snapshot pg1-dr --region dr-1 \
  --kms-key-id "$K2" >"$WORK/copy.out" 2>"$WORK/copy.err" || { cat "$WORK/copy.err" >&2; cfs_die "snapshot copy"; }
cfs cluster restore-from-snapshot --snapshot pg1-dr --id pgdr --region dr-1 >/dev/null || cfs_die "restore in dr-1"
D=$WORK/dr; mkdir -p "$D"
cfs mount pgdr "$D" --region dr-1 -o allow_other >/dev/null || cfs_die "mount pgdr"
cfs_on_exit "umount_quiet '$D'"
SRC_PG=("$CFS_PG_DATA" "$CFS_PG_RUN" "$CFS_PG_PORT")
stop_src() { CFS_PG_DATA=${SRC_PG[0]} CFS_PG_RUN=${SRC_PG[1]} CFS_PG_PORT=${SRC_PG[2]} cfs_pg_stop_or_kill; }
cfs_on_exit "stop_src"
cfs_pg_setup "$D/pgdata" "$WORK/run-dr"
# The copy is of a running server: its postmaster.pid names a process of
# this host (same-host test only; another host would not have it).
rm -f "$D/pgdata/postmaster.pid"
cfs_pg_start
cfs_on_exit "cfs_pg_stop_or_kill"
[[ $(cfs_pg_sql -d bench -c "SELECT v FROM marker") == before-snapshot ]] || cfs_die "marker row missing in dr-1"
sums=$(cfs_pg_sql -d bench -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)")
[[ $sums == t ]] || cfs_die "pgbench invariant broken in the dr-1 restore"
cfs_say "copy: PostgreSQL recovered in dr-1 from the copied snapshot, marker present"
cfs_pg_stop immediate
umount_quiet "$D"

# --- replica following pgbench, promoted ---
CFS_PG_DATA=${SRC_PG[0]} CFS_PG_RUN=${SRC_PG[1]} CFS_PG_PORT=${SRC_PG[2]}
L=$WORK/load; mkdir -p "$L"
cfs_pg_load_start "$CLIENTS" "$SECONDS_LOAD" "$L" 1
sleep 1
cfs replica create --source pgsrc --source-region local-1 --id pgrep --region dr-1 --kms-key-id "$K2" \
  >"$WORK/rep.out" 2>&1 || { cat "$WORK/rep.out" >&2; cfs_die "replica create"; }
for ((i = 1; i <= SHIPS; i++)); do
  sleep 2
  cp "$L/ack.1" "$L/acked-before-ship" 2>/dev/null || : >"$L/acked-before-ship"
  cfs replica ship --id pgrep --region dr-1 >>"$WORK/rep.out" 2>&1 || { cat "$WORK/rep.out" >&2; cfs_die "replica ship $i"; }
done
cfs_pg_load_stop "$L" 1
cat "$WORK/rep.out" >&2
cfs replica describe --id pgrep --region dr-1 >&2
cfs replica promote --id pgrep --region dr-1 >/dev/null || cfs_die "promote"
cfs_pg_stop immediate
umount_quiet "$M"
P=$WORK/promoted; mkdir -p "$P"
cfs mount pgrep "$P" --region dr-1 -o allow_other >/dev/null || cfs_die "mount promoted"
cfs_on_exit "umount_quiet '$P'"
cfs_pg_setup "$P/pgdata" "$WORK/run-p"
rm -f "$P/pgdata/postmaster.pid"
cfs_pg_start
cfs_on_exit "cfs_pg_stop_or_kill"
awk '$1 == "ACK" {print $2}' "$L/acked-before-ship" | sort -u >"$L/want"
cfs_pg_sql -d bench -c "SELECT id FROM acked" | sort -u >"$L/have"
missing=$(comm -23 "$L/want" "$L/have" | wc -l)
want=$(wc -l <"$L/want")
((want > 0)) || cfs_die "no id was acknowledged before the last shipment (load broken)"
((missing == 0)) || cfs_die "$missing of $want ids acknowledged before the last shipment are missing on the promoted replica"
sums=$(cfs_pg_sql -d bench -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
  AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta),0) FROM pgbench_history)")
[[ $sums == t ]] || cfs_die "pgbench invariant broken on the promoted replica"
cfs_say "replica: promoted, PostgreSQL recovered, all $want ids acknowledged before the last shipment present"
cfs_pg_stop
echo "PASS"
