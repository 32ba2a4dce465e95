// `cipherfs kms ...`: the region's key manager with the cloud CLI's option
// names and JSON output shapes (KeyMetadata, Keys, Aliases, CiphertextBlob,
// Grants...). Output is JSON unless --output text. Binary inputs are
// `fileb://PATH` (raw bytes) or base64 text; binary outputs are base64.
// Thread safety: one command per process.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/context.h"

namespace cfs::cli {

// Every option of every kms subcommand (each uses a few).
struct KmsArgs {
  std::string key_id, alias_name, target_key_id, description, grant_id, policy;
  std::optional<std::string> opt_key_id;  // optional --key-id (decrypt, list-aliases, retire-grant)
  std::optional<std::string> source_key_id, grant_token, name, retiring_principal, key_spec, constraints;
  std::string destination_key_id, grantee_principal, plaintext, ciphertext_blob, policy_name = "default";
  std::string encryption_algorithm = "SYMMETRIC_DEFAULT";
  std::optional<std::string> encryption_context, source_encryption_context, destination_encryption_context;
  std::vector<std::string> operations;
  std::optional<int> pending_window_in_days, rotation_period_in_days, number_of_bytes;
  std::optional<std::string> query;  // --query FIELD: print that field only (raw in text mode)
  // kms audit
  std::optional<std::string> operation, outcome, user;
  bool verify = false;
};

Status KmsCreateKey(Context& ctx, const KmsArgs& a);
Status KmsDescribeKey(Context& ctx, const KmsArgs& a);
Status KmsListKeys(Context& ctx, const KmsArgs& a);
Status KmsListAliases(Context& ctx, const KmsArgs& a);
Status KmsCreateAlias(Context& ctx, const std::string& alias_name, const std::string& target_key_id);
Status KmsEnableKey(Context& ctx, const std::string& key_id);
Status KmsDisableKey(Context& ctx, const std::string& key_id);
Status KmsUpdateAlias(Context& ctx, const KmsArgs& a);
Status KmsDeleteAlias(Context& ctx, const KmsArgs& a);
Status KmsScheduleKeyDeletion(Context& ctx, const KmsArgs& a);
Status KmsCancelKeyDeletion(Context& ctx, const KmsArgs& a);
Status KmsEnableKeyRotation(Context& ctx, const KmsArgs& a);
Status KmsDisableKeyRotation(Context& ctx, const KmsArgs& a);
Status KmsRotateKeyOnDemand(Context& ctx, const KmsArgs& a);
Status KmsGetKeyRotationStatus(Context& ctx, const KmsArgs& a);

// kms_crypto_commands.cc
Status KmsEncrypt(Context& ctx, const KmsArgs& a);
Status KmsDecrypt(Context& ctx, const KmsArgs& a);
Status KmsReEncrypt(Context& ctx, const KmsArgs& a);
Status KmsGenerateDataKey(Context& ctx, const KmsArgs& a, bool with_plaintext);

// kms_grant_commands.cc
Status KmsCreateGrant(Context& ctx, const KmsArgs& a);
Status KmsListGrants(Context& ctx, const KmsArgs& a);
Status KmsRevokeGrant(Context& ctx, const KmsArgs& a);
Status KmsRetireGrant(Context& ctx, const KmsArgs& a);
Status KmsGetKeyPolicy(Context& ctx, const KmsArgs& a);
Status KmsPutKeyPolicy(Context& ctx, const KmsArgs& a);
Status KmsAudit(Context& ctx, const KmsArgs& a);

nlohmann::json KeyMetadataJson(const keymgr::KeyMetadata& m);

// Prints `j` (JSON mode) or `text`; with --query, only that field.
Status KmsPrint(Context& ctx, const KmsArgs& a, const nlohmann::json& j, const std::string& text);
// An encryption context from `{"k":"v"}` JSON or `k=v,k2=v2` shorthand.
Result<keymgr::EncryptionContext> ParseEncryptionContextArg(const std::optional<std::string>& text);
// A binary argument: fileb://PATH (raw bytes, up to 64 KiB) or base64 text.
Result<Bytes> ReadBinaryArg(const std::string& option, const std::string& value);

}  // namespace cfs::cli
