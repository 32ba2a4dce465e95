#!/bin/bash
# kmsd with two local users (cfs_u1, cfs_u2; created when missing, as the
# conformance tests do): callers identified by SO_PEERCRED, grants and key
# policies enforced on every call; cfs_u1 creates and mounts its own
# encrypted cluster through kmsd without reading the key store; revoking
# the grant is losing access. Then cluster state follows key state: a
# mounted cluster read in a loop goes inaccessible (EIO) within the check
# interval when its key is disabled, `cluster start` brings it back once
# the key is enabled, and past the grace period it is terminal.
# Needs root (users, kmsd as root) and FUSE; exits 77 (skipped) otherwise.
# Usage: kmsd_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
KMSD_PID=""
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do
    mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
  done
  [ -n "$KMSD_PID" ] && kill "$KMSD_PID" 2>/dev/null && wait "$KMSD_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$(id -u)" -ne 0 ] || ! command -v fusermount3 >/dev/null || [ ! -c /dev/fuse ] || ! command -v runuser >/dev/null; then
  echo "SKIP: needs root, runuser and FUSE"; exit 77
fi
for u in cfs_u1 cfs_u2; do
  id "$u" >/dev/null 2>&1 || useradd -M -U -s /usr/sbin/nologin "$u" || { echo "SKIP: can't create $u"; exit 77; }
done
chmod 755 "$WORK"
for u in cfs_u1 cfs_u2; do mkdir -p "$WORK/home-$u"; chown "$u" "$WORK/home-$u"; done
SOCK=$WORK/kms.sock
# as USER ARGS...: cipherfs as a local user, through kmsd, with its own home.
as() {
  local user=$1; shift
  CHECKS=$((CHECKS + 1))
  OUT=$(runuser -u "$user" -- env CIPHERFS_HOME="$WORK/home-$user" CIPHERFS_KMS_SOCKET="$SOCK" \
        CIPHERFS_INACCESSIBLE_TERMINAL_AFTER="${TERMINAL_AFTER:-604800}" "$CIPHERFS" "$@" 2>"$WORK/stderr") && RC=0 || RC=$?
  ERR=$(cat "$WORK/stderr")
}
as_expect() { local want=$1; shift; as cfs_u1 "$@"; [ "$RC" -eq "$want" ] || fail "as cfs_u1 $*: exited $RC, want $want"; }

"$CIPHERFS" kmsd --socket "$SOCK" 2>"$WORK/kmsd.log" &
KMSD_PID=$!
for i in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "kmsd did not start: $(cat "$WORK/kmsd.log")"; exit 1; }
export CIPHERFS_KMS_SOCKET=$SOCK   # root's own commands go through kmsd too (account root)
expect 0 kms create-key --description pg
KEY=$(json_get .KeyMetadata.KeyId); ARN=$(json_get .KeyMetadata.Arn); ACCOUNT=$(json_get .KeyMetadata.AWSAccountId)
CHECKS=$((CHECKS + 1))
runuser -u cfs_u1 -- cat "$CIPHERFS_HOME/regions/local-1/kms/keys.json" >/dev/null 2>&1 && fail "cfs_u1 can read the key store"

# No grant: AccessDeniedException (exit 23), also for key-less calls.
as_expect 23 kms describe-key --key-id "$KEY"; contains "user/cfs_u1 is not authorized to perform: kms:DescribeKey" "$ERR"
as_expect 23 kms list-keys
as_expect 23 kms generate-data-key --key-id "$KEY"
as_expect 23 cluster create --id pg --storage-encrypted --kms-key-id "$ARN"

# A grant for cfs_u1: it creates and mounts its own cluster; cfs_u2 still can't.
expect 0 kms create-grant --key-id "$KEY" --grantee-principal cfs_u1 \
  --operations Decrypt GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey
GRANT=$(json_get .GrantId)
as_expect 0 kms describe-key --key-id "$ARN"
as_expect 0 cluster create --id pg --storage-encrypted --kms-key-id "$ARN"
as_expect 23 kms encrypt --key-id "$ARN" --plaintext aGVsbG8=
as cfs_u2 kms describe-key --key-id "$ARN"; [ "$RC" -eq 23 ] || fail "cfs_u2 without a grant: rc $RC"
as_expect 23 kms disable-key --key-id "$KEY"
as_expect 23 kms revoke-grant --key-id "$KEY" --grant-id "$GRANT"

# Key policy naming cfs_u2 for Encrypt only.
cat >"$WORK/policy.json" <<EOF
{"Version":"2012-10-17","Statement":[
 {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:cipherfs:iam::$ACCOUNT:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"u2","Effect":"Allow","Principal":{"AWS":"arn:cipherfs:iam::$ACCOUNT:user/cfs_u2"},"Action":"kms:Encrypt","Resource":"*"}]}
