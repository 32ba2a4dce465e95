#!/bin/bash
# End to end: shipping between hosts over TLS (DESIGN rules 4, 6 and 8; docs/regions.md
# "Between hosts"). Two homes stand for two hosts: the source host (region local-1) and the
# target host (region dr-1, served by `cipherfs region serve` on 127.0.0.1, a free port), with
# a throwaway CA and certificates made here with openssl req.
# - a client certificate of another CA is refused by the server; nothing is written in dr-1;
# - an encrypted copy without a key of dr-1 is refused before connecting;
# - a chunk altered in transit (test hook) fails its SHA-256 on arrival: no snapshot;
# - an interrupted copy leaves no snapshot and resumes when rerun;
# - the copy's data key is wrapped by dr-1's KMS under the dr-1 key (its audit log), the
#   chunks are ciphertext; a restore in dr-1 mounts and its data matches;
# - an unencrypted snapshot copies over TLS too (rule 8);
# - a replica on the other host: created, one changed block ships one chunk, promoted there,
#   data as of the last shipment.
# Exits 77 (skipped) without FUSE or openssl.
# Usage: remote_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
require_fuse
PKI=$WORK/pki; mkdir -p "$PKI"
pki() { (cd "$PKI" && "$@" >/dev/null 2>&1) || { echo "openssl failed: $*" >&2; exit 1; }; }
leaf() {  # leaf NAME CN CA EXT
  pki openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$4" >"$PKI/$1.ext"
  pki openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 1 -extfile "$1.ext" -out "$1.pem"
}
for ca in ca rogue-ca; do
  pki openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$ca" \
    -keyout "$ca.key" -out "$ca.pem"
done
leaf server dr-host ca "subjectAltName=IP:127.0.0.1"
leaf client src-host ca "extendedKeyUsage=clientAuth"
leaf rogue rogue-host rogue-ca "extendedKeyUsage=clientAuth"
TLS=(--tls-cert "$PKI/client.pem" --tls-key "$PKI/client.key" --tls-ca "$PKI/ca.pem")
ROGUE=(--tls-cert "$PKI/rogue.pem" --tls-key "$PKI/rogue.key" --tls-ca "$PKI/ca.pem")

# The target host: its own home, region dr-1, a server on a free port.
FAR_HOME=$WORK/far-home
far() { CIPHERFS_HOME=$FAR_HOME expect "$@"; }
far 0 kms create-key --description dr --region dr-1
K2=$(json_get '.KeyMetadata.Arn')
CIPHERFS_HOME=$FAR_HOME "$CIPHERFS" region serve --region dr-1 --listen 127.0.0.1:0 --tls-cert "$PKI/server.pem" \
  --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.pem" >"$WORK/serve.out" 2>"$WORK/serve.err" &
BG+=($!)
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" && break; sleep 0.1; done
PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$WORK/serve.out")
[ -n "$PORT" ] || { cat "$WORK/serve.err" >&2; echo "FAIL: region serve did not start"; exit 1; }
TARGET=tls://127.0.0.1:$PORT
DR=$FAR_HOME/regions/dr-1

# The source host.
expect 0 kms create-key --description src
K1=$(json_get '.KeyMetadata.Arn')
expect 0 cluster create --id orders --storage-encrypted --kms-key-id "$K1"
expect 0 cluster create --id plain
DATA=$WORK/data.bin
head -c 5000000 /dev/urandom >"$DATA"
M=$WORK/m; mkdir -p "$M"; MOUNTS+=("$M")
expect 0 mount orders "$M"
cp "$DATA" "$M/data.bin"; mkdir "$M/dir"; echo "the secret marker text" >"$M/dir/note"; ln "$M/data.bin" "$M/dir/hard"
ln -s dir/note "$M/link"; sync
expect 0 umount "$M"
expect 0 mount plain "$M"
cp "$DATA" "$M/data.bin"; sync
expect 0 umount "$M"
expect 0 snapshot create --cluster orders --id s1
expect 0 snapshot create --cluster plain --id p1
copy() { expect "$1" snapshot copy --source-snapshot "$2" --source-region local-1 --target-snapshot "$3" --region dr-1 \
  --target "$TARGET" "${@:4}"; }

