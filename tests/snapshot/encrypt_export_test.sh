#!/bin/bash
# DESIGN.md section 2 rules 1, 3 and 5 end to end on real mounts: an
# unencrypted snapshot restored with --kms-key-id becomes an encrypted
# cluster (every block encrypted on the way, progress shown, nothing of the
# plaintext on the backing side); `cluster export` copies the plaintext out
# (progress, refuses a non-empty target, mounted source, missing parent);
# each refusal is one error line, its exit code, and leaves nothing behind;
# a failure in the middle (a tampered chunk) or an interruption (SIGINT)
# leaves no half cluster.
# Exits 77 (skipped) when FUSE can't be used here.
# Usage: encrypt_export_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
require_fuse
CL() { echo "$CIPHERFS_HOME"/regions/*/clusters; }
nothing_left() {  # nothing_left NAME LABEL: no cluster NAME and no staging folder
  CHECKS=$((CHECKS + 1))
  local left
  left=$(ls -A "$(CL)" | grep -e "^$1\$" -e '^\.tmp-' -e '^\.creating-')
  [ -z "$left" ] || fail "$2 left: $left"
}
MARK=CIPHERFS-PLAINTEXT-MARK-7f3a
# last_error_line: after progress lines, stderr ends in one "cipherfs: ...; ..." line.
last_error_line() {
  CHECKS=$((CHECKS + 1))
  local last n
  last=$(printf '%s\n' "$ERR" | tail -1)
  n=$(printf '%s\n' "$ERR" | grep -c '^cipherfs: ')
  [ "$n" -eq 1 ] && [[ "$last" == "cipherfs: "*"; "* ]] || fail "error does not end in one 'cipherfs: what; what to do' line"
}

expect 0 kms create-key --description enc-test
KEY=$(json_get '.KeyMetadata.KeyId')
expect 0 cluster create --id plain
M=$WORK/m; mkdir -p "$M"; MOUNTS+=("$M")
expect 0 mount plain "$M"
mkdir -p "$M/dir/sub"
head -c 3000000 /dev/urandom >"$WORK/rand"
{ echo "$MARK"; cat "$WORK/rand"; } >"$M/dir/big"
echo "small $MARK" >"$M/small"
ln "$M/dir/big" "$M/dir/sub/biglink"
ln -s ../small "$M/dir/lnk"
: >"$M/empty"
chmod 0640 "$M/small"
expect 0 umount "$M"
expect 0 snapshot create --cluster plain --id ps

# --- refusals (rules 1 and 3): one line, exit code, nothing left ---
expect 5 snapshot create --cluster plain --id ps-enc --kms-key-id "$KEY"
one_error_line; contains "rule 3" "$ERR"; contains "unencrypted" "$ERR"
CHECKS=$((CHECKS + 1)); ls -A "$CIPHERFS_HOME"/regions/*/snapshots | grep -q -e ps-enc -e '^\.tmp-' && fail "left a snapshot"
expect 0 cluster create --id enc --storage-encrypted --kms-key-id "$KEY"
expect 0 snapshot create --cluster enc --id es
expect 5 cluster restore-from-snapshot --snapshot es --id es-plain --storage-encrypted false
one_error_line; contains "rule 1" "$ERR"
nothing_left es-plain "restore turning encryption off"
expect 5 cluster modify --id enc --kms-key-id alias/aws/rds
one_error_line; contains "rule 1" "$ERR"
expect 5 cluster modify --id enc --storage-encrypted false
one_error_line
# A key that does not exist: refused by the KMS before any byte is written.
run cluster restore-from-snapshot --snapshot ps --id penc --kms-key-id alias/nosuch
CHECKS=$((CHECKS + 1)); [ "$RC" -ne 0 ] || fail "restore with a missing key succeeded"
one_error_line
nothing_left penc "restore with a missing key"
run cluster restore-from-snapshot --snapshot es --id es2 --kms-key-id alias/nosuch
CHECKS=$((CHECKS + 1)); [ "$RC" -ne 0 ] || fail "re-wrap under a missing key succeeded"
one_error_line
nothing_left es2 "encrypted restore with a missing key"
expect 0 kms create-key --description other
KEY2=$(json_get '.KeyMetadata.KeyId')
expect 0 cluster restore-from-snapshot --snapshot es --id es2 --kms-key-id "$KEY2" --output json
contains "$KEY2" "$(json_get '.DBCluster.KmsKeyId')" "re-wrapped KmsKeyId"

# --- unencrypted snapshot -> encrypted cluster ---
expect 0 cluster restore-from-snapshot --snapshot ps --id penc --kms-key-id "$KEY"
contains "every block encrypted" "$OUT"
contains "encrypt penc: 100%" "$ERR" "progress"
expect 0 cluster describe --id penc --output json
same "$(json_get '.DBClusters[0].StorageEncrypted')" true "StorageEncrypted"
contains "$KEY" "$(json_get '.DBClusters[0].KmsKeyId')" "KmsKeyId"
CHECKS=$((CHECKS + 1))
grep -rqa "$MARK" "$(CL)/penc" && fail "plaintext found on the backing side of the encrypted cluster"
CHECKS=$((CHECKS + 1))
find "$(CL)/penc/tree" -name big -o -name small -o -name dir | grep -q . && fail "plaintext names on the backing side"
expect 0 mount penc "$M"
CHECKS=$((CHECKS + 1)); cmp -s <(echo "$MARK"; cat "$WORK/rand") "$M/dir/big" || fail "big differs after encryption"
CHECKS=$((CHECKS + 1)); [ "$(cat "$M/small")" = "small $MARK" ] || fail "small differs"
CHECKS=$((CHECKS + 1)); [ "$(stat -c %i "$M/dir/big")" = "$(stat -c %i "$M/dir/sub/biglink")" ] || fail "hard link lost"
CHECKS=$((CHECKS + 1)); [ "$(readlink "$M/dir/lnk")" = ../small ] || fail "symlink lost"
CHECKS=$((CHECKS + 1)); [ "$(stat -c %a "$M/small")" = 640 ] || fail "mode lost"
echo "written after restore" >"$M/new"

# --- export ---
expect 10 cluster export --id penc --to "$WORK/out"
one_error_line
CHECKS=$((CHECKS + 1)); [ -e "$WORK/out" ] && fail "export of a mounted cluster made the target"
expect 0 umount "$M"
mkdir "$WORK/full"; echo keep >"$WORK/full/x"
expect 4 cluster export --id penc --to "$WORK/full"
one_error_line
CHECKS=$((CHECKS + 1)); [ "$(ls "$WORK/full")" = x ] || fail "refused export touched the target"
expect 3 cluster export --id penc --to "$WORK/no/such/dir"
one_error_line
mkdir "$WORK/out"
expect 0 cluster export --id penc --to "$WORK/out"
contains "export penc: 100%" "$ERR" "export progress"
CHECKS=$((CHECKS + 1)); cmp -s <(echo "$MARK"; cat "$WORK/rand") "$WORK/out/dir/big" || fail "exported big differs"
CHECKS=$((CHECKS + 1)); [ "$(cat "$WORK/out/new")" = "written after restore" ] || fail "exported new differs"
CHECKS=$((CHECKS + 1)); [ "$(stat -c %i "$WORK/out/dir/big")" = "$(stat -c %i "$WORK/out/dir/sub/biglink")" ] || fail "export: hard link"
CHECKS=$((CHECKS + 1)); [ "$(readlink "$WORK/out/dir/lnk")" = ../small ] || fail "export: symlink"
CHECKS=$((CHECKS + 1)); [ -f "$WORK/out/empty" ] && [ ! -s "$WORK/out/empty" ] || fail "export: empty file"
CHECKS=$((CHECKS + 1)); ls -A "$WORK" | grep -q '^\.tmp-' && fail "export left a staging folder"

# --- a failure in the middle: a tampered chunk of the source snapshot ---
SN=$(echo "$CIPHERFS_HOME"/regions/*/snapshots/ps)
CHUNK=$(find "$SN/objects" -type f -size +1M | head -1)
cp "$CHUNK" "$WORK/chunk"  # a private copy: the cluster's linked chunk stays intact
printf 'X' | dd of="$WORK/chunk" bs=1 seek=$(( $(stat -c %s "$CHUNK") - 5000 )) conv=notrunc 2>/dev/null
mv "$WORK/chunk" "$CHUNK"
run cluster restore-from-snapshot --snapshot ps --id pbad --kms-key-id "$KEY"
CHECKS=$((CHECKS + 1)); [ "$RC" -ne 0 ] || fail "restore of a tampered snapshot succeeded"
last_error_line
nothing_left pbad "failed restore"

# --- interruption: SIGINT while encrypting (if it is still running) ---
expect 0 mount plain "$M"
head -c $((96 * 1048576)) /dev/urandom >"$M/huge"
expect 0 umount "$M"
expect 0 snapshot create --cluster plain --id ps2
"$CIPHERFS" cluster restore-from-snapshot --snapshot ps2 --id pint --kms-key-id "$KEY" >"$WORK/int.out" 2>"$WORK/int.err" &
PID=$!; BG+=("$PID")
for _ in $(seq 1 200); do grep -q 'encrypt pint' "$WORK/int.err" 2>/dev/null && break; sleep 0.02; done
kill -INT "$PID" 2>/dev/null
wait "$PID"; IRC=$?; BG=()
if [ "$IRC" -eq 0 ]; then
  echo "note: the restore finished before SIGINT arrived; checking it is whole"
  expect 0 mount pint "$M"
  CHECKS=$((CHECKS + 1)); [ "$(stat -c %s "$M/huge")" -eq $((96 * 1048576)) ] || fail "restored huge incomplete"
  expect 0 umount "$M"
else
  CHECKS=$((CHECKS + 1)); grep -q "interrupted; nothing was left behind" "$WORK/int.err" || fail "no interruption message: $(cat "$WORK/int.err" | tail -1)"
  nothing_left pint "interrupted restore"
fi
finish