EOF
expect 0 kms put-key-policy --key-id "$KEY" --policy "file://$WORK/policy.json"
as cfs_u2 kms encrypt --key-id "$ARN" --plaintext aGVsbG8=; [ "$RC" -eq 0 ] || fail "cfs_u2 Encrypt by policy: rc $RC $ERR"
as cfs_u2 kms decrypt --ciphertext-blob "$(json_get .CiphertextBlob 2>/dev/null || echo x)"
[ "$RC" -eq 23 ] || fail "cfs_u2 Decrypt not in its policy: rc $RC"
expect 0 kms audit --user cfs_u2 --outcome AccessDeniedException
CHECKS=$((CHECKS + 1)); [ "$(json_get '.Events | length')" -ge 1 ] || fail "denied calls of cfs_u2 not audited"
same "$(json_get '.Events[0].caller_uid')" "$(id -u cfs_u2)" "audit caller uid from SO_PEERCRED"

if [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then finish; exit $?; fi
# cfs_u1 mounts its cluster through kmsd (check every 300 ms) and reads in a loop.
MP=$WORK/mnt-u1; mkdir -p "$MP"; chown cfs_u1 "$MP"; MOUNTS=("$MP")
printf 'mount:\n  key_check_interval: 300ms\n' >"$WORK/home-cfs_u1/config.yaml"; chown cfs_u1 "$WORK/home-cfs_u1/config.yaml"
as_expect 0 mount pg "$MP"
runuser -u cfs_u1 -- sh -c "head -c 200000 /dev/urandom > '$MP/data' && sync" || fail "cfs_u1 writes its mount"
runuser -u cfs_u1 -- sh -c "while cat '$MP/data' >/dev/null 2>&1; do :; done; echo gone >'$WORK/home-cfs_u1/reader.out'" &
READER=$!
sleep 0.5
START=$(date +%s%N)
expect 0 kms revoke-grant --key-id "$KEY" --grant-id "$GRANT"     # losing access
for i in $(seq 1 50); do [ -e "$WORK/home-cfs_u1/reader.out" ] && break; sleep 0.1; done
ELAPSED_MS=$(( ($(date +%s%N) - START) / 1000000 ))
CHECKS=$((CHECKS + 1)); [ -e "$WORK/home-cfs_u1/reader.out" ] || fail "reader still reading 5 s after the grant was revoked"
echo "mount became inaccessible ${ELAPSED_MS} ms after revoke-grant (check interval 300 ms)"
kill "$READER" 2>/dev/null; wait "$READER" 2>/dev/null
CHECKS=$((CHECKS + 1)); runuser -u cfs_u1 -- cat "$MP/data" >/dev/null 2>"$WORK/eio" && fail "read succeeded after key loss"
contains "Input/output error" "$(cat "$WORK/eio")" "read error after key loss"
as_expect 0 cluster describe --id pg --output json
same "$(json_get '.DBClusters[0].Status')" inaccessible-encryption-credentials-recoverable "status after revoke"
contains "AccessDeniedException" "$(json_get '.DBClusters[0].StatusReason')" "StatusReason"
runuser -u cfs_u1 -- env CIPHERFS_HOME="$WORK/home-cfs_u1" "$CIPHERFS" umount "$MP" >/dev/null 2>&1 || fusermount3 -u "$MP"
as_expect 5 mount pg "$MP"; contains "cluster start" "$ERR"
as_expect 23 cluster start --id pg
expect 0 kms create-grant --key-id "$KEY" --grantee-principal cfs_u1 --operations Decrypt DescribeKey
as_expect 0 cluster start --id pg
as_expect 0 cluster describe --id pg --output json; same "$(json_get '.DBClusters[0].Status')" available "status after start"
as_expect 0 mount pg "$MP"
CHECKS=$((CHECKS + 1)); runuser -u cfs_u1 -- cat "$MP/data" >/dev/null || fail "data unreadable after cluster start"
# Disabled key: the same, then past the (shortened) grace period it is terminal.
expect 0 kms disable-key --key-id "$KEY"
for i in $(seq 1 50); do runuser -u cfs_u1 -- cat "$MP/data" >/dev/null 2>&1 || break; sleep 0.1; done
CHECKS=$((CHECKS + 1)); runuser -u cfs_u1 -- cat "$MP/data" >/dev/null 2>&1 && fail "still readable 5 s after disable-key"
runuser -u cfs_u1 -- env CIPHERFS_HOME="$WORK/home-cfs_u1" "$CIPHERFS" umount "$MP" >/dev/null 2>&1 || fusermount3 -u "$MP"
as_expect 21 cluster start --id pg; contains "DisabledException" "$ERR"
TERMINAL_AFTER=0 as_expect 0 cluster describe --id pg --output json
same "$(json_get '.DBClusters[0].Status')" inaccessible-encryption-credentials "terminal after the grace period"
expect 0 kms enable-key --key-id "$KEY"
as_expect 5 cluster start --id pg; contains "restore-from-snapshot" "$ERR"
as_expect 5 mount pg "$MP"

finish
