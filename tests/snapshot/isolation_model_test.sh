#!/bin/bash
# Snapshot isolation model test (issue 5): several writer processes run
# random operations (create, one-page writes, truncate, rename, unlink; each
# durable before the next, isolation_model.py) on a mounted encrypted
# cluster while snapshots are taken through the daemon at random points.
# Each snapshot, mounted read-only, must equal the model at its instant (for
# each writer: the model after c or c+1 operations, c being the writer's
# counter in the snapshot); the live volume must equal the model at the end.
# The snapshots are then deleted in random order and the chunks counted: no
# chunk file still shared, no file's data lost (a chunk directory for every
# file with data) and none leaked (no more chunk directories than files).
# Seed: CIPHERFS_SEED (printed). CIPHERFS_LONG=1: more snapshots, longer.
# Exits 77 (skipped) when FUSE can't be used here.
# Usage: isolation_model_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
MODEL="python3 $(dirname "$0")/isolation_model.py"
use_seed
NW=3 NS=4
[ "${CIPHERFS_LONG:-0}" = 1 ] && NS=12
export CIPHERFS_BACKUP_CHECK_SECONDS=0
before_cleanup() {
  touch "$WORK/stop" 2>/dev/null
}
require_fuse
expect 0 cluster create --id iso --storage-encrypted
M=$WORK/live R=$WORK/ro
mkdir -p "$M" "$R"; MOUNTS+=("$M" "$R")
expect 0 mount iso "$M"
for w in $(seq 1 $NW); do
  $MODEL write "$M" "$w" "$SEED" "$WORK/stop" >"$WORK/w$w.ops" 2>"$WORK/w$w.err" &
  BG+=($!)
done
# Snapshots only once every writer has done a few operations.
for _ in $(seq 1 300); do
  n=0
  for w in $(seq 1 $NW); do [ "$(cat "$M/w$w.count" 2>/dev/null || echo 0)" -ge 3 ] 2>/dev/null && n=$((n + 1)); done
  [ "$n" -eq "$NW" ] && break
  sleep 0.1
done
for s in $(seq 1 $NS); do
  sleep "0.$((RANDOM % 9 + 1))"
  expect 0 snapshot create --cluster iso --id iso-s$s
done
sleep 0.5
touch "$WORK/stop"
for i in "${!BG[@]}"; do
  CHECKS=$((CHECKS + 1))
  wait "${BG[$i]}" || fail "writer $((i + 1)) failed: $(tail -3 "$WORK/w$((i + 1)).err")"
done
BG=()
echo "operations per writer: $(cat "$WORK"/w*.ops | tr '\n' ' ')"

check_model() {  # check_model DIR LABEL
  for w in $(seq 1 $NW); do
    CHECKS=$((CHECKS + 1))
    msg=$($MODEL check "$1" "$w" "$SEED") || fail "$2: $msg"
  done
}
for s in $(seq 1 $NS); do
  expect 0 mount --snapshot iso-s$s "$R"
  check_model "$R" "snapshot iso-s$s (counters $(cat "$R"/w*.count 2>/dev/null | tr '\n' ' '))"
  expect 0 umount "$R"
done
check_model "$M" "live volume"
for w in $(seq 1 $NW); do
  CHECKS=$((CHECKS + 1))
  [ "$(cat "$M/w$w.count")" -eq "$(cat "$WORK/w$w.ops")" ] || fail "live w$w: counter differs from the writer's count"
done
FILES=0 NONZERO=$NW  # the counter files hold data too
for w in $(seq 1 $NW); do
  read -r f n <<<"$($MODEL stats "$M" "$w" "$SEED")"
  FILES=$((FILES + f)) NONZERO=$((NONZERO + n))
done
FILES=$((FILES + NW))
expect 0 umount "$M"

ORDER=$(for s in $(seq 1 $NS); do echo "$RANDOM iso-s$s"; done | sort -n | cut -d' ' -f2)
for s in $ORDER; do expect 0 snapshot delete --id "$s"; done
CL=$(echo "$CIPHERFS_HOME"/regions/*/clusters/iso)
CHECKS=$((CHECKS + 1))
SHARED=$(find "$CL/objects" -type f -links +1 | wc -l)
[ "$SHARED" -eq 0 ] || fail "$SHARED chunk files still shared after deleting every snapshot"
DIRS=$(find "$CL/objects" -mindepth 2 -maxdepth 2 -type d ! -empty | wc -l)
echo "chunk directories: $DIRS for $FILES files ($NONZERO with data)"
CHECKS=$((CHECKS + 1))
[ "$DIRS" -ge "$NONZERO" ] || fail "$DIRS chunk directories for $NONZERO files with data: data lost"
CHECKS=$((CHECKS + 1))
[ "$DIRS" -le "$FILES" ] || fail "$DIRS chunk directories for $FILES files: chunks of deleted files leaked"
CHECKS=$((CHECKS + 1))
LEFT=$(ls -A "$CIPHERFS_HOME"/regions/*/snapshots | wc -l)
[ "$LEFT" -eq 0 ] || fail "snapshots folder holds leftovers"
expect 0 mount iso "$M"
check_model "$M" "live volume after the deletes"
expect 0 umount "$M"
finish
