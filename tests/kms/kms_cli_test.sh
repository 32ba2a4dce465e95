#!/bin/bash
# End-to-end test of `cipherfs kms ...` (no FUSE): every subcommand with the
# cloud CLI option and field names, each identifier form, each state
# transition and refusal with its exit code, fileb:// and base64 I/O, the
# audit log (list, filter, --verify on edit/remove/reorder/truncate), two
# processes hammering the key store, the passphrase root key.
# Usage: kms_cli_test.sh PATH-TO-cipherfs
. "$(dirname "$0")/../cli/lib.sh"
trap 'rm -rf "$WORK"' EXIT
KMS=$CIPHERFS_HOME/regions/local-1/kms

expect 0 kms create-key --description "app key"
KEY=$(json_get '.KeyMetadata.KeyId'); ARN=$(json_get '.KeyMetadata.Arn')
same "$(json_get '.KeyMetadata.KeyState')" Enabled "new key state"
same "$(json_get '.KeyMetadata.KeyManager')" CUSTOMER "KeyManager"
ACCOUNT=$(json_get '.KeyMetadata.AWSAccountId')
expect 0 kms create-key --description other
KEY2=$(json_get '.KeyMetadata.KeyId')

# Aliases: rules, update, delete, and every identifier form.
expect 0 kms create-alias --alias-name alias/app --target-key-id "$KEY"
expect 25 kms create-alias --alias-name alias/app --target-key-id "$KEY2"; one_error_line
expect 26 kms create-alias --alias-name app --target-key-id "$KEY"; contains 'Alias must start with the prefix "alias/"' "$ERR"
expect 26 kms create-alias --alias-name alias/aws/mine --target-key-id "$KEY"; contains reserved "$ERR"
expect 26 kms create-alias --alias-name alias/x --target-key-id alias/app; contains "key id or key ARN" "$ERR"
for ident in "$KEY" "$ARN" alias/app "arn:cipherfs:kms:local-1:$ACCOUNT:alias/app"; do
  expect 0 kms describe-key --key-id "$ident"
  same "$(json_get '.KeyMetadata.KeyId')" "$KEY" "describe-key by $ident"
done
expect 20 kms describe-key --key-id alias/nothing; contains NotFoundException "$ERR"
expect 20 kms describe-key --key-id "not-a-key"; one_error_line
expect 20 kms describe-key --key-id "arn:cipherfs:kms:other-9:$ACCOUNT:key/$KEY"
expect 0 kms update-alias --alias-name alias/app --target-key-id "$KEY2"
expect 0 kms describe-key --key-id alias/app; same "$(json_get '.KeyMetadata.KeyId')" "$KEY2" "update-alias"
expect 0 kms update-alias --alias-name alias/app --target-key-id "$ARN"
expect 20 kms update-alias --alias-name alias/none --target-key-id "$KEY"
expect 0 kms create-alias --alias-name alias/tmp --target-key-id "$KEY"
expect 0 kms delete-alias --alias-name alias/tmp
expect 20 kms delete-alias --alias-name alias/tmp
expect 0 kms list-aliases --key-id "$KEY"; same "$(json_get '[.Aliases[].AliasName]')" '["alias/app"]' "list-aliases --key-id"

# The managed key: created on first use, untouchable.
expect 0 kms describe-key --key-id alias/aws/rds
RDS=$(json_get '.KeyMetadata.KeyId'); same "$(json_get '.KeyMetadata.KeyManager')" AWS "managed key"
expect 26 kms disable-key --key-id "$RDS"
expect 26 kms schedule-key-deletion --key-id "$RDS"
expect 26 kms delete-alias --alias-name alias/aws/rds
expect 0 kms get-key-policy --key-id "$RDS"
printf '%s' "$(json_get .Policy)" >"$WORK/rds-policy.json"
expect 26 kms put-key-policy --key-id "$RDS" --policy "file://$WORK/rds-policy.json"

