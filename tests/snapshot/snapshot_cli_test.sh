#!/bin/bash
# End-to-end test of snapshots, restore, clone and delete with the cipherfs
# command: unmounted and mounted clusters (real FUSE mounts), DESIGN rule
# refusals (one error line, exit code, nothing left behind), and the
# snapshot isolation model: several writers fill files while snapshots are
# taken through the daemon; every snapshot, mounted read-only, must show each
# writer's files as a contiguous run, every file finished before the request
# complete, and the ones in flight holding their content or zeros page by
# page (the state a power cut at that instant leaves). At the end
# the live volume equals the model, and after deleting the snapshots in
# random order every live chunk has one link again and nothing is left.
# Exits 77 (skipped) when FUSE can't be used here. Seed: CIPHERFS_SEED.
# Usage: snapshot_cli_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
use_seed
REGION_DIR() { echo "$CIPHERFS_HOME/regions/$1"; }

# --- unmounted cluster ---
expect 0 kms create-key --description snap-test
KEY_ID=$(json_get '.KeyMetadata.KeyId')
expect 0 kms create-key --description other
KEY2=$(json_get '.KeyMetadata.KeyId')
expect 0 cluster create --id orders --storage-encrypted --kms-key-id "$KEY_ID"
expect 0 cluster create --id plain
expect 0 snapshot create --cluster orders --id s0
expect 0 snapshot describe --id s0 --output json
same "$(json_get '.DBClusterSnapshots[0].SnapshotType')" manual "SnapshotType"
same "$(json_get '.DBClusterSnapshots[0].DBClusterIdentifier')" orders "DBClusterIdentifier"
same "$(json_get '.DBClusterSnapshots[0].StorageEncrypted')" true "StorageEncrypted"
contains "$KEY_ID" "$(json_get '.DBClusterSnapshots[0].KmsKeyId')" "KmsKeyId"
# Rule 3: no key for a snapshot; nothing is left behind.
expect 5 snapshot create --cluster orders --id s-key --kms-key-id "$KEY2"
one_error_line; contains "rule 3" "$ERR"
CHECKS=$((CHECKS + 1)); [ -e "$CIPHERFS_HOME"/regions/*/snapshots/s-key ] && fail "refused snapshot left a folder"
expect 4 snapshot create --cluster orders --id s0
expect 3 snapshot create --cluster nosuch --id s9
expect 0 snapshot list
contains s0 "$OUT"
# Restore with another key: the data key is re-wrapped.
expect 0 cluster restore-from-snapshot --snapshot s0 --id restored2 --kms-key-id "$KEY2" --output json
contains "$KEY2" "$(json_get '.DBCluster.KmsKeyId')" "restored KmsKeyId"
expect 0 snapshot create --cluster plain --id p0
# Rule 5: an unencrypted snapshot restored with a key becomes an encrypted
# cluster (encrypt_export_test.sh checks the contents and the refusals).
expect 0 cluster restore-from-snapshot --snapshot p0 --id plain-enc --kms-key-id "$KEY2"
contains "every block encrypted" "$OUT"
expect 0 cluster delete --id plain-enc --skip-final-snapshot
expect 0 cluster restore-from-snapshot --snapshot p0 --id plain-copy
expect 2 cluster delete --id plain-copy
expect 0 cluster delete --id plain-copy --skip-final-snapshot
expect 0 cluster delete --id restored2 --final-snapshot-id restored2-final
expect 0 snapshot describe --id restored2-final

if ! command -v fusermount3 >/dev/null || [ ! -c /dev/fuse ] || ! [ -r /dev/fuse -a -w /dev/fuse ]; then
  echo "SKIP: FUSE is not usable here; $CHECKS checks before the mount part, $FAILS failures"
  [ "$FAILS" -eq 0 ] && exit 77 || exit 1
fi

# --- mounted cluster: snapshots through the daemon while writers run ---
M=$WORK/live; mkdir -p "$M"; MOUNTS+=("$M")
expect 0 mount orders "$M"
NW=3
writer() {  # writer W: files w<W>-<i>, each 300 KiB of a pattern, in order
  local w=$1 i=1
  mkdir -p "$M/w$w"
  while [ -e "$WORK/run" ]; do
    yes "w$w-$i" | head -c 307200 >"$M/w$w/f$i" || break
    echo "$i" >"$WORK/w$w.done.tmp" && mv "$WORK/w$w.done.tmp" "$WORK/w$w.done"
    i=$((i + 1))
  done
  echo $((i - 1)) >"$WORK/w$w.count"
}
touch "$WORK/run"
for w in $(seq 1 $NW); do writer "$w" & BG+=($!); done
NS=4
for s in $(seq 1 $NS); do
  sleep "0.$((RANDOM % 9 + 1))"
  # Files the writers finished before the request must be whole in it.
  for w in $(seq 1 $NW); do cat "$WORK/w$w.done" 2>/dev/null || echo 0; done >"$WORK/live$s.floor"
  expect 0 snapshot create --cluster orders --id live$s --output json
  echo "snapshot live$s: write pause $(json_get '.DBClusterSnapshot.WritePauseMicroseconds') us"
done
rm -f "$WORK/run"
wait "${BG[@]}"; BG=()

# check_tree DIR LABEL [FLOOR-FILE]: each writer's files f1..fk present
# in order. Without a floor file every file but the last is complete and the
# last is a prefix of its content. With one (line w: how many files writer w
# had finished when the snapshot was asked for), those files are complete;
# later ones were being written at the instant, so each 4 KiB page holds its
# content or, not yet written back by the kernel, zeros (as after a power
# cut): never other bytes.
check_tree() {
  local dir=$1 label=$2 floor=${3:-}
  local out
  out=$(python3 - "$dir" "$NW" "$floor" <<'PY'
import os, sys
d, nw, floor = sys.argv[1], int(sys.argv[2]), sys.argv[3]
floors = [int(x) for x in open(floor).read().split()] if floor else None
checks, fails = 0, []
for w in range(1, nw + 1):
    wd = f"{d}/w{w}"
    if not os.path.isdir(wd):
        if floors and floors[w - 1] > 0: fails.append(f"w{w} missing, {floors[w - 1]} files were done")
        continue
    n = len(os.listdir(wd))
    if floors and n < floors[w - 1]: fails.append(f"w{w}: {n} files, {floors[w - 1]} were done")
    for i in range(1, n + 1):
        checks += 1
        f = f"{wd}/f{i}"
        if not os.path.isfile(f):
            fails.append(f"w{w}/f{i} missing but {n} files present"); continue
        data = open(f, "rb").read()
        want = (f"w{w}-{i}\n".encode() * 307200)[:307200]
        whole = (i <= floors[w - 1]) if floors else (i < n)
        if whole and len(data) != 307200:
            fails.append(f"w{w}/f{i} incomplete ({len(data)})"); continue
        if len(data) > 307200: fails.append(f"w{w}/f{i} too long ({len(data)})"); continue
        if floors and not whole:
            bad = [p for p in range(0, len(data), 4096)
                   if data[p:p + 4096] != want[p:p + 4096] and data[p:p + 4096].count(0) != len(data[p:p + 4096])]
            if bad: fails.append(f"w{w}/f{i} page at {bad[0]} is neither its content nor zeros")
        elif data != want[:len(data)]:
            fails.append(f"w{w}/f{i} is not its pattern")
print(checks)
for x in fails: print(x)
PY
)
  CHECKS=$((CHECKS + $(head -n1 <<<"$out")))
  while IFS= read -r line; do [ -n "$line" ] && fail "$label: $line"; done < <(tail -n +2 <<<"$out")
}
R=$WORK/ro; mkdir -p "$R"; MOUNTS+=("$R")
for s in $(seq 1 $NS); do
  expect 0 mount --snapshot live$s "$R"
  check_tree "$R" "snapshot live$s" "$WORK/live$s.floor"
  CHECKS=$((CHECKS + 1)); touch "$R/x" 2>/dev/null && fail "snapshot live$s mount is writable"
  expect 0 umount "$R"
done
check_tree "$M" "live volume"
for w in $(seq 1 $NW); do
  CHECKS=$((CHECKS + 1))
  [ "$(ls "$M/w$w" | wc -l)" -eq "$(cat "$WORK/w$w.count")" ] || fail "live w$w: file count differs from the writer's"
done
# Clone of the mounted cluster and delete refused while mounted.
expect 0 cluster clone --source orders --id orders-clone
expect 10 cluster delete --id orders --skip-final-snapshot
one_error_line
expect 0 umount "$M"
C=$WORK/clone; mkdir -p "$C"; MOUNTS+=("$C")
expect 0 mount orders-clone "$C"
check_tree "$C" "clone"
echo overwrite >"$C/w1/f1"
expect 0 umount "$C"
expect 0 mount orders "$M"
check_tree "$M" "live after clone write"
expect 0 umount "$M"
expect 0 cluster delete --id orders-clone --skip-final-snapshot

# Delete the snapshots in random order: no chunk leaked or lost.
ORDER=$(for s in $(seq 1 $NS); do echo "$RANDOM live$s"; done | sort -n | cut -d' ' -f2)
for s in $ORDER; do expect 0 snapshot delete --id "$s"; done
expect 0 snapshot delete --id s0
CL=$(echo "$CIPHERFS_HOME"/regions/*/clusters/orders)
CHECKS=$((CHECKS + 1))
SHARED=$(find "$CL/objects" -type f -links +1 | wc -l)
[ "$SHARED" -eq 0 ] || fail "$SHARED chunk files still shared after deleting every snapshot and clone"
CHECKS=$((CHECKS + 1))
LEFT=$(ls -A "$CIPHERFS_HOME"/regions/*/snapshots | grep -v -e '^p0$' -e '^restored2-final$' | wc -l)
[ "$LEFT" -eq 0 ] || fail "snapshots folder holds leftovers"
expect 0 mount orders "$M"
check_tree "$M" "live after deletes"
expect 0 umount "$M"

echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" -eq 0 ]
