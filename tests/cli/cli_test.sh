#!/bin/bash
# End-to-end tests of the cipherfs command without a mount: keys, clusters,
# outputs and every refusal with its exit code (docs/cli.md).
# Usage: cli_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/lib.sh"
trap 'rm -rf "$WORK"' EXIT
CLUSTERS=$CIPHERFS_HOME/regions/local-1/clusters

# --- version and help at every level ---
expect 0 --version; contains "cipherfs 0." "$OUT"
for cmd in "" "cluster" "cluster create" "cluster list" "cluster describe" "mount" "umount" "kms" \
           "kms create-key" "kms describe-key" "kms list-keys" "kms list-aliases" "kms create-alias"; do
  expect 0 $cmd --help; contains "Examples" "$OUT" "help of '$cmd'"
done
expect 2; one_error_line
expect 2 cluster; one_error_line
expect 2 cluster create; contains "--id" "$ERR"
expect 2 cluster create --id x --bogus-flag

# --- KMS: keys, identifier forms, aliases ---
expect 0 kms create-key --description "orders key"
KEY_ID=$(json_get '.KeyMetadata.KeyId')
KEY_ARN=$(json_get '.KeyMetadata.Arn')
same "$(json_get '.KeyMetadata.KeyState')" "Enabled" "new key state"
same "$(json_get '.KeyMetadata.Enabled')" "true" "new key Enabled"
same "$(json_get '.KeyMetadata.KeyManager')" "CUSTOMER" "KeyManager"
same "$(json_get '.KeyMetadata.Description')" "orders key" "Description"
[[ "$KEY_ARN" =~ ^arn:cipherfs:kms:local-1:[0-9]{12}:key/$KEY_ID$ ]] || fail "key ARN shape: $KEY_ARN"
expect 0 kms create-alias --alias-name alias/orders --target-key-id "$KEY_ID"
ACCOUNT=$(cut -d: -f5 <<<"$KEY_ARN")
for ident in "$KEY_ID" "$KEY_ARN" alias/orders "arn:cipherfs:kms:local-1:$ACCOUNT:alias/orders"; do
  expect 0 kms describe-key --key-id "$ident"
  same "$(json_get '.KeyMetadata.KeyId')" "$KEY_ID" "describe-key $ident"
done
expect 0 kms list-keys; contains "$KEY_ARN" "$OUT"
expect 26 kms create-alias --alias-name orders --target-key-id "$KEY_ID"; contains ValidationException "$ERR"
one_error_line
expect 26 kms create-alias --alias-name alias/aws/mine --target-key-id "$KEY_ID"
expect 25 kms create-alias --alias-name alias/orders --target-key-id "$KEY_ID"; contains AlreadyExistsException "$ERR"
expect 20 kms describe-key --key-id 00000000-0000-4000-8000-000000000000; contains NotFoundException "$ERR"
expect 20 kms describe-key --key-id alias/missing
expect 0 kms list-aliases
same "$(json_get '[.Aliases[].AliasName] | sort')" '["alias/aws/rds","alias/orders"]' "aliases"

# --- clusters ---
expect 0 cluster create --id orders --storage-encrypted
expect 0 cluster create --id billing --storage-encrypted --kms-key-id alias/orders
expect 0 cluster create --id scratch
expect 0 kms describe-key --key-id alias/aws/rds
RDS_ARN=$(json_get '.KeyMetadata.Arn')
same "$(json_get '.KeyMetadata.KeyManager')" "AWS" "alias/aws/rds manager"
expect 0 cluster describe --id orders --output json
same "$(json_get '.DBClusters[0].DBClusterIdentifier')" "orders" "DBClusterIdentifier"
same "$(json_get '.DBClusters[0].DBClusterArn')" "arn:cipherfs:rds:local-1:$ACCOUNT:cluster:orders" "DBClusterArn"
same "$(json_get '.DBClusters[0].StorageEncrypted')" "true" "StorageEncrypted"
same "$(json_get '.DBClusters[0].KmsKeyId')" "$RDS_ARN" "default key is alias/aws/rds"
same "$(json_get '.DBClusters[0].Status')" "available" "Status"
[[ "$(json_get '.DBClusters[0].ClusterCreateTime')" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T ]] || fail "ClusterCreateTime"
expect 0 cluster describe --id billing --output json
same "$(json_get '.DBClusters[0].KmsKeyId')" "$KEY_ARN" "--kms-key-id alias resolves to the key ARN"
expect 0 cluster describe --id scratch --output json
same "$(json_get '.DBClusters[0].StorageEncrypted')" "false" "unencrypted"
same "$(json_get '.DBClusters[0] | has("KmsKeyId")')" "false" "no KmsKeyId when unencrypted"
expect 0 cluster describe --id orders; contains "StorageEncrypted     true" "$OUT"
expect 0 cluster list --output json
same "$(json_get '[.DBClusters[].DBClusterIdentifier] | sort')" '["billing","orders","scratch"]' "list"
expect 0 cluster list; contains "scratch" "$OUT"
if grep -q "wrapped_data_key" <<<"$(cat "$CLUSTERS/scratch/volume.yaml")"; then fail "unencrypted cluster has a key"; fi

