#!/bin/bash
# End to end: replicas (DESIGN rules 6 and 8, docs/regions.md).
# - encryption-mismatch refusals (one error line, exit 5, nothing made);
# - same region: a read-only replica mount beside the writer; while the writer rewrites a file in
#   place (fsync after each round, a version stamp in every 4 KiB block), the replica's reads
#   never return a torn or unauthenticated block, and every round is visible within the stated bound;
# - another region: replica create (data key re-wrapped under the target region's key), writes on
#   the source, `replica ship` sends only the changed chunks, describe shows source and lag,
#   promote gives a writable cluster whose data is the source's at the last shipment;
#   `replica ship --follow` logs a failed shipment and ships again once it can.
# Exits 77 (skipped) when FUSE can't be used here. Seed: CIPHERFS_SEED.
# Usage: replica_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
use_seed
require_fuse
expect 0 kms create-key --description src
K1=$(json_get '.KeyMetadata.Arn')
expect 0 kms create-key --description dr --region dr-1
K2=$(json_get '.KeyMetadata.Arn')
expect 0 cluster create --id orders --storage-encrypted --kms-key-id "$K1"
expect 0 cluster create --id plain
W=$WORK/w; R=$WORK/r; mkdir -p "$W" "$R"; MOUNTS+=("$W" "$R")

# Rule 6 refusals.
expect 5 replica create --source plain --id p-enc --storage-encrypted --mountpoint "$R"
one_error_line; contains "rule 6" "$ERR"
expect 5 replica create --source plain --source-region local-1 --id p-enc --region dr-1 --kms-key-id "$K2"
one_error_line; contains "rule 6" "$ERR"
expect 5 replica create --source orders --source-region local-1 --id o-plain --region dr-1
one_error_line; contains "rule 6" "$ERR"
CHECKS=$((CHECKS + 1)); [ -n "$(ls -A "$CIPHERFS_HOME/regions/dr-1/replicas" 2>/dev/null)" ] && fail "refused replica left state"

# --- same region: reader beside the writer ---
expect 0 mount orders "$W"
BLOCKS=64
stamp() {  # stamp ROUND: BLOCKS blocks of 4 KiB, each "round N block B" padded
  local n=$1 b
  for ((b = 0; b < BLOCKS; b++)); do printf 'round %08d block %04d %4072s' "$n" "$b" ""; done
}
stamp 0 >"$W/f"; sync "$W/f"
expect 0 replica create --source orders --id orders-ro --mountpoint "$R"
CHECKS=$((CHECKS + 1)); touch "$R/x" 2>/dev/null && fail "replica mount is writable"
ROUNDS=60
( for ((n = 1; n <= ROUNDS; n++)); do
    stamp $n | dd of="$W/f" bs=64K conv=notrunc,fsync status=none
    echo $n >"$WORK/committed"
  done ) &
WPID=$!; BG+=($WPID)
BAD=0; READS=0
while kill -0 $WPID 2>/dev/null; do
  if ! cp "$R/f" "$WORK/read" 2>"$WORK/rerr"; then BAD=$((BAD + 1)); cat "$WORK/rerr" >&2; continue; fi
  READS=$((READS + 1))
  # Every block must be a whole, authentic stamp (rounds may differ between blocks: no atomicity across blocks).
  n=$(grep -ao 'round [0-9]\{8\} block [0-9]\{4\}' "$WORK/read" | wc -l)
  [ "$n" -eq "$BLOCKS" ] || { BAD=$((BAD + 1)); echo "read $READS: $n whole blocks" >&2; }
done
wait $WPID
same "$BAD" 0 "torn or failed replica reads (of $READS)"
CHECKS=$((CHECKS + 1)); [ "$READS" -gt 3 ] || fail "only $READS reads during the writes"
sleep 1.2   # the stated bound: 1 s after the writer's fsync
stamp $ROUNDS >"$WORK/want"
CHECKS=$((CHECKS + 1)); cmp -s "$WORK/want" "$R/f" || fail "replica does not show the last committed round after 1 s"
echo "new file" >"$W/g"; sync "$W/g"; sleep 1.2
same "$(cat "$R/g" 2>/dev/null)" "new file" "new file on the replica after 1 s"
expect 0 replica describe --id orders-ro --output json
same "$(json_get '.DBClusters[0].Mounted')" true "same-region replica mounted"
contains ":cluster:orders" "$(json_get '.DBClusters[0].ReplicationSourceIdentifier')" "replica source"
expect 0 umount "$R"

