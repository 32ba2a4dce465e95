# Helpers for the cipherfs CLI tests: run the binary, check exit code and
# output, count failures. Sourced by cli_test.sh and cli_mount_test.sh.
set -u
CIPHERFS=${1:?usage: $0 PATH-TO-cipherfs}
FAILS=0
CHECKS=0
OUT=""
ERR=""
RC=0
WORK=$(mktemp -d /tmp/cipherfs-cli-test.XXXXXX)
export CIPHERFS_HOME=$WORK/home
unset CIPHERFS_REGION

# run ARGS...: runs cipherfs, capturing OUT, ERR and RC.
run() {
  OUT=$("$CIPHERFS" "$@" 2>"$WORK/stderr") && RC=0 || RC=$?
  ERR=$(cat "$WORK/stderr")
}

fail() {
  echo "FAIL: $*" >&2
  echo "  rc=$RC stdout=${OUT:0:400}" >&2
  echo "  stderr=${ERR:0:400}" >&2
  FAILS=$((FAILS + 1))
}

# expect RC ARGS...: runs cipherfs and checks the exit code.
expect() {
  local want=$1
  shift
  CHECKS=$((CHECKS + 1))
  run "$@"
  [ "$RC" -eq "$want" ] || fail "cipherfs $* exited $RC, want $want"
}

# contains WHAT TEXT [LABEL]
contains() {
  CHECKS=$((CHECKS + 1))
  case "$2" in *"$1"*) ;; *) fail "${3:-output} does not contain '$1'" ;; esac
}

# json_get FILTER: applies a jq filter to OUT (raw output, compact arrays).
json_get() {
  jq -rc "$1" <<<"$OUT"
}

# same A B LABEL
same() {
  CHECKS=$((CHECKS + 1))
  [ "$1" == "$2" ] || fail "$3: '$1' != '$2'"
}

# one_error_line: stderr is exactly one "cipherfs: ...; ..." line.
one_error_line() {
  CHECKS=$((CHECKS + 1))
  local n
  n=$(printf '%s\n' "$ERR" | wc -l)
  [ "$n" -eq 1 ] && [[ "$ERR" == "cipherfs: "*"; "* ]] || fail "error is not one 'cipherfs: what; what to do' line"
}

finish() {
  echo "$CHECKS checks, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# --- scaffolding for tests that mount (sourcing tests may add to these) ---
# MOUNTS: mountpoints unmounted at exit; BG: background pids killed at exit.
# A test with more to undo defines before_cleanup(), run first.
MOUNTS=()
BG=()
cleanup() {
  if declare -F before_cleanup >/dev/null; then before_cleanup; fi
  local p m
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
  for m in "${MOUNTS[@]}"; do
    mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m" 2>/dev/null
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fuse_ok() { command -v fusermount3 >/dev/null && [ -c /dev/fuse ] && [ -r /dev/fuse -a -w /dev/fuse ]; }
# require_fuse: exits 77 (skipped, never counted as passed) without FUSE.
require_fuse() {
  fuse_ok && return 0
  echo "SKIP: FUSE is not usable here (/dev/fuse or fusermount3 missing or not accessible)"
  exit 77
}

# use_seed: RANDOM seeded from CIPHERFS_SEED (or a fresh one), printed.
use_seed() {
  SEED=${CIPHERFS_SEED:-$RANDOM}
  echo "seed: CIPHERFS_SEED=$SEED"
  RANDOM=$SEED
}