# Encrypt / decrypt / re-encrypt with fileb:// and base64, contexts.
printf 'top secret\n' >"$WORK/plain"
expect 0 kms encrypt --key-id alias/app --plaintext "fileb://$WORK/plain" --encryption-context purpose=test,team=db
same "$(json_get .KeyId)" "$ARN" "encrypt KeyId is the ARN"
same "$(json_get .EncryptionAlgorithm)" SYMMETRIC_DEFAULT "EncryptionAlgorithm"
json_get .CiphertextBlob | base64 -d >"$WORK/blob"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/blob" --encryption-context '{"team":"db","purpose":"test"}'
same "$(json_get .Plaintext | base64 -d)" "top secret" "decrypt round trip"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/blob" --encryption-context purpose=test,team=db \
  --query Plaintext --output text
same "$(base64 -d <<<"$OUT")" "top secret" "--query Plaintext --output text"
expect 24 kms decrypt --ciphertext-blob "fileb://$WORK/blob" --encryption-context purpose=test
expect 27 kms decrypt --ciphertext-blob "fileb://$WORK/blob" --encryption-context purpose=test,team=db --key-id "$KEY2"
expect 0 kms re-encrypt --ciphertext-blob "fileb://$WORK/blob" --source-encryption-context purpose=test,team=db \
  --destination-key-id "$KEY2" --destination-encryption-context x=y
same "$(json_get .SourceKeyId)" "$ARN" "re-encrypt SourceKeyId"
json_get .CiphertextBlob | base64 -d >"$WORK/blob2"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/blob2" --encryption-context x=y
same "$(json_get .Plaintext | base64 -d)" "top secret" "re-encrypted round trip"
expect 0 kms generate-data-key --key-id "$KEY" --key-spec AES_256
same "$(json_get .Plaintext | base64 -d | wc -c)" 32 "AES_256 data key"
DK=$(json_get .Plaintext); json_get .CiphertextBlob | base64 -d >"$WORK/dk"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/dk"; same "$(json_get .Plaintext)" "$DK" "data key unwraps"
expect 0 kms generate-data-key-without-plaintext --key-id "$KEY" --number-of-bytes 64
same "$(json_get 'has("Plaintext")')" false "without-plaintext has no Plaintext"
expect 26 kms generate-data-key --key-id "$KEY" --number-of-bytes 2000

# Rotation: old blobs keep decrypting.
expect 0 kms get-key-rotation-status --key-id "$KEY"; same "$(json_get .KeyRotationEnabled)" false "rotation off"
expect 0 kms enable-key-rotation --key-id "$KEY" --rotation-period-in-days 180
expect 0 kms get-key-rotation-status --key-id "$KEY"; same "$(json_get .RotationPeriodInDays)" 180 "period"
expect 26 kms enable-key-rotation --key-id "$KEY" --rotation-period-in-days 30
expect 26 kms enable-key-rotation --key-id alias/app; contains "key id or key ARN" "$ERR"
expect 0 kms describe-key --key-id "$KEY"; M1=$(json_get .KeyMetadata.CurrentKeyMaterialId)
expect 0 kms rotate-key-on-demand --key-id "$KEY"; same "$(json_get .KeyId)" "$KEY" "rotate KeyId"
expect 0 kms describe-key --key-id "$KEY"
CHECKS=$((CHECKS + 1)); [ "$(json_get .KeyMetadata.CurrentKeyMaterialId)" != "$M1" ] || fail "material not rotated"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/dk"; same "$(json_get .KeyMaterialId)" "$M1" "old material"
expect 0 kms disable-key-rotation --key-id "$KEY"

