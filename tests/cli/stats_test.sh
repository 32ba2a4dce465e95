#!/usr/bin/env bash
# Tests `cipherfs stats MOUNTPOINT [--output json]` on a real mount: writes
# and reads through the mount move the daemon's counters (bytes, blocks
# encrypted / decrypted), nothing fails authentication, the text output
# lists the counters, and a directory no daemon serves is refused clearly.
#
#   bash tests/cli/stats_test.sh PATH-TO-cipherfs
# Exit 0: all passed; 1: failures; 77: skipped (not root, or no /dev/fuse).
set -u
CIPHERFS=$(realpath "${1:?usage: $0 PATH-TO-cipherfs}")
if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]]; then
  echo "SKIP: needs root and /dev/fuse"
  exit 77
fi
WORK=$(mktemp -d /tmp/cipherfs-stats-test.XXXXXX)
MNT=$WORK/mnt
export CIPHERFS_HOME=$WORK/home
FAILS=0 CHECKS=0
mounted() { awk -v m="$MNT" '$2 == m {f = 1} END {exit !f}' /proc/self/mounts; }
cleanup() {
  if mounted; then "$CIPHERFS" umount "$MNT" >/dev/null 2>&1 || fusermount3 -uz "$MNT" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
expect() { # LABEL CONDITION-CMD...
  local label=$1
  shift
  CHECKS=$((CHECKS + 1))
  "$@" || fail "$label"
}
counter() { # NAME: from a fresh `stats --output json`
  "$CIPHERFS" stats "$MNT" --output json | python3 -c "import json,sys; print(json.load(sys.stdin)['Counters']['$1'])"
}
ge() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2)); }

mkdir -p "$MNT"
"$CIPHERFS" cluster create --id st --storage-encrypted >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
"$CIPHERFS" mount st "$MNT" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }

expect "fresh mount: bytes_written is 0" [ "$(counter bytes_written)" = 0 ]
dd if=/dev/urandom of="$MNT/f" bs=64K count=16 conv=fsync status=none
written=$(counter bytes_written)
expect "bytes_written >= 1 MiB after writing 1 MiB (got $written)" ge "$written" 1048576
enc=$(counter blocks_encrypted)
expect "blocks_encrypted >= 256 after 1 MiB (got $enc)" ge "$enc" 256
expect "no auth failures" [ "$(counter auth_failures)" = 0 ]
json=$("$CIPHERFS" stats "$MNT" --output json)
expect "json names the cluster" python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['Cluster']=='st' and d['Mountpoint']=='$MNT'" "$json"
# A log: one 8 KiB write then fdatasync, 200 times. From the second cycle
# on, each write gets a sync ahead; an fdatasync that arrives while that
# flush runs is answered by the flushing thread (a lost answer hangs here).
python3 - "$MNT/wal" <<'PY' || fail "log writes with fdatasync"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.pwrite(fd, bytes(1 << 20), 0)  # a pre-zeroed segment, as PostgreSQL makes them
os.fdatasync(fd)
for i in range(200):
    os.pwrite(fd, bytes([i % 256]) * 8192, (i % 16) * 8192)
    os.fdatasync(fd)
for i in range(184, 200):
    assert os.pread(fd, 8192, (i % 16) * 8192) == bytes([i % 256]) * 8192, i
os.close(fd)
PY
ahead=$(counter syncs_ahead) joined=$(counter syncs_joined)
expect "syncs_ahead >= 190 after 200 lone log writes (got $ahead)" ge "$ahead" 190
expect "some fdatasyncs joined a sync ahead (got $joined of $ahead)" ge "$joined" 1
# The segment was written whole first (a full fdatasync); the log writes
# then overwrite written blocks, which ext4 (without data=journal) commits
# by a write-back and a disk flush; any other backing filesystem never does.
in_place=$(counter chunk_syncs_in_place) full=$(counter chunk_syncs_full)
expect "chunk_syncs_full counts the first syncs (got $full)" ge "$full" 1
if [[ $(stat -f -c %T "$WORK") == ext2/ext3 ]] && ! findmnt -n -o OPTIONS -T "$WORK" | grep -q 'data=journal'; then
  expect "ext4 backing: most log syncs in place (got $in_place, full $full)" ge "$in_place" 150
else
  echo "note: backing is $(stat -f -c %T "$WORK"), not ext4: expecting no in-place syncs"
  expect "no in-place syncs off ext4 (got $in_place)" [ "$in_place" = 0 ]
fi
text=$("$CIPHERFS" stats "$MNT")
for name in bytes_read bytes_written blocks_encrypted blocks_decrypted auth_failures cow_breaks torn_blocks_repaired dirty_log_commits syncs_ahead syncs_joined chunk_syncs_in_place chunk_syncs_full; do
  expect "text output lists $name" grep -q "^$name " <<<"$text"
done

# A fresh daemon (and page cache) must decrypt what it reads.
"$CIPHERFS" umount "$MNT" >/dev/null || fail "umount"
"$CIPHERFS" mount st "$MNT" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
cat "$MNT/f" >/dev/null
read_bytes=$(counter bytes_read)
expect "bytes_read >= 1 MiB after reading 1 MiB (got $read_bytes)" ge "$read_bytes" 1048576
dec=$(counter blocks_decrypted)
expect "blocks_decrypted >= 256 (got $dec)" ge "$dec" 256
"$CIPHERFS" umount "$MNT" >/dev/null || fail "umount"

CHECKS=$((CHECKS + 1))
if "$CIPHERFS" stats "$WORK" >/dev/null 2>"$WORK/err"; then
  fail "stats on a directory no daemon serves succeeded"
elif ! grep -q "no cipherfs daemon" "$WORK/err"; then
  fail "unclear error for an unserved directory: $(cat "$WORK/err")"
fi
echo "stats tests: $CHECKS checks, $FAILS failed"
((FAILS == 0))
