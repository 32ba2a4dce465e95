#!/bin/bash
# End to end: regions as folders (one configured elsewhere with regions.<name>.path)
# and `cipherfs snapshot copy` (DESIGN rule 4, docs/regions.md):
# - an encrypted cross-region copy without a key is refused and writes nothing in the target region;
# - a key of the wrong region, and a key given for an unencrypted snapshot, are refused;
# - a chunk altered in transit (test hook) is detected by its SHA-256, no snapshot is made;
# - an interrupted copy (test hook) leaves no snapshot and resumes when rerun;
# - the copy's data key is wrapped under the target region's key (both audit logs record the calls),
#   the chunks are ciphertext, not hard links of the source;
# - a restore in the target region mounts and its data matches the source;
# - same-region copy under another key, unencrypted copy without key, --abort.
# Exits 77 (skipped) when FUSE can't be used here (after the unmounted checks).
# Usage: copy_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
FAR=$WORK/far/dr-1   # the dr-1 region lives outside home
mkdir -p "$CIPHERFS_HOME"
cat >"$CIPHERFS_HOME/config.yaml" <<YAML
default_region: local-1
regions:
  dr-1:
    path: $FAR
YAML
nothing_in() {  # nothing_in DIR LABEL: DIR absent or empty
  CHECKS=$((CHECKS + 1))
  [ -z "$(ls -A "$1" 2>/dev/null)" ] || fail "$2: $(ls -A "$1")"
}

expect 0 kms create-key --description src
K1=$(json_get '.KeyMetadata.Arn')
expect 0 kms create-key --description src-other
K1B=$(json_get '.KeyMetadata.Arn')
expect 0 kms create-key --description dr --region dr-1
K2=$(json_get '.KeyMetadata.Arn')
contains ":dr-1:" "$K2" "dr-1 key ARN"
CHECKS=$((CHECKS + 1)); [ -d "$FAR/kms" ] || fail "region dr-1 KMS is not under its configured path"
CHECKS=$((CHECKS + 1)); [ -e "$CIPHERFS_HOME/regions/dr-1" ] && fail "region dr-1 made under home despite its path"
# CIPHERFS_REGION selects the region too.
CIPHERFS_REGION=dr-1 expect 0 kms list-keys
contains "$K2" "$OUT" "CIPHERFS_REGION=dr-1 list-keys"

expect 0 cluster create --id orders --storage-encrypted --kms-key-id "$K1"
expect 0 cluster create --id plain
DATA=$WORK/data.bin
head -c 3000000 /dev/urandom >"$DATA"
if fuse_ok; then
  M=$WORK/m; mkdir -p "$M"; MOUNTS+=("$M")
  expect 0 mount orders "$M"
  cp "$DATA" "$M/data.bin"; mkdir "$M/dir"; echo "the secret marker text" >"$M/dir/note"; sync
  expect 0 umount "$M"
  expect 0 mount plain "$M"
  cp "$DATA" "$M/data.bin"; sync
  expect 0 umount "$M"
fi
expect 0 snapshot create --cluster orders --id s1
expect 0 snapshot create --cluster plain --id p1

# Rule 4: encrypted to another region without a key: refused, nothing written in dr-1.
expect 5 snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot c1 --region dr-1
one_error_line; contains "rule 4" "$ERR"
nothing_in "$FAR/snapshots" "refused copy wrote in dr-1"
# A key of the source region is not a key of dr-1.
expect 20 snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot c1 --region dr-1 --kms-key-id "$K1"
nothing_in "$FAR/snapshots/c1" "copy with a foreign key left a snapshot"
# An unencrypted snapshot copies unencrypted: no key may be given.
expect 5 snapshot copy --source-snapshot p1 --source-region local-1 --target-snapshot pc1 --region dr-1 --kms-key-id "$K2"
one_error_line
expect 0 snapshot copy --source-snapshot p1 --source-region local-1 --target-snapshot pc1 --region dr-1 --output json
same "$(json_get '.DBClusterSnapshot.StorageEncrypted')" false "unencrypted copy"

# A chunk altered in transit is detected; no snapshot, staging kept.
CIPHERFS_TEST_COPY_CORRUPT=1 expect 7 snapshot copy --source-snapshot s1 --source-region local-1 \
  --target-snapshot c1 --region dr-1 --kms-key-id "$K2"
