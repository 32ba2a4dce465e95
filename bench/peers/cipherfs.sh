#!/usr/bin/env bash
# Peer "cipherfs" for ../shared/bench (contract: shared/bench/lib/peer.sh):
#   cipherfs.sh mount|umount|describe CIPHERDIR MOUNTPOINT
# An encrypted cluster (default KMS key alias/aws/rds) whose CIPHERFS_HOME
# is CIPHERDIR/home, created on first mount; served by a root daemon in the
# foreground with -o allow_other (so default_permissions, and files created
# by the DB user are owned by it). The daemon's PID is MOUNTPOINT.pid.
#   BENCH_PEERS_PATH=$PWD/bench/peers ../shared/bench/run.sh native bindfs gocryptfs cipherfs
# Knobs: CIPHERFS_BIN (default: this repo's build/src/cli/cipherfs, then
# PATH), CIPHERFS_MOUNT_OPTS (extra mount arguments, e.g. "-o max_threads=8").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CFS_ROOT=$here/../.. CFS_TAG=peer-cipherfs
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh
source "$here/../../scripts/lib/common.sh"

usage() { echo "usage: $0 mount|umount|describe CIPHERDIR MOUNTPOINT" >&2; exit 2; }
[[ $# -eq 3 ]] || usage
cmd=$1 cipher=$2 mnt=$3
cli=${CIPHERFS_BIN:-$(cfs_cli || command -v cipherfs || true)}
[[ -n $cli && -x $cli ]] || cfs_die "cipherfs not found: build it (scripts/build) or set CIPHERFS_BIN"
read -r -a opts <<<"${CIPHERFS_MOUNT_OPTS:-}"
export CIPHERFS_HOME=$cipher/home
# A new cluster's first automated backup would be taken by the daemon a few
# minutes into the run (then once a day in its window): a snapshot the other
# peers do not pay for. The bench measures the file system, so it is off;
# docs/snapshots.md gives the first-write cost after a snapshot separately.
export CIPHERFS_BACKUP_CHECK_SECONDS=${CIPHERFS_BACKUP_CHECK_SECONDS:-0}

case $cmd in
  mount)
    mkdir -p "$cipher" "$mnt"
    if [[ ! -f $cipher/.bench-cluster-created ]]; then
      "$cli" cluster create --id bench --storage-encrypted >&2
      touch "$cipher/.bench-cluster-created"
    fi
    cfs_start_daemon "$mnt" "$cli" mount bench "$mnt" -f -o allow_other "${opts[@]}"
    chmod 755 "$mnt" ;;
  umount) cfs_umount "$mnt" ;;
  describe) echo "$("$cli" --version 2>/dev/null | head -1); encrypted, mount opts: -o allow_other ${opts[*]}" ;;
  *) usage ;;
esac