# --- cross region: create, ship increments, promote ---
head -c 8000000 /dev/urandom >"$W/big"; sync "$W/big"
head -c 100000 /dev/urandom >"$W/gone"; sync "$W/gone"
expect 0 replica create --source orders --source-region local-1 --id orders-dr --region dr-1 --kms-key-id "$K2"
contains "shipped replica" "$OUT"
cp "$W/big" "$WORK/big.v1"
# Change one 4 KiB block: the next shipment sends one chunk.
printf 'changed!' | dd of="$W/big" bs=1 seek=4096 conv=notrunc,fsync status=none
cp "$W/big" "$WORK/big.v2"
expect 0 replica ship --id orders-dr --region dr-1
contains "shipped replica orders-dr: 1 chunk(s) changed" "$OUT" "incremental shipment"
expect 0 replica describe --id orders-dr --region dr-1 --output json
same "$(json_get '.DBClusters[0].KmsKeyId')" "$K2" "replica key"
same "$(json_get '.DBClusters[0].Generation')" 2 "replica generation"
CHECKS=$((CHECKS + 1)); [ "$(json_get '.DBClusters[0].ReplicaLagSeconds')" -lt 60 ] || fail "replica lag"
# A third shipment refreshes the first one's source snapshot and rebuilds
# the image the second replaced, in place: a changed chunk, a file gone, a
# new file in a new directory.
printf 'again' | dd of="$W/big" bs=1 seek=3200000 conv=notrunc,fsync status=none
rm "$W/gone"; mkdir "$W/d"; echo "born in shipment 3" >"$W/d/new"; sync "$W/d/new"
cp "$W/big" "$WORK/big.v2"
expect 0 replica ship --id orders-dr --region dr-1
contains "shipped replica orders-dr: 2 chunk(s) changed" "$OUT" "third shipment"
contains "1 removed" "$OUT" "third shipment removes the deleted file's chunk"
# --follow outlives a failed shipment: with the replica's descriptor moved
# away, shipments fail (logged); once it is back the loop ships again.
DESC=$CIPHERFS_HOME/regions/dr-1/replicas/orders-dr.desc
mv "$DESC" "$DESC.away"
"$CIPHERFS" replica ship --id orders-dr --region dr-1 --follow --interval-ms 200 >"$WORK/follow.out" 2>"$WORK/follow.err" &
FOLLOW=$!
for ((i = 0; i < 50; i++)); do grep -q "shipment failed" "$WORK/follow.err" && break; sleep 0.1; done
mv "$DESC.away" "$DESC"
for ((i = 0; i < 100; i++)); do grep -q "shipped replica" "$WORK/follow.out" && break; sleep 0.1; done
kill "$FOLLOW"; wait "$FOLLOW" 2>/dev/null
contains "shipment failed" "$(cat "$WORK/follow.err")" "--follow stderr"
contains "shipped replica orders-dr: 0 chunk(s) changed" "$(cat "$WORK/follow.out")" "--follow after a failed shipment"
# A write after the last shipment is not in the promoted image.
printf 'after' | dd of="$W/big" bs=1 seek=8192 conv=notrunc,fsync status=none
expect 0 replica promote --id orders-dr --region dr-1
expect 0 cluster describe --id orders-dr --region dr-1 --output json
same "$(json_get '.DBClusters[0].KmsKeyId')" "$K2" "promoted cluster key"
same "$(json_get '[.DBClusters[0].Lineage[].Relation] | join(",")')" "replica-of,promoted-from-replica" "promoted lineage"
P=$WORK/p; mkdir -p "$P"; MOUNTS+=("$P")
expect 0 mount orders-dr "$P" --region dr-1
CHECKS=$((CHECKS + 1)); cmp -s "$WORK/big.v2" "$P/big" || fail "promoted data is not the last shipped state"
same "$(cat "$P/d/new" 2>&1)" "born in shipment 3" "promoted new file"
CHECKS=$((CHECKS + 1)); [ ! -e "$P/gone" ] || fail "a file deleted before the last shipment is in the promoted image"
CHECKS=$((CHECKS + 1)); [ ! -e "$CIPHERFS_HOME/regions/dr-1/replicas/orders-dr.ship" ] || fail "promote left the previous image"
expect 0 snapshot list --output json
CHECKS=$((CHECKS + 1)); [[ $OUT != *replica-orders-dr* ]] || fail "promote left the shipment snapshots"
echo writable >"$P/new" || fail "promoted cluster not writable"
expect 0 umount "$P"
expect 0 umount "$W"
finish