# A client certificate of another CA: refused by the server, nothing written in dr-1.
copy 6 s1 c1 --kms-key-id "$K2" "${ROGUE[@]}"
one_error_line; contains "certificate" "$ERR" "rogue client"
CHECKS=$((CHECKS + 1)); [ -n "$(ls -A "$DR/snapshots" 2>/dev/null)" ] && fail "refused client wrote in dr-1"
# Rule 4 before any byte moves: no key of dr-1.
copy 5 s1 c1 "${TLS[@]}"
one_error_line; contains "rule 4" "$ERR"
# A chunk altered in transit: detected on arrival, no snapshot.
CIPHERFS_TEST_COPY_CORRUPT=1 copy 7 s1 c1 --kms-key-id "$K2" "${TLS[@]}"
contains "SHA-256" "$ERR" "altered chunk"
CHECKS=$((CHECKS + 1)); [ -e "$DR/snapshots/c1" ] && fail "corrupted copy left a snapshot"
# Interrupted after one chunk: no snapshot; the rerun resumes and completes.
CIPHERFS_TEST_COPY_STOP_AFTER=1 copy 10 s1 c1 --kms-key-id "$K2" "${TLS[@]}"
contains "interrupted" "$ERR"
CHECKS=$((CHECKS + 1)); [ -e "$DR/snapshots/c1" ] && fail "interrupted copy left a snapshot"
copy 0 s1 c1 --kms-key-id "$K2" "${TLS[@]}"
contains "resumed" "$OUT" "rerun over TLS"
CHECKS=$((CHECKS + 1)); [ -e "$DR/snapshots/.copy-c1" ] && fail "staging left after a successful copy"
far 0 snapshot describe --id c1 --region dr-1 --output json
same "$(json_get '.DBClusterSnapshots[0].KmsKeyId')" "$K2" "copy's key"
same "$(json_get '.DBClusterSnapshots[0].Lineage[-1].Relation')" copied-from "copy's lineage"
contains "Decrypt" "$(grep -h ':cluster:orders' "$CIPHERFS_HOME/regions/local-1/kms/audit.log")" "source audit log"
contains "Encrypt" "$(grep -h ':cluster-snapshot:c1' "$DR/kms/audit.log")" "target audit log"
CHECKS=$((CHECKS + 1)); grep -rqa "secret marker" "$FAR_HOME" && fail "plaintext found on the target host"
same "$(find "$DR/snapshots/c1/objects" -type f | wc -l)" \
  "$(find "$CIPHERFS_HOME/regions/local-1/snapshots/s1/objects" -type f | wc -l)" "chunk count of the copy"
# Unencrypted, over TLS too.
copy 0 p1 pc1 "${TLS[@]}" --output json
same "$(json_get '.DBClusterSnapshot.StorageEncrypted')" false "unencrypted copy"

far 0 cluster restore-from-snapshot --snapshot c1 --id orders-dr --region dr-1
far 0 mount orders-dr "$M" --region dr-1
CHECKS=$((CHECKS + 1)); cmp -s "$DATA" "$M/data.bin" || fail "restored data in dr-1 differs"
CHECKS=$((CHECKS + 1)); cmp -s "$DATA" "$M/dir/hard" || fail "hard link in dr-1 differs"
same "$(stat -c %h "$M/data.bin")" 2 "hard link count in dr-1"
contains "secret marker" "$(cat "$M/link")" "symlink in dr-1"
far 0 umount "$M"

# A replica on the other host.
W=$WORK/w; mkdir -p "$W"; MOUNTS+=("$W")
expect 0 mount orders "$W"
expect 5 replica create --source orders --source-region local-1 --id orders-dr2 --region dr-1 --target "$TARGET" "${TLS[@]}"
one_error_line; contains "rule 6" "$ERR"
expect 0 replica create --source orders --source-region local-1 --id orders-dr2 --region dr-1 --kms-key-id "$K2" \
  --target "$TARGET" "${TLS[@]}"
contains "shipped replica" "$OUT"
printf 'changed!' | dd of="$W/data.bin" bs=1 seek=4096 conv=notrunc,fsync status=none
cp "$W/data.bin" "$WORK/v2"
expect 0 replica ship --id orders-dr2 --region dr-1
contains "shipped replica orders-dr2: 1 chunk(s) changed" "$OUT" "incremental shipment over TLS"
expect 0 replica describe --id orders-dr2 --region dr-1 --output json
same "$(json_get '.DBClusters[0].Target')" "$TARGET" "sender's replica target"
far 0 replica describe --id orders-dr2 --region dr-1 --output json
same "$(json_get '.DBClusters[0].KmsKeyId')" "$K2" "replica key on the target host"
same "$(json_get '.DBClusters[0].Generation')" 2 "replica generation on the target host"
printf 'after' | dd of="$W/data.bin" bs=1 seek=8192 conv=notrunc,fsync status=none
expect 5 replica promote --id orders-dr2 --region dr-1
far 0 replica promote --id orders-dr2 --region dr-1
far 0 mount orders-dr2 "$M" --region dr-1
CHECKS=$((CHECKS + 1)); cmp -s "$WORK/v2" "$M/data.bin" || fail "promoted data is not the last shipped state"
far 0 umount "$M"
expect 0 umount "$W"
cat "$WORK/serve.out"
finish
