# shellcheck shell=bash
# Process helpers shared by the database helpers (pg.sh, maria.sh, which
# source this file): waiting for a process to go, stopping a server cleanly
# with a SIGKILL fallback, stopping load clients, a free loopback port.
# Source it after common.sh; it does not change shell options.

# cfs_wait_gone PID T: waits until PID is gone (T seconds); 1 if still alive.
cfs_wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# cfs_free_port: an unused 127.0.0.1 TCP port.
cfs_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cfs_stop_server NAME PID TIMEOUT_S KILL CMD...: asks server PID to stop
# with CMD and waits TIMEOUT_S for it to exit; if CMD failed or it did not
# exit in time, runs KILL (the database's own SIGKILL-everything function).
# 0: stopped cleanly, 1: killed.
cfs_stop_server() {
  local name=$1 pid=$2 t=$3 kill_fn=$4
  shift 4
  if "$@" >/dev/null 2>&1 && cfs_wait_gone "$pid" "$t"; then return 0; fi
  cfs_say "$name $pid did not stop cleanly within ${t}s: killing it"
  "$kill_fn"
  return 1
}

# cfs_stop_clients STOPFILE T PID...: asks load clients to stop (STOPFILE),
# waits T seconds for each, then SIGKILLs it and its children; reaps them.
cfs_stop_clients() {
  local stop=$1 t=$2 p
  shift 2
  touch "$stop"
  for p in "$@"; do
    if ! cfs_wait_gone "$p" "$t"; then
      pkill -KILL -P "$p" 2>/dev/null || true
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
}