# --- refusals: nothing half-made ---
expect 4 cluster create --id orders --storage-encrypted; contains "already exists" "$ERR"; one_error_line
expect 3 cluster describe --id nosuch; contains "not found" "$ERR"; one_error_line
expect 2 cluster create --id 1bad
expect 2 cluster create --id plain --kms-key-id alias/orders; contains "--storage-encrypted" "$ERR"
expect 20 cluster create --id badkey --storage-encrypted --kms-key-id alias/nope; contains NotFoundException "$ERR"
expect 20 cluster create --id badkey --storage-encrypted --kms-key-id not-a-key
[ ! -e "$CLUSTERS/badkey" ] || fail "a refused create left $CLUSTERS/badkey"
CHECKS=$((CHECKS + 1))
ls -a "$CLUSTERS" | grep -q '^\.creating' && fail "temporary cluster folder left behind"
expect 0 kms disable-key --key-id "$KEY_ID"
expect 21 cluster create --id disabled --storage-encrypted --kms-key-id "$KEY_ID"; contains DisabledException "$ERR"
[ ! -e "$CLUSTERS/disabled" ] || fail "a refused create left a cluster behind"
expect 0 kms enable-key --key-id "$KEY_ID"
expect 26 kms disable-key --key-id alias/orders   # management calls take a key id or ARN only

# --- root key must be owner-only ---
ROOT_KEY=$CIPHERFS_HOME/regions/local-1/kms/root.key
same "$(stat -c %a "$ROOT_KEY")" "600" "root key mode"
chmod 644 "$ROOT_KEY"
expect 6 kms list-keys; contains "chmod 600" "$ERR"; one_error_line
expect 6 cluster create --id afterchmod --storage-encrypted
chmod 600 "$ROOT_KEY"
expect 0 kms list-keys

# A wrong root key (right mode, other bytes) opens no key material.
cp -p "$ROOT_KEY" "$WORK/root.key.saved"
head -c 32 /dev/urandom >"$ROOT_KEY"
expect 7 cluster create --id wrongroot --storage-encrypted; contains "root key" "$ERR"; one_error_line
[ ! -e "$CLUSTERS/wrongroot" ] || fail "a refused create left a cluster behind"
cp -p "$WORK/root.key.saved" "$ROOT_KEY"
rm "$ROOT_KEY"
expect 7 kms list-keys; contains "missing" "$ERR"
cp -p "$WORK/root.key.saved" "$ROOT_KEY"
expect 0 kms list-keys

# --- corrupted and future volume.yaml ---
cp "$CLUSTERS/orders/volume.yaml" "$WORK/orders.yaml"
sed -i 's/^kind: cluster/kind: [broken/' "$CLUSTERS/orders/volume.yaml"
expect 7 cluster describe --id orders; contains "volume.yaml:" "$ERR"; one_error_line
sed 's/^block_size: 4096/block_size: 512/' "$WORK/orders.yaml" >"$CLUSTERS/orders/volume.yaml"
expect 7 cluster describe --id orders; contains "block_size" "$ERR"
sed 's/^format: 1/format: 9/' "$WORK/orders.yaml" >"$CLUSTERS/orders/volume.yaml"
expect 8 cluster describe --id orders; contains "volume format 9 is newer than this cipherfs supports" "$ERR"
cp "$WORK/orders.yaml" "$CLUSTERS/orders/volume.yaml"
expect 0 cluster describe --id orders

# --- config file, regions and environment ---
printf 'default_region: eu-test-1\nmount:\n  threads: many\n' >"$CIPHERFS_HOME/config.yaml"
expect 2 cluster list; contains "config.yaml:3:12: mount.threads" "$ERR"; one_error_line
printf 'default_region: eu-test-1\nregions:\n  eu-test-1:\n    path: %s\n' "$WORK/elsewhere" >"$CIPHERFS_HOME/config.yaml"
expect 0 cluster create --id far --storage-encrypted
[ -f "$WORK/elsewhere/clusters/far/volume.yaml" ] || fail "region path from config not used"
expect 0 cluster describe --id far --output json
[[ "$(json_get '.DBClusters[0].KmsKeyId')" == arn:cipherfs:kms:eu-test-1:* ]] || fail "key of the region"
expect 0 cluster list --output json --region local-1
same "$(json_get '.DBClusters | length')" "3" "--region overrides the config"
CIPHERFS_REGION=local-1 expect 0 cluster list --output json
same "$(json_get '.DBClusters | length')" "3" "CIPHERFS_REGION overrides the config"
expect 2 cluster list --region Bad_Region
expect 3 cluster list --config "$WORK/missing.yaml"
rm "$CIPHERFS_HOME/config.yaml"

# A key ARN of another region is not found here.
expect 20 cluster create --id crossregion --storage-encrypted --kms-key-id "${KEY_ARN/local-1/eu-test-1}"

# --- never print key material ---
ROOT_B64=$(base64 -w0 <"$ROOT_KEY")
CHECKS=$((CHECKS + 1))
grep -rqF "$ROOT_B64" "$CIPHERFS_HOME/regions/local-1/kms/audit.log" "$CLUSTERS" && fail "root key found in files"

finish
