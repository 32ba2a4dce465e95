# shellcheck shell=bash
# Helpers shared by scripts/*: paths, logging, cleanup stack, mounting a
# fresh cipherfs cluster (via the cipherfs command, or tests/tools' devmount
# while the command does not exist yet), waiting for mounts, unmounting.
# CFS_MOUNT_IMPL=bindfs mounts a FUSE passthrough instead: a self-test of
# the harness (kill-test, conformance, fsx-mount), never of cipherfs.
# Source it; it does not change shell options.

CFS_ROOT=${CFS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CFS_BUILD=${CFS_BUILD:-$CFS_ROOT/build}

cfs_say() { printf '[%s] %s\n' "${CFS_TAG:-cipherfs}" "$*" >&2; }
cfs_die() {
  cfs_say "error: $*"
  exit 1
}

# --- cleanup stack: commands run in reverse order on exit (cfs_cleanup) ---
CFS_CLEANUPS=()
cfs_on_exit() { CFS_CLEANUPS+=("$*"); }
cfs_cleanup() {
  local i
  for ((i = ${#CFS_CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${CFS_CLEANUPS[i]}" || true
  done
  CFS_CLEANUPS=()
}

# --- binaries ---
cfs_cli() { # path of the cipherfs command, empty if not built
  local c
  for c in "$CFS_BUILD/src/cli/cipherfs" "$CFS_BUILD/cipherfs"; do
    [[ -x $c ]] && { printf '%s\n' "$c"; return 0; }
  done
  return 1
}
cfs_tool() { # NAME: a test tool from build/tests (fsx, devmount)
  local c=$CFS_BUILD/tests/$1
  [[ -x $c ]] && { printf '%s\n' "$c"; return 0; }
  return 1
}

# --- mounts ---
cfs_wait_mounted() { # MNT PID [TIMEOUT_S]
  local mnt=$1 pid=$2 t=${3:-60} i
  for ((i = 0; i < t * 10; i++)); do
    mountpoint -q "$mnt" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      cfs_say "daemon $pid exited before $mnt was mounted"
      return 1
    fi
    sleep 0.1
  done
  cfs_say "timeout waiting for $mnt to be mounted"
  return 1
}

# cfs_umount MNT: unmounts (retrying while busy; lazily as a last resort),
# then waits for the daemon recorded in MNT's pid file to exit.
cfs_umount() {
  local mnt=$1 i pidf pid
  pidf=$(cfs_pidfile "$mnt")
  for ((i = 0; i < 20; i++)); do
    mountpoint -q "$mnt" || break
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
    mountpoint -q "$mnt" || break
    sleep 0.5
  done
  if mountpoint -q "$mnt"; then
    cfs_say "$mnt busy: lazy unmount"
    fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
  if [[ -f $pidf ]]; then
    pid=$(cat "$pidf")
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      cfs_say "daemon $pid still running after unmount: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
  fi
}

cfs_pidfile() { printf '%s.pid' "${1%/}"; }

# cfs_mount_fresh WORKDIR MNT [encrypted|plain] [EXTRA MOUNT ARGS...]
# Creates a fresh cluster under WORKDIR (its own CIPHERFS_HOME) and mounts it
# on MNT with a daemon in the foreground of a background job (so its PID is
# known: MNT.pid; log: MNT.log). Exports CIPHERFS_HOME for later commands.
cfs_mount_fresh() {
  local work=$1 mnt=$2 kind=${3:-encrypted}
  shift 3 || shift $#
  mkdir -p "$work" "$mnt"
  local cli
  if [[ ${CFS_MOUNT_IMPL:-} == bindfs ]]; then
    # Harness self-test only: a FUSE passthrough stands in for cipherfs.
    mkdir -p "$work/vol"
    cfs_start_daemon "$mnt" bindfs -f -o allow_other "$work/vol" "$mnt"
  elif cli=$(cfs_cli); then
    export CIPHERFS_HOME=$work/home
    if [[ ! -d $CIPHERFS_HOME/regions ]] || ! "$cli" cluster describe --id t >/dev/null 2>&1; then
      local -a enc=()
      if [[ $kind == encrypted ]]; then enc=(--storage-encrypted); fi
      "$cli" cluster create --id t "${enc[@]}" >"$work/create.log" 2>&1 ||
        { cat "$work/create.log" >&2; return 1; }
    fi
    cfs_start_daemon "$mnt" "$cli" mount t "$mnt" -f -o allow_other "$@"
  elif cli=$(cfs_tool devmount); then
    # The developer tool: `create` prints the data key (hex), which `serve`
    # takes from CIPHERFS_DEVKEY. A test-only key file, mode 0600.
    if [[ ! -d $work/vol ]]; then
      local -a unenc=()
      if [[ $kind != encrypted ]]; then unenc=(--unencrypted); fi
      mkdir -p "$work/vol"
      (umask 077 && "$cli" create "$work/vol" "${unenc[@]}" >"$work/devkey" 2>"$work/create.log") ||
        { cat "$work/create.log" >&2; return 1; }
    fi
    CIPHERFS_DEVKEY=$(tail -1 "$work/devkey")
    export CIPHERFS_DEVKEY
    cfs_start_daemon "$mnt" "$cli" serve "$work/vol" "$mnt" -f --allow-other "$@"
  else
    cfs_say "no way to mount: neither the cipherfs command nor tests/tools devmount is built"
    return 1
  fi
}

# cfs_remount WORKDIR MNT [encrypted|plain]: mounts the existing cluster again.
cfs_remount() { cfs_mount_fresh "$@"; }

# cfs_start_daemon MNT CMD...: runs a foreground FUSE daemon in its own
# session, records its PID in MNT.pid, waits until MNT is mounted.
cfs_start_daemon() {
  local mnt=$1
  shift
  setsid "$@" </dev/null >"${mnt%/}.log" 2>&1 &
  local pid=$!
  disown "$pid" 2>/dev/null || true
  echo "$pid" >"$(cfs_pidfile "$mnt")"
  if ! cfs_wait_mounted "$mnt" "$pid" 60; then
    tail -20 "${mnt%/}.log" >&2
    return 1
  fi
}

# cfs_backing_dir WORKDIR: the volume directory behind a cfs_mount_fresh mount.
cfs_backing_dir() {
  local work=$1 d
  if [[ -d $work/vol ]]; then
    printf '%s\n' "$work/vol"
    return 0
  fi
  for d in "$work"/home/regions/*/clusters/t; do
    [[ -d $d ]] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

# cfs_sweep_mounts ROOT: unmounts every mount below ROOT (lazily), for traps.
cfs_sweep_mounts() {
  local root=$1 m
  [[ -n $root ]] || return 0
  while read -r m; do
    [[ $m == "$root"/* ]] || continue
    fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk '{print $2}' /proc/mounts | sort -r)
}
