#!/usr/bin/env bash
# Tests boot-time mounting: scripts/install into a temp DESTDIR, the mount
# helper called exactly as mount(8) calls it (options mount adds are
# dropped, home= and allow_other honoured, unknown options refused), a
# remount right after umount(8) (the previous daemon may still be exiting),
# `cipherfs umount` waiting for the daemon, then
# really `mount -t fuse.cipherfs` and an fstab line (mount --fstab), with
# the helper installed as /sbin/mount.fuse.cipherfs for the test (removed
# afterwards unless it was there before), and the systemd unit's ordering.
#
#   bash tests/packaging/mount_helper_test.sh PATH-TO-cipherfs
# Exit 0: all passed; 1: failures; 77: skipped (not root, or no /dev/fuse).
set -u
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs}
CIPHERFS=$(realpath "$CIPHERFS")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]]; then
  echo "SKIP: needs root and /dev/fuse"
  exit 77
fi
WORK=$(mktemp -d /tmp/cipherfs-helper-test.XXXXXX)
chmod 755 "$WORK"
MNT=$WORK/mnt
SBIN_HELPER=/sbin/mount.fuse.cipherfs
installed_sbin=0
FAILS=0 CHECKS=0
cleanup() {
  if awk -v m="$MNT" '$2 == m {f = 1} END {exit !f}' /proc/self/mounts; then
    "$CIPHERFS" umount "$MNT" >/dev/null 2>&1 || fusermount3 -uz "$MNT" 2>/dev/null || true
  fi
  if ((installed_sbin)); then rm -f "$SBIN_HELPER"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { # LABEL CMD...
  local label=$1
  shift
  CHECKS=$((CHECKS + 1))
  "$@" || fail "$label"
}
mounted_cipherfs() { awk -v m="$MNT" '$2 == m && $3 == "fuse.cipherfs" {f = 1} END {exit !f}' /proc/self/mounts; }
# A mount works: a file round-trips, and another user can enter (allow_other).
mount_works() {
  mounted_cipherfs || { echo "not a fuse.cipherfs mount: $MNT" >&2; return 1; }
  echo "hello $1" >"$MNT/f.$1" && [[ $(cat "$MNT/f.$1") == "hello $1" ]] || return 1
  chmod 755 "$MNT" && runuser -u nobody -- ls "$MNT" >/dev/null
}
# cipherfs umount returns once the daemon has exited: the cluster's writer
# lock is free at once.
lock_free() { flock -n "$(echo "$WORK"/home/regions/*/clusters/hx/mount.lock)" true; }
unmount() {
  CIPHERFS_HOME=$WORK/home "$CIPHERFS" umount "$MNT" >/dev/null || return 1
  ! mounted_cipherfs && lock_free
}
# umount(8) (what systemd and fstab use) does not wait for the daemon: the
# next mount must wait for the exiting daemon, not fail "already mounted".
kernel_unmount() { umount "$MNT" && ! mounted_cipherfs; }

export CIPHERFS_HOME=$WORK/home
mkdir -p "$MNT"
"$CIPHERFS" cluster create --id hx --storage-encrypted >/dev/null 2>"$WORK/create.err" ||
  { cat "$WORK/create.err" >&2; echo "FAIL: cluster create"; exit 1; }

# --- install into a DESTDIR
DEST=$WORK/dest
check "scripts/install --destdir" "$ROOT/scripts/install" --build "$(dirname "$CIPHERFS")" --destdir "$DEST" \
  --prefix /usr --sbindir /sbin --unitdir /lib/systemd/system
HELPER=$DEST/sbin/mount.fuse.cipherfs
UNIT=$DEST/lib/systemd/system/cipherfs@.service
check "helper installed executable" test -x "$HELPER"
check "binary installed" test -x "$DEST/usr/bin/cipherfs"
check "unit installed" test -f "$UNIT"
check "unit runs the installed binary" grep -q '^ExecStart=/usr/bin/cipherfs mount %i ' "$UNIT"
check "unit ordered before postgresql and mariadb" \
  grep -Eq '^Before=.*postgresql\.service.*mariadb\.service' "$UNIT"
check "unit forks once mounted" grep -q '^Type=forking' "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
  # Only the unit's own syntax (the binary path is in the DESTDIR).
  if systemd-analyze verify "$UNIT" 2>&1 | grep -Ei 'unknown (key|section)|invalid|failed to parse' >&2; then
    fail "systemd-analyze verify complains about the unit"
  fi
fi

# --- the helper, called as mount(8) calls it, from a bare environment
unset CIPHERFS_HOME
check "helper mounts with mount(8)'s options" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CIPHERFS_BIN="$CIPHERFS" \
  "$HELPER" hx "$MNT" -o rw,allow_other,_netdev,nofail,x-systemd.automount,defaults,home="$WORK/home"
check "mount via helper works (allow_other)" mount_works helper
check "umount(8) after helper" kernel_unmount
for round in 1 2 3; do  # at once: the previous daemon may still be exiting
  check "remount $round right after umount(8)" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CIPHERFS_BIN="$CIPHERFS" \
    "$HELPER" hx "$MNT" -o allow_other,home="$WORK/home"
  check "umount(8) $round" kernel_unmount
done
CHECKS=$((CHECKS + 1))
if env -i PATH=/usr/bin:/bin CIPHERFS_BIN="$CIPHERFS" "$HELPER" hx "$MNT" -o bogus,home="$WORK/home" 2>"$WORK/bogus.err"; then
  fail "an unknown option was accepted"
  unmount
elif ! grep -q 'unknown option bogus' "$WORK/bogus.err"; then
  fail "unknown option: unclear message: $(cat "$WORK/bogus.err")"
fi
CHECKS=$((CHECKS + 1))
if env -i PATH=/usr/bin:/bin CIPHERFS_BIN="$CIPHERFS" "$HELPER" nosuch "$MNT" -o home="$WORK/home" 2>/dev/null; then
  fail "an unknown cluster mounted"
  unmount
fi

# --- real mount(8): mount -t fuse.cipherfs, and an fstab line
if [[ -e $SBIN_HELPER ]] && ! cmp -s "$SBIN_HELPER" "$ROOT/packaging/mount.fuse.cipherfs"; then
  echo "note: $SBIN_HELPER exists and differs from packaging/: real mount(8) part skipped"
else
  if [[ ! -e $SBIN_HELPER ]]; then
    install -m 0755 "$ROOT/packaging/mount.fuse.cipherfs" "$SBIN_HELPER"
    installed_sbin=1
  fi
  export CIPHERFS_BIN=$CIPHERFS
  check "mount -t fuse.cipherfs" mount -t fuse.cipherfs hx "$MNT" -o allow_other,home="$WORK/home"
  check "mount -t works" mount_works mount
  check "umount after mount -t" unmount
  echo "hx $MNT fuse.cipherfs allow_other,_netdev,nofail,home=$WORK/home 0 0" >"$WORK/fstab"
  check "mount --fstab (an fstab line)" mount --fstab "$WORK/fstab" "$MNT"
  check "fstab mount works" mount_works fstab
  check "files survive remounts" grep -q 'hello helper' "$MNT/f.helper"
  check "umount after fstab" unmount
fi

echo "mount helper tests: $CHECKS checks, $FAILS failed"
((FAILS == 0))
