#!/bin/bash
# Snapshot figures of issue 5 (not a test; docs/snapshots.md "Measured"):
# for each size: an encrypted cluster filled with SIZE GiB, a writer doing
# 8 KiB pwrite+fdatasync at random offsets of a 256 MiB file from 3 s
# before a snapshot (taken through the daemon) until 1 s after it returned: the daemon's write pause, the
# writer's longest stall (against its longest stall in the same time without
# a snapshot) and the snapshot's completion time; then fio 8 KiB random
# writes (fdatasync each) right after a snapshot against without one (the
# first-write copy-on-write cost); then restore-from-snapshot time.
# Usage: measure_snapshot.sh PATH-TO-cipherfs [SIZE_GIB...]   (default 1 4)
set -u
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs [SIZE_GIB...]}
shift
SIZES=${*:-1 4}
WORK=$(mktemp -d /tmp/cipherfs-measure.XXXXXX)
export CIPHERFS_HOME=$WORK/home CIPHERFS_BACKUP_CHECK_SECONDS=0
M=$WORK/m
mkdir -p "$M"
trap 'mountpoint -q "$M" && "$CIPHERFS" umount "$M" >/dev/null; rm -rf "$WORK"' EXIT

writer() {  # writer FILE SECONDS OUT [STOPFILE]: max and p99 latency (ms) of 8 KiB pwrite+fdatasync
  python3 - "$1" "$2" "$3" "${4:-}" <<'EOF'
import os, random, sys, time
path, secs, out, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
buf = os.urandom(8192)
lat = []
open(out + ".ready", "w").close()
end = time.monotonic() + secs
while (time.monotonic() < end) if not stop else not os.path.exists(stop):
    off = random.randrange(0, size // 8192) * 8192
    t = time.monotonic()
    os.pwrite(fd, buf, off)
    os.fdatasync(fd)
    lat.append(time.monotonic() - t)
lat.sort()
with open(out, "w") as f:
    f.write("%.1f %.1f %d\n" % (lat[-1] * 1000, lat[int(len(lat) * 0.99)] * 1000, len(lat)))
EOF
}

fio_iops() {  # fio_iops FILE: IOPS of 8 KiB random writes, fdatasync each, 8 s
  fio --name=w --filename="$1" --rw=randwrite --bs=8k --ioengine=psync --fdatasync=1 --runtime=8 --time_based \
    --size=256m --output-format=json 2>/dev/null | jq -r '.jobs[0].write.iops | floor'
}

for gib in $SIZES; do
  id=m$gib
  "$CIPHERFS" cluster create --id "$id" --storage-encrypted >/dev/null
  "$CIPHERFS" mount "$id" "$M" >/dev/null
  t0=$(date +%s.%N)
  dd if=/dev/zero of="$M/fill" bs=1M count=$((gib * 1024)) conv=fsync status=none
  dd if=/dev/urandom of="$M/hot" bs=1M count=256 conv=fsync status=none
  echo "== $gib GiB: filled in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
  writer "$M/hot" 6 "$WORK/base" ; echo "   writer without snapshot: max/p99 ms, ops: $(cat "$WORK/base")"
  rm -f "$WORK/stop"
  rm -f "$WORK/with.ready"
  writer "$M/hot" 0 "$WORK/with" "$WORK/stop" & W=$!
  while [ ! -e "$WORK/with.ready" ]; do sleep 0.1; done  # python starts slowly on a loaded host
  sleep 3
  ts=$(date +%s%N)
  "$CIPHERFS" snapshot create --cluster "$id" --id "$id-s1" --output json >"$WORK/s.json"
  te=$(date +%s%N)
  sleep 1
  touch "$WORK/stop"
  wait $W
  echo "   snapshot: daemon pause $(( $(jq -r '.DBClusterSnapshot.WritePauseMicroseconds' "$WORK/s.json") / 1000 )) ms," \
       "command $(( (te - ts) / 1000000 )) ms; writer with snapshot: max/p99 ms, ops: $(cat "$WORK/with")"
  "$CIPHERFS" snapshot create --cluster "$id" --id "$id-s2" >/dev/null
  after=$(fio_iops "$M/hot")
  "$CIPHERFS" snapshot delete --id "$id-s2" >/dev/null
  "$CIPHERFS" snapshot delete --id "$id-s1" >/dev/null
  without=$(fio_iops "$M/hot")
  echo "   fio 8k randwrite+fdatasync on 256 MiB: $after IOPS right after a snapshot, $without IOPS without"
  "$CIPHERFS" snapshot create --cluster "$id" --id "$id-s3" >/dev/null
  "$CIPHERFS" umount "$M" >/dev/null
  ts=$(date +%s%N)
  "$CIPHERFS" cluster restore-from-snapshot --snapshot "$id-s3" --id "$id-r" >/dev/null
  te=$(date +%s%N)
  echo "   restore-from-snapshot: $(( (te - ts) / 1000000 )) ms"
  "$CIPHERFS" cluster delete --id "$id-r" --skip-final-snapshot >/dev/null
  "$CIPHERFS" snapshot delete --id "$id-s3" >/dev/null
  "$CIPHERFS" cluster delete --id "$id" --skip-final-snapshot >/dev/null
done
