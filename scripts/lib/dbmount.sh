# shellcheck shell=bash
# Mounting a cipherfs cluster for a database, the three ways the database
# scripts (scripts/maria-run, scripts/db-crash-loop) need:
#   root   a root daemon with -o allow_other (files owned by the DB user);
#   user   a daemon run by the database user itself (its own CIPHERFS_HOME,
#          so its own KMS; needs /dev/fuse mode 0666);
#   fault  tests/tools/faultmount (FaultBacking under the volume; SIGUSR1 =
#          simulated power cut), root, allow_other. Remounts after a cut
#          use devmount on the same volume.
# The daemon runs in the foreground of a background job; PID in MNT.pid
# (common.sh's cfs_start_daemon), log in MNT.log.
# Source it after common.sh.

# cfs_db_fuse_ready USER: /dev/fuse usable by USER's daemon, or a clear failure.
cfs_db_fuse_ready() {
  local user=$1 mode
  mode=$(stat -c '%a' /dev/fuse 2>/dev/null) || cfs_die "/dev/fuse is missing (modprobe fuse)"
  [[ $mode == 666 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    cfs_die "/dev/fuse has mode $mode: a daemon run by $user needs 0666 (as root: chmod 0666 /dev/fuse)"
  fi
  if [[ ${CFS_DB_NO_CHMOD:-0} == 1 ]]; then
    cfs_die "/dev/fuse has mode $mode: a daemon run by $user needs 0666 (chmod 0666 /dev/fuse, Debian's default)"
  fi
  cfs_say "test mode: /dev/fuse has mode $mode; chmod 0666 /dev/fuse so that $user can run its own daemon"
  chmod 0666 /dev/fuse
}

# cfs_as_user USER CMD...: exec CMD as USER (no fork: the PID is CMD's).
cfs_as_user() {
  local user=$1
  shift
  setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}

# cfs_db_mount KIND USER WORK MNT [SEED]: mounts WORK's cluster (created on
# first use) on MNT. Sets CFS_DB_BACKING (the volume directory).
cfs_db_mount() {
  local kind=$1 user=$2 work=$3 mnt=$4 seed=${5:-1} cli dm
  mkdir -p "$work" "$mnt"
  case $kind in
    root)
      cfs_mount_fresh "$work/c" "$mnt" encrypted || cfs_die "mount failed"
      CFS_DB_BACKING=$(cfs_backing_dir "$work/c")
      ;;
    user)
      cfs_db_fuse_ready "$user"
      cli=$(cfs_cli) || cfs_die "the cipherfs command is not built"
      install -d -o "$user" -g "$(id -g "$user")" -m 700 "$work/uhome"
      chown "$user:$(id -g "$user")" "$mnt"
      if [[ ! -e $work/uhome/created ]]; then
        cfs_as_user "$user" env CIPHERFS_HOME="$work/uhome" "$cli" cluster create --id t --storage-encrypted \
          >"$work/ucreate.log" 2>&1 || { cat "$work/ucreate.log" >&2; cfs_die "cluster create as $user failed"; }
        touch "$work/uhome/created"
      fi
      # Not cfs_start_daemon: its mountpoint(1) check stats the mount, and
      # root gets EACCES on a mount without allow_other.
      setsid setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
        env CIPHERFS_HOME="$work/uhome" "$cli" mount t "$mnt" -f </dev/null >"${mnt%/}.log" 2>&1 &
      local pid=$!
      disown "$pid" 2>/dev/null || true
      echo "$pid" >"$(cfs_pidfile "$mnt")"
      cfs_db_wait_mounted "$mnt" "$pid" 120 || { tail -20 "${mnt%/}.log" >&2; cfs_die "mount as $user failed"; }
      CFS_DB_BACKING=$(echo "$work"/uhome/regions/*/clusters/t)
      ;;
    fault | dev)
      dm=$(cfs_tool devmount) || cfs_die "devmount is not built"
      if [[ ! -d $work/vol ]]; then
        mkdir -p "$work/vol"
        (umask 077 && "$dm" create "$work/vol" >"$work/devkey" 2>"$work/create.log") ||
          { cat "$work/create.log" >&2; cfs_die "devmount create failed"; }
      fi
      CIPHERFS_DEVKEY=$(tail -1 "$work/devkey")
      export CIPHERFS_DEVKEY
      if [[ $kind == fault ]]; then
        local fm
        fm=$(cfs_tool faultmount) || cfs_die "faultmount is not built"
        cfs_start_daemon "$mnt" "$fm" "$work/vol" "$mnt" --allow-other --mode "${CFS_DB_CUT_MODE:-tear}" \
          --seed "$seed" || cfs_die "faultmount failed"
      else
        cfs_start_daemon "$mnt" "$dm" serve "$work/vol" "$mnt" -f --allow-other || cfs_die "devmount failed"
      fi
      CFS_DB_BACKING=$work/vol
      ;;
    *) cfs_die "unknown mount kind $kind" ;;
  esac
  chmod 755 "$mnt" 2>/dev/null || true
}

# cfs_db_is_mounted MNT: from the mount table (no stat of MNT: root may not
# enter a mount without allow_other).
cfs_db_is_mounted() { awk -v m="$1" '$2 == m {f = 1} END {exit !f}' /proc/self/mounts; }

cfs_db_wait_mounted() { # MNT PID TIMEOUT_S
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    cfs_db_is_mounted "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cfs_say "daemon $2 exited before $1 was mounted"; return 1; }
    sleep 0.2
  done
  cfs_say "timeout waiting for $1 to be mounted"
  return 1
}

# cfs_db_umount MNT: unmounts (any kind; root may unmount a user's mount),
# waits for the daemon to exit (SIGKILL after 60 s).
cfs_db_umount() {
  local mnt=$1 pid i
  pid=$(cat "$(cfs_pidfile "$mnt")" 2>/dev/null || true)
  for ((i = 0; i < 20; i++)); do
    cfs_db_is_mounted "$mnt" || break
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
    cfs_db_is_mounted "$mnt" || break
    sleep 0.5
  done
  if cfs_db_is_mounted "$mnt"; then
    cfs_say "$mnt busy: lazy unmount"
    fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
  if [[ -n $pid ]]; then
    cfs_wait_gone "$pid" 60 || { cfs_say "daemon $pid still running after unmount: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$(cfs_pidfile "$mnt")"
  fi
}

# cfs_db_daemon_pid MNT: the PID of the daemon serving MNT.
cfs_db_daemon_pid() { cat "$(cfs_pidfile "$1")"; }

# cfs_db_detach_dead MNT: after the daemon died, detach its dead mount.
cfs_db_detach_dead() {
  local mnt=$1 pid
  pid=$(cat "$(cfs_pidfile "$mnt")" 2>/dev/null || true)
  if [[ -n $pid ]]; then cfs_wait_gone "$pid" 60 || cfs_say "warning: daemon $pid still alive"; fi
  fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  rm -f "$(cfs_pidfile "$mnt")"
  ! cfs_db_is_mounted "$mnt" || cfs_die "$mnt still mounted after lazy unmount"
}