# State transitions and refusals.
expect 0 kms disable-key --key-id "$KEY"
expect 0 kms disable-key --key-id "$KEY"   # idempotent
expect 21 kms encrypt --key-id "$KEY" --plaintext "fileb://$WORK/plain"; contains "$ARN is disabled." "$ERR"
expect 21 kms decrypt --ciphertext-blob "fileb://$WORK/dk"
expect 21 kms create-grant --key-id "$KEY" --grantee-principal nobody --operations Decrypt
expect 0 kms enable-key --key-id "$KEY"
expect 0 kms enable-key --key-id "$KEY"
expect 26 kms schedule-key-deletion --key-id "$KEY" --pending-window-in-days 6
expect 26 kms schedule-key-deletion --key-id "$KEY" --pending-window-in-days 31
expect 0 kms create-alias --alias-name alias/gone --target-key-id "$KEY2"
expect 0 kms encrypt --key-id "$KEY2" --plaintext "fileb://$WORK/plain"
json_get .CiphertextBlob | base64 -d >"$WORK/blob-gone"
expect 0 kms schedule-key-deletion --key-id "$KEY2"
same "$(json_get .PendingWindowInDays)" 30 "default window"; same "$(json_get .KeyState)" PendingDeletion "state"
expect 0 kms schedule-key-deletion --key-id "$KEY" --pending-window-in-days 7
expect 22 kms schedule-key-deletion --key-id "$KEY"; contains "is pending deletion." "$ERR"
expect 22 kms enable-key --key-id "$KEY"
expect 22 kms encrypt --key-id "$KEY" --plaintext "fileb://$WORK/plain"; contains "$ARN is pending deletion." "$ERR"
expect 22 kms decrypt --ciphertext-blob "fileb://$WORK/dk"
expect 22 kms create-alias --alias-name alias/late --target-key-id "$KEY"
expect 0 kms describe-key --key-id "$KEY"; same "$(json_get .KeyMetadata.KeyState)" PendingDeletion "describe pending"
expect 0 kms cancel-key-deletion --key-id "$KEY"; same "$(json_get .KeyId)" "$ARN" "cancel KeyId"
expect 22 kms cancel-key-deletion --key-id "$KEY"; contains "is not pending deletion." "$ERR"
expect 0 kms describe-key --key-id "$KEY"; same "$(json_get .KeyMetadata.KeyState)" Disabled "cancel leaves Disabled"
expect 0 kms enable-key --key-id "$KEY"
expect 0 kms decrypt --ciphertext-blob "fileb://$WORK/dk"

# The deletion window ends (moved into the past): the key, its material and
# its alias are destroyed at the next open; its blobs never unwrap again.
jq --arg id "$KEY2" '(.keys[] | select(.key_id == $id) | .deletion_date) = 1' "$KMS/keys.json" >"$WORK/k.json"
cp "$WORK/k.json" "$KMS/keys.json"
expect 20 kms describe-key --key-id "$KEY2"
expect 20 kms describe-key --key-id alias/gone
expect 24 kms decrypt --ciphertext-blob "fileb://$WORK/blob-gone"
CHECKS=$((CHECKS + 1)); grep -q "$KEY2" "$KMS/keys.json" && fail "purged key still in keys.json"

# Grants and policies (enforcement for other users: kmsd_test.sh).
expect 0 kms create-grant --key-id "$KEY" --grantee-principal postgres --operations Decrypt GenerateDataKey \
  --constraints 'EncryptionContextSubset={cluster=pg}' --name pg
GRANT=$(json_get .GrantId); TOKEN=$(json_get .GrantToken)
expect 0 kms list-grants --key-id "$KEY"
same "$(json_get '.Grants[0].GranteePrincipal')" "arn:cipherfs:iam::$ACCOUNT:user/postgres" "grantee"
same "$(json_get '.Grants[0].Operations')" '["Decrypt","GenerateDataKey"]' "operations"
same "$(json_get '.Grants[0].Constraints.EncryptionContextSubset.cluster')" pg "constraint"
expect 26 kms create-grant --key-id "$KEY" --grantee-principal postgres --operations Sign
expect 0 kms revoke-grant --key-id "$KEY" --grant-id "$GRANT"
expect 20 kms revoke-grant --key-id "$KEY" --grant-id "$GRANT"
expect 0 kms create-grant --key-id "$KEY" --grantee-principal postgres --operations Decrypt
expect 0 kms retire-grant --grant-token "$(json_get .GrantToken)"
expect 33 kms retire-grant --grant-token "$TOKEN"
expect 0 kms get-key-policy --key-id "$KEY"; same "$(json_get .PolicyName)" default "policy name"
same "$(json_get '.Policy | fromjson | .Statement[0].Principal.AWS')" "arn:cipherfs:iam::$ACCOUNT:root" "default policy"
cat >"$WORK/lockout.json" <<EOF
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:cipherfs:iam::$ACCOUNT:user/x"},"Action":"kms:*","Resource":"*"}]}
EOF
expect 29 kms put-key-policy --key-id "$KEY" --policy "file://$WORK/lockout.json"; contains MalformedPolicyDocumentException "$ERR"
expect 26 kms get-key-policy --key-id "$KEY" --policy-name other

