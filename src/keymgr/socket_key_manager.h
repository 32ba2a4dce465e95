// SocketKeyManager: the KeyManager of a region served by a kmsd
// (kms_server.h), for callers that may not read the key store themselves
// (a database user mounting its own cluster). One connection per call;
// the kmsd decides what the caller may do from its peer credentials.
// A kmsd that can't be reached is Unavailable (not a KMS error), so a mount's
// key check treats it as transient.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "keymgr/key_manager.h"

namespace cfs::keymgr {

class SocketKeyManager final : public KeyManager {
 public:
  SocketKeyManager(std::string socket_path, std::string region)
      : socket_path_(std::move(socket_path)), region_(std::move(region)) {}

  std::string region() const override { return region_; }
  Result<KeyMetadata> CreateKey(const CreateKeyRequest& request) override;
  Result<KeyMetadata> DescribeKey(const std::string& key_identifier) override;
  Result<std::vector<KeyListEntry>> ListKeys() override;
  Status EnableKey(const std::string& key_id_or_arn) override;
  Status DisableKey(const std::string& key_id_or_arn) override;
  Status CreateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn) override;
  Result<std::vector<AliasListEntry>> ListAliases(const std::optional<std::string>& key_id_or_arn) override;
  Result<EncryptResult> Encrypt(const std::string& key_identifier, const SecretBytes& plaintext,
                                const EncryptionContext& context) override;
  Result<GenerateDataKeyResult> GenerateDataKey(const std::string& key_identifier, const EncryptionContext& context,
                                                size_t number_of_bytes) override;
  Result<DecryptResult> Decrypt(ByteView ciphertext_blob, const EncryptionContext& context,
                                const std::optional<std::string>& key_identifier) override;
  Result<ReEncryptResult> ReEncrypt(ByteView ciphertext_blob, const EncryptionContext& source_context,
                                    const std::string& destination_key_identifier,
                                    const EncryptionContext& destination_context) override;
  Status UpdateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn) override;
  Status DeleteAlias(const std::string& alias_name) override;
  Result<KeyMetadata> ScheduleKeyDeletion(const std::string& key_id_or_arn, int pending_window_in_days) override;
  Result<KeyMetadata> CancelKeyDeletion(const std::string& key_id_or_arn) override;
  Status EnableKeyRotation(const std::string& key_id_or_arn, std::optional<int> rotation_period_in_days) override;
  Status DisableKeyRotation(const std::string& key_id_or_arn) override;
  Result<RotationStatus> GetKeyRotationStatus(const std::string& key_id_or_arn) override;
  Result<std::string> RotateKeyOnDemand(const std::string& key_id_or_arn) override;
  Result<GenerateDataKeyResult> GenerateDataKeyWithoutPlaintext(const std::string& key_identifier,
                                                                const EncryptionContext& context,
                                                                size_t number_of_bytes) override;
  Result<CreateGrantResult> CreateGrant(const CreateGrantRequest& request) override;
  Result<std::vector<GrantListEntry>> ListGrants(const std::string& key_id_or_arn) override;
  Status RevokeGrant(const std::string& key_id_or_arn, const std::string& grant_id) override;
  Status RetireGrant(const RetireGrantRequest& request) override;
  Result<std::string> GetKeyPolicy(const std::string& key_id_or_arn) override;
  Status PutKeyPolicy(const std::string& key_id_or_arn, const std::string& policy) override;
  Result<std::string> ReadAuditLog() override;
  Result<AuditVerifyReport> VerifyAuditLog() override;

 private:
  // Sends {"Operation": op, "Region": region, ...params} and returns the
  // response's Result (or its error as a Status).
  Result<nlohmann::json> Call(const std::string& op, nlohmann::json params);
  Result<nlohmann::json> Exchange(const std::string& request);

  std::string socket_path_;
  std::string region_;
};

}  // namespace cfs::keymgr