contains "SHA-256" "$ERR"
CHECKS=$((CHECKS + 1)); [ -e "$FAR/snapshots/c1" ] && fail "corrupted copy left a snapshot"
CHECKS=$((CHECKS + 1)); [ -d "$FAR/snapshots/.copy-c1" ] || fail "no resumable staging after a failed copy"
# Interrupted after one chunk: no snapshot; the rerun resumes and completes.
CIPHERFS_TEST_COPY_STOP_AFTER=1 expect 10 snapshot copy --source-snapshot s1 --source-region local-1 \
  --target-snapshot c1 --region dr-1 --kms-key-id "$K2"
contains "interrupted" "$ERR"
CHECKS=$((CHECKS + 1)); [ -e "$FAR/snapshots/c1" ] && fail "interrupted copy left a snapshot"
expect 0 snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot c1 --region dr-1 --kms-key-id "$K2"
contains "resumed" "$OUT" "rerun"
contains "chunks" "$ERR" "progress"
CHECKS=$((CHECKS + 1)); [ -e "$FAR/snapshots/.copy-c1" ] && fail "staging left after a successful copy"
expect 4 snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot c1 --region dr-1 --kms-key-id "$K2"
expect 0 snapshot describe --id c1 --region dr-1 --output json
same "$(json_get '.DBClusterSnapshots[0].KmsKeyId')" "$K2" "copy's key"
same "$(json_get '.DBClusterSnapshots[0].Region')" dr-1 "copy's region"
same "$(json_get '.DBClusterSnapshots[0].StorageEncrypted')" true "copy encrypted"
contains ":local-1:" "$(json_get '.DBClusterSnapshots[0].SourceDBClusterSnapshotArn')" "copy's source snapshot"
same "$(json_get '.DBClusterSnapshots[0].Lineage[-1].Relation')" copied-from "copy's lineage"
# Both audit logs record the key calls for the copy.
contains "Decrypt" "$(grep -h ':cluster:orders' "$CIPHERFS_HOME/regions/local-1/kms/audit.log")" "source audit log"
contains "Encrypt" "$(grep -h ':cluster-snapshot:c1' "$FAR/kms/audit.log")" "target audit log"
# The chunks were copied (not linked) and are ciphertext.
LINKED=$(find "$FAR/snapshots/c1/objects" -type f -links +1 | wc -l)
same "$LINKED" 0 "hard-linked chunks in the cross-region copy"
SRC_N=$(find "$CIPHERFS_HOME/regions/local-1/snapshots/s1/objects" -type f | wc -l)
DST_N=$(find "$FAR/snapshots/c1/objects" -type f | wc -l)
same "$DST_N" "$SRC_N" "chunk count of the copy"
CHECKS=$((CHECKS + 1)); grep -rqa "secret marker" "$FAR" && fail "plaintext found in region dr-1"

# Same region, another key: re-wrapped, chunks shared.
expect 0 snapshot copy --source-snapshot s1 --target-snapshot s1-b --kms-key-id "$K1B" --output json
same "$(json_get '.DBClusterSnapshot.KmsKeyId')" "$K1B" "same-region copy key"
# --abort removes an interrupted copy.
CIPHERFS_TEST_COPY_STOP_AFTER=1 expect 10 snapshot copy --source-snapshot s1 --source-region local-1 \
  --target-snapshot c2 --region dr-1 --kms-key-id "$K2"
expect 0 snapshot copy --abort --target-snapshot c2 --region dr-1
CHECKS=$((CHECKS + 1)); [ -e "$FAR/snapshots/.copy-c2" ] && fail "--abort left the staging folder"
expect 3 snapshot copy --abort --target-snapshot c2 --region dr-1

# Restore in dr-1 and compare the data.
expect 0 cluster restore-from-snapshot --snapshot c1 --id orders-dr --region dr-1
expect 0 cluster restore-from-snapshot --snapshot pc1 --id plain-dr --region dr-1
if ! fuse_ok; then
  echo "SKIP: FUSE is not usable here; $CHECKS checks before the mount part, $FAILS failures"
  [ "$FAILS" -eq 0 ] && exit 77 || exit 1
fi
expect 0 mount orders-dr "$M" --region dr-1
CHECKS=$((CHECKS + 1)); cmp -s "$DATA" "$M/data.bin" || fail "restored data in dr-1 differs"
contains "secret marker" "$(cat "$M/dir/note")" "restored note"
expect 0 umount "$M"
expect 0 mount --snapshot s1-b "$M"
CHECKS=$((CHECKS + 1)); cmp -s "$DATA" "$M/data.bin" || fail "same-region copy data differs"
expect 0 umount "$M"
expect 0 mount plain-dr "$M" --region dr-1
CHECKS=$((CHECKS + 1)); cmp -s "$DATA" "$M/data.bin" || fail "unencrypted copy data differs"
expect 0 umount "$M"
finish