# Two processes hammering the key store: no lost update.
hammer() { for i in $(seq 1 15); do "$CIPHERFS" kms create-alias --alias-name "alias/h$1-$i" --target-key-id "$KEY" || echo x; done; }
hammer a >"$WORK/ha" 2>&1 & hammer b >"$WORK/hb" 2>&1 & wait
expect 0 kms list-aliases --key-id "$KEY"
same "$(json_get '[.Aliases[].AliasName | select(startswith("alias/h"))] | length')" 30 "aliases from two processes"

# Audit: every call is a line; filters; --verify catches tampering.
expect 0 kms audit --operation Decrypt --outcome InvalidCiphertextException
CHECKS=$((CHECKS + 1)); [ "$(json_get '.Events | length')" -ge 2 ] || fail "audit filter found too few Decrypt failures"
same "$(json_get '.Events[0].encryption_context.purpose')" test "audit records the context"
same "$(json_get '.Events[0].user_name')" "$(id -un)" "audit records the user"
expect 0 kms audit --key-id "$KEY" --operation RotateKeyOnDemand; same "$(json_get '.Events | length')" 1 "filter by key"
CHECKS=$((CHECKS + 1)); grep -q "top secret" "$KMS/audit.log" && fail "plaintext in the audit log"
expect 0 kms audit --verify; contains '"Verified": true' "$OUT"
cp "$KMS/audit.log" "$WORK/audit.good"
tamper() {  # tamper NAME SED-OR-CMD: the log must fail --verify (exit 7), then is restored
  eval "$2"
  expect 7 kms audit --verify; contains "does not verify" "$ERR" "$1"
  cp "$WORK/audit.good" "$KMS/audit.log"
}
tamper edit "sed -i '3s/\"Success\"/\"Failure\"/' '$KMS/audit.log'"
tamper remove "sed -i '4d' '$KMS/audit.log'"
tamper reorder "awk 'NR==5{l=\$0; next} NR==6{print; print l; next} {print}' '$WORK/audit.good' >'$KMS/audit.log'"
tamper truncate "head -n -2 '$WORK/audit.good' >'$KMS/audit.log'"
tamper cut "head -c -40 '$WORK/audit.good' >'$KMS/audit.log'"
expect 0 kms audit --verify

# Passphrase root key (another home).
export CIPHERFS_HOME=$WORK/home2
printf 'correct horse battery staple\n' >"$WORK/pass"; chmod 600 "$WORK/pass"
CIPHERFS_KMS_PASSPHRASE_FILE=$WORK/pass expect 0 kms create-key --description p
PK=$(json_get .KeyMetadata.KeyId)
CHECKS=$((CHECKS + 1)); [ -e "$WORK/home2/regions/local-1/kms/root.key" ] && fail "root.key written in passphrase mode"
CIPHERFS_KMS_PASSPHRASE_FILE=$WORK/pass expect 0 kms encrypt --key-id "$PK" --plaintext "fileb://$WORK/plain"
expect 5 kms describe-key --key-id "$PK"; contains "comes from a passphrase" "$ERR"
printf 'wrong horse battery staple\n' >"$WORK/bad"
CIPHERFS_KMS_PASSPHRASE_FILE=$WORK/bad expect 6 kms describe-key --key-id "$PK"; contains "wrong KMS passphrase" "$ERR"

finish
