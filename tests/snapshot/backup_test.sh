#!/bin/bash
# Automated backups end to end: cluster create/modify backup options and
# their refusals (nothing left behind), `cipherfs backup run` at simulated
# times (--at): first backup at once, one per window, catch-up after a
# missed window, expiry past the retention period, retention 0 on an
# unencrypted cluster; cluster delete's final snapshot / skip and
# --delete-automated-backups; then the mount daemon taking an automated
# snapshot by itself (CIPHERFS_BACKUP_CHECK_SECONDS=1), mounted read-only.
# The daemon part exits 77 (skipped) when FUSE can't be used here.
# Usage: backup_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
snaps() { ls "$CIPHERFS_HOME"/regions/*/snapshots 2>/dev/null | sort | tr '\n' ' '; }
absent() {  # absent PATH-GLOB LABEL
  CHECKS=$((CHECKS + 1))
  compgen -G "$1" >/dev/null && fail "$2 left $1"
}

# --- options at creation and their refusals ---
expect 5 cluster create --id enc --storage-encrypted --backup-retention-period 0
one_error_line; contains "rule 7" "$ERR"
absent "$CIPHERFS_HOME/regions/*/clusters/enc" "refused create"
expect 2 cluster create --id enc --storage-encrypted --backup-retention-period 36
expect 2 cluster create --id enc --storage-encrypted --preferred-backup-window 03:00-03:10
one_error_line
expect 2 cluster create --id enc --storage-encrypted --preferred-backup-window 3am
absent "$CIPHERFS_HOME/regions/*/clusters/enc" "refused create"
expect 0 cluster create --id enc --storage-encrypted --backup-retention-period 2 --preferred-backup-window 03:00-03:30
expect 0 cluster create --id plain --backup-retention-period 0
expect 0 cluster create --id other

# --- backup run at simulated times ---
expect 0 backup run --cluster enc --at 2026-01-01T12:00:00Z
contains "created automated snapshot auto-enc-2026-01-01-12-00" "$OUT" "first backup"
expect 0 snapshot describe --id auto-enc-2026-01-01-12-00 --output json
same "$(json_get '.DBClusterSnapshots[0].SnapshotType')" automated "SnapshotType"
same "$(json_get '.DBClusterSnapshots[0].SnapshotCreateTime')" 2026-01-01T12:00:00Z "SnapshotCreateTime"
same "$(json_get '.DBClusterSnapshots[0].StorageEncrypted')" true "automated snapshot encrypted"
expect 0 backup run --cluster enc --at 2026-01-01T18:00:00Z
contains "nothing due" "$OUT"
expect 0 backup run --cluster enc --at 2026-01-02T03:05:00Z
contains "created automated snapshot auto-enc-2026-01-02-03-05" "$OUT" "window backup"
expect 0 backup run --cluster enc --at 2026-01-02T03:20:00Z
contains "nothing due" "$OUT" "second run in the same window"
# The window of Jan 3 is missed; a run at 13:00 catches up and expires Jan 1.
expect 0 backup run --cluster enc --at 2026-01-03T13:00:00Z --output json
same "$(json_get '.BackupRun[0].AutomatedSnapshotCreated')" auto-enc-2026-01-03-13-00 "catch-up backup"
same "$(json_get '.BackupRun[0].AutomatedSnapshotsExpired')" '["auto-enc-2026-01-01-12-00"]' "expired"
absent "$CIPHERFS_HOME/regions/*/snapshots/auto-enc-2026-01-01-12-00" "expiry"
# All clusters at once; retention 0 (plain) takes none.
expect 0 backup run --at 2026-01-03T13:10:00Z --output json
same "$(json_get '[.BackupRun[] | select(.DBClusterIdentifier=="plain") | .AutomatedSnapshotCreated][0]')" "" "plain: none"
same "$(json_get '[.BackupRun[] | select(.DBClusterIdentifier=="other") | .AutomatedSnapshotCreated][0]')" \
  auto-other-2026-01-03-13-10 "other: first backup"
expect 3 backup run --cluster nosuch

# --- cluster modify ---
expect 5 cluster modify --id enc --backup-retention-period 0
one_error_line
expect 5 cluster modify --id enc --kms-key-id alias/aws/rds
one_error_line; contains "rule 1" "$ERR"
expect 5 cluster modify --id enc --storage-encrypted false
one_error_line; contains "rule 1" "$ERR"
expect 5 cluster modify --id plain --storage-encrypted true
one_error_line
expect 2 cluster modify --id enc --preferred-backup-window 25:00-25:30
expect 0 cluster modify --id enc --backup-retention-period 7 --preferred-backup-window 23:45-00:15 --output json
same "$(json_get '.DBCluster.BackupRetentionPeriod')" 7 "BackupRetentionPeriod"
same "$(json_get '.DBCluster.PreferredBackupWindow')" 23:45-00:15 "PreferredBackupWindow"
expect 0 cluster describe --id enc --output json
same "$(json_get '.DBClusters[0].BackupRetentionPeriod')" 7 "describe: BackupRetentionPeriod"
same "$(json_get '.DBClusters[0].PreferredBackupWindow')" 23:45-00:15 "describe: PreferredBackupWindow"
expect 0 cluster describe --id enc
contains "PreferredBackupWindow 23:45-00:15 UTC" "$OUT"
expect 0 backup run --cluster enc --at 2026-01-03T23:50:00Z
contains "created automated snapshot auto-enc-2026-01-03-23-50" "$OUT" "new window"
# other off: its automated backups expire at the next run.
expect 0 cluster modify --id other --backup-retention-period 0
expect 0 backup run --cluster other --at 2026-01-03T13:20:00Z
contains "deleted expired automated snapshot auto-other-2026-01-03-13-10" "$OUT"

# --- cluster delete ---
expect 2 cluster delete --id enc
expect 2 cluster delete --id enc --skip-final-snapshot --final-snapshot-identifier enc-final
expect 0 backup run --cluster other --at 2026-01-04T10:00:00Z  # retention 0: nothing
expect 0 cluster modify --id other --backup-retention-period 1
expect 0 backup run --cluster other --at 2026-01-04T10:00:00Z
expect 0 cluster delete --id other --skip-final-snapshot
contains "1 automated backup" "$OUT"
absent "$CIPHERFS_HOME/regions/*/snapshots/auto-other-*" "delete"
expect 0 cluster delete --id enc --final-snapshot-identifier enc-final --delete-automated-backups false
contains "3 automated backup(s) kept, each expiring 7 day(s)" "$OUT"
expect 0 snapshot describe --id enc-final --output json
same "$(json_get '.DBClusterSnapshots[0].SnapshotType')" manual "final snapshot type"
CHECKS=$((CHECKS + 1))
[ "$(ls "$CIPHERFS_HOME"/regions/*/snapshots | grep -c '^auto-enc-')" -eq 3 ] || fail "kept automated backups: $(snaps)"
# Kept ones expire on the retention the cluster had (7 days), like Aurora's
# retained automated backups; the final (manual) snapshot never does.
expect 0 backup run --at 2026-01-09T04:00:00Z --output json
same "$(json_get '.RetainedAutomatedSnapshotsExpired')" '["auto-enc-2026-01-02-03-05"]' "retained backup expiry"
expect 0 backup run --at 2026-01-11T00:00:00Z
contains "deleted expired retained automated snapshot auto-enc-2026-01-03-23-50" "$OUT"
CHECKS=$((CHECKS + 1))
[ "$(ls "$CIPHERFS_HOME"/regions/*/snapshots | grep -c '^auto-enc-')" -eq 0 ] || fail "retained backups left: $(snaps)"
expect 0 snapshot describe --id enc-final

# --- the mount daemon takes automated snapshots by itself ---
if ! command -v fusermount3 >/dev/null || [ ! -c /dev/fuse ] || ! [ -r /dev/fuse -a -w /dev/fuse ]; then
  echo "SKIP: FUSE is not usable here; $CHECKS checks before the mount part, $FAILS failures"
  [ "$FAILS" -eq 0 ] && exit 77 || exit 1
fi
expect 0 cluster create --id live --storage-encrypted
M=$WORK/live; mkdir -p "$M"; MOUNTS+=("$M")
CIPHERFS_BACKUP_CHECK_SECONDS=1 expect 0 mount live "$M"
yes live-data | head -c 200000 >"$M/f"
sync "$M/f" 2>/dev/null || sync
AUTO=""
for _ in $(seq 1 100); do
  AUTO=$(ls "$CIPHERFS_HOME"/regions/*/snapshots | grep '^auto-live-' | head -1)
  [ -n "$AUTO" ] && break
  sleep 0.2
done
CHECKS=$((CHECKS + 1))
[ -n "$AUTO" ] || fail "the mount daemon took no automated snapshot within 20 s"
sleep 2
CHECKS=$((CHECKS + 1))
[ "$(ls "$CIPHERFS_HOME"/regions/*/snapshots | grep -c '^auto-live-')" -eq 1 ] || fail "daemon took more than one"
expect 0 umount "$M"
if [ -n "$AUTO" ]; then
  R=$WORK/ro; mkdir -p "$R"; MOUNTS+=("$R")
  expect 0 mount --snapshot "$AUTO" "$R"
  CHECKS=$((CHECKS + 1))
  [ ! -e "$R/f" ] || cmp -s -n "$(stat -c %s "$R/f")" "$R/f" <(yes live-data) || fail "automated snapshot content"
  expect 0 umount "$R"
fi
finish
