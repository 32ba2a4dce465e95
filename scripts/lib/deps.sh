#!/usr/bin/env bash
# Installs the Debian 12 packages cipherfs needs to build and test, by name,
# with apt-get; idempotent (installs only what is missing, runs
# `apt-get update` at most once, and only if something is missing).
#
#   scripts/lib/deps.sh [build|test|all]     (default: all)
#   source scripts/lib/deps.sh; cfs_deps_install build
#
# Database packages: their Debian maintainer scripts start system services
# (postgresql@15-main, mariadb). Our tests start private servers on private
# sockets and ports, so the install runs under a policy-rc.d that forbids
# service starts, and any system service already running is stopped.
#
# /dev/fuse: a daemon run as root works with any mode. A daemon run by a
# non-root user (e.g. the postgres user mounting its own data directory)
# needs /dev/fuse mode 0666 (Debian's default; some hosts ship 0600).
# cfs_check_fuse reports this; tests that need a non-root daemon call
# cfs_fuse_allow_users, which chmods it to 0666 (as root) or fails clearly.
set -euo pipefail

# Build dependencies (compilers, libraries, headers).
CFS_BUILD_PKGS=(
  cmake g++ clang-14 libclang-rt-14-dev pkg-config make ccache
  libfuse3-dev fuse3 libssl-dev libyaml-cpp-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
)
# Test dependencies (tools the test command and scripts/demo run).
CFS_TEST_PKGS=(
  python3 jq attr acl e2fsprogs util-linux procps psmisc xxd bsdextrautils
  postgresql-15 postgresql-client-15 postgresql-contrib mariadb-server fio
)

cfs_log() { printf '[deps] %s\n' "$*" >&2; }

# cfs_missing_pkgs PKG...: prints the packages not installed.
cfs_missing_pkgs() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
  done
}

# Stops the system database services the Debian packages may have started.
cfs_stop_db_services() {
  local svc
  for svc in postgresql mariadb mysql; do
    if [[ -x /etc/init.d/$svc ]] && /etc/init.d/"$svc" status >/dev/null 2>&1; then
      cfs_log "stopping system service $svc (our tests start private servers)"
      /etc/init.d/"$svc" stop >/dev/null 2>&1 || cfs_log "warning: could not stop $svc"
    fi
  done
}

cfs_apt_install() {
  local -a missing
  mapfile -t missing < <(cfs_missing_pkgs "$@")
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    cfs_log "missing packages: ${missing[*]}"
    cfs_log "run as root (or: sudo apt-get install ${missing[*]})"
    return 1
  fi
  cfs_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z ${CFS_APT_UPDATED:-} ]]; then
    apt-get update -qq
    CFS_APT_UPDATED=1
  fi
  # Forbid service starts by maintainer scripts during this install.
  local policy=/usr/sbin/policy-rc.d had_policy=0
  if [[ -e $policy ]]; then had_policy=1; fi
  if ((had_policy == 0)); then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
  fi
  local rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if ((had_policy == 0)); then rm -f "$policy"; fi
  if ((rc != 0)); then
    cfs_log "apt-get install failed (exit $rc) for: ${missing[*]}"
    return "$rc"
  fi
}

# cfs_check_fuse: /dev/fuse must exist; reports a mode that blocks non-root daemons.
cfs_check_fuse() {
  if [[ ! -c /dev/fuse ]]; then
    cfs_log "error: /dev/fuse is missing. Load the module (modprobe fuse) or, in a"
    cfs_log "container, start it with --device /dev/fuse --cap-add SYS_ADMIN."
    return 1
  fi
  local mode
  mode=$(stat -c '%a' /dev/fuse)
  if [[ $mode != 666 ]]; then
    cfs_log "note: /dev/fuse has mode $mode. Root daemons (the default, with"
    cfs_log "  -o allow_other) work. A daemon run by a non-root user (e.g. postgres"
    cfs_log "  mounting its own data directory) needs mode 0666: chmod 0666 /dev/fuse"
    cfs_log "  (the tests that need it do this themselves when run as root)."
  fi
}

# cfs_fuse_allow_users: makes /dev/fuse usable by non-root daemons, or fails clearly.
cfs_fuse_allow_users() {
  [[ $(stat -c '%a' /dev/fuse) == 666 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    cfs_log "error: /dev/fuse is not 0666 and we are not root: run 'chmod 0666 /dev/fuse' as root"
    return 1
  fi
  cfs_log "chmod 0666 /dev/fuse (a daemon run by a non-root user needs it)"
  chmod 0666 /dev/fuse
}

# cfs_deps_install build|test|all
cfs_deps_install() {
  local what=${1:-all}
  case $what in
    build) cfs_apt_install "${CFS_BUILD_PKGS[@]}" ;;
    test) cfs_apt_install "${CFS_TEST_PKGS[@]}" ;;
    all) cfs_apt_install "${CFS_BUILD_PKGS[@]}" "${CFS_TEST_PKGS[@]}" ;;
    *)
      cfs_log "usage: deps.sh [build|test|all]"
      return 2
      ;;
  esac
  if [[ $what != build ]]; then
    cfs_stop_db_services
  fi
  cfs_check_fuse
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  cfs_deps_install "${1:-all}"
  cfs_log "ok: dependencies present"
fi
