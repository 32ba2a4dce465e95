#!/bin/bash
# Benchmark (not a ctest test): cross-region `snapshot copy` of a snapshot of
# SIZE_MIB (default 4096) against `cp -a` (and `cp -a` + sync) of the same
# chunk files between the same folders, ROUNDS times (median quoted), then
# incremental replica shipping after 1% of the blocks changed, clustered
# (contiguous) and scattered (random 4 KiB blocks).
# Usage: bench_copy.sh PATH-TO-cipherfs [SIZE_MIB] [ROUNDS]    (root or a FUSE user)
# BASELINE=PATH-TO-other-cipherfs also times that binary's copy in every
# round (before/after figures of one run). The fair baseline is `cp -a` +
# sync: `snapshot copy` reports done only once the copy is durable, `cp -a`
# alone leaves it in the page cache. Both ratios are printed.
set -euo pipefail
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs [SIZE_MIB] [ROUNDS]}
SIZE=${2:-4096}
ROUNDS=${3:-3}
WORK=$(mktemp -d /var/tmp/cipherfs-bench-region.XXXXXX)
export CIPHERFS_HOME=$WORK/home
unset CIPHERFS_REGION
M=$WORK/m; mkdir -p "$M"
cleanup() { mountpoint -q "$M" && "$CIPHERFS" umount "$M" >/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
c() { "$CIPHERFS" "$@"; }
now() { date +%s.%N; }
K1=$(c kms create-key | jq -r .KeyMetadata.Arn)
K2=$(c kms create-key --region dr-1 | jq -r .KeyMetadata.Arn)
c cluster create --id big --storage-encrypted --kms-key-id "$K1" >/dev/null
c mount big "$M" >/dev/null
dd if=/dev/zero of="$M/data" bs=1M count="$SIZE" conv=fsync status=none
c umount "$M" >/dev/null
c snapshot create --cluster big --id s1 >/dev/null
R1=$CIPHERFS_HOME/regions/local-1; R2=$CIPHERFS_HOME/regions/dr-1
mkdir -p "$R2/snapshots"
BYTES=$(du -sb "$R1/snapshots/s1/objects" | cut -f1)
echo "snapshot: $SIZE MiB of file data, $(find "$R1/snapshots/s1/objects" -type f | wc -l) chunk files, $BYTES bytes"
declare -a T_CP T_CPS T_COPY T_BASE
BASELINE=${BASELINE:-}
copy_with() {  # BINARY TARGET: prints the seconds a cross-region copy took
  local t0 t1
  t0=$(now)
  "$1" snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot "$2" --region dr-1 \
    --kms-key-id "$K2" >/dev/null 2>"$WORK/copy.err" || { cat "$WORK/copy.err" >&2; exit 1; }
  t1=$(now)
  "$1" snapshot delete --id "$2" --region dr-1 >/dev/null; sync
  echo "$t1 - $t0" | bc
}
for ((r = 1; r <= ROUNDS; r++)); do
  sync
  t0=$(now); cp -a "$R1/snapshots/s1/objects" "$R2/cp-objects"; t1=$(now); sync; t2=$(now)
  T_CP+=("$(echo "$t1 - $t0" | bc)"); T_CPS+=("$(echo "$t2 - $t0" | bc)")
  rm -rf "$R2/cp-objects"; sync
  T_COPY+=("$(copy_with "$CIPHERFS" c$r)")
  [[ -z $BASELINE ]] || T_BASE+=("$(copy_with "$BASELINE" b$r)")
  echo "round $r: cp -a ${T_CP[-1]} s, cp -a + sync ${T_CPS[-1]} s, snapshot copy ${T_COPY[-1]} s${BASELINE:+, baseline binary ${T_BASE[-1]} s}"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(med "${T_CP[@]}"); mcs=$(med "${T_CPS[@]}"); my=$(med "${T_COPY[@]}")
echo "median: cp -a $mc s ($(echo "$BYTES / 1048576 / $mc" | bc) MiB/s), cp -a + sync $mcs s, snapshot copy $my s ($(echo "$BYTES / 1048576 / $my" | bc) MiB/s)"
echo "ratio copy/cp-a throughput: vs cp -a + sync (fair: both durable) $(echo "scale=2; $mcs / $my" | bc)x; vs cp -a (page cache only) $(echo "scale=2; $mc / $my" | bc)x"
if [[ -n $BASELINE ]]; then
  mb=$(med "${T_BASE[@]}")
  echo "baseline binary: median $mb s: vs cp -a + sync $(echo "scale=2; $mcs / $mb" | bc)x; vs cp -a $(echo "scale=2; $mc / $mb" | bc)x"
fi
[[ -z ${COPY_ONLY:-} ]] || exit 0

# Incremental shipping.
c replica create --source big --source-region local-1 --id rep --region dr-1 --kms-key-id "$K2" | tail -1
c mount big "$M" >/dev/null
BLOCKS=$((SIZE * 256)); CHANGE=$((BLOCKS / 100))
dd if=/dev/urandom of="$M/data" bs=4096 count="$CHANGE" seek=$((BLOCKS / 3)) conv=notrunc,fsync status=none
t0=$(now); out=$(c replica ship --id rep --region dr-1); t1=$(now)
echo "1% of blocks changed, contiguous: $out (wall $(echo "$t1 - $t0" | bc) s)"
python3 - "$M/data" "$BLOCKS" "$CHANGE" <<'PY'
import os, random, sys
fd = os.open(sys.argv[1], os.O_WRONLY); blocks = int(sys.argv[2]); n = int(sys.argv[3])
rnd = random.Random(1)
for b in rnd.sample(range(blocks), n):
    os.pwrite(fd, os.urandom(4096), b * 4096)
os.fsync(fd); os.close(fd)
PY
t0=$(now); out=$(c replica ship --id rep --region dr-1); t1=$(now)
echo "1% of blocks changed, scattered: $out (wall $(echo "$t1 - $t0" | bc) s)"
t0=$(now); out=$(c replica ship --id rep --region dr-1); t1=$(now)
echo "nothing changed: $out (wall $(echo "$t1 - $t0" | bc) s)"
c umount "$M" >/dev/null
