// LocalKeyManager: the KMS of one region, in process, over the files of
// region/kms/: root.key (root_key.h), keys.json (key_store.h) and audit.log
// (audit_log.h). See key_manager.h for the contract of each call.
// Thread safety: all methods may be called concurrently, also from several
// processes on the same region (the key store's flock serializes changes).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "crypto/aead.h"
#include "keymgr/audit_log.h"
#include "keymgr/key_manager.h"
#include "keymgr/key_store.h"

namespace cfs::keymgr {

struct LocalKeyManagerOptions {
  std::string kms_dir;   // region/kms; created (mode 0700) if missing
  std::string region;
  std::string account;   // recorded when the key store is first created
  uid_t caller_uid = 0;  // for the audit log
};

class LocalKeyManager final : public KeyManager {
 public:
  // Loads the root key (creating it when the region has no keys yet).
  // Errors: those of LoadOrCreateRootKey; DataLoss when keys exist but the
  // root key is gone; FailedPrecondition when the key store belongs to
  // another region.
  static Result<std::unique_ptr<LocalKeyManager>> Open(const LocalKeyManagerOptions& options);

  std::string region() const override { return options_.region; }
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

 private:
  LocalKeyManager(const LocalKeyManagerOptions& options, const SecretBytes& root_key);

  // The store's data, with region and account filled in for a new store.
  Result<KeyStoreData> ReadStore();
  // Resolves any identifier form (or only key id / key ARN when !allow_alias)
  // to a key, creating the managed alias/aws/rds key on first use.
  Result<KeyRecord> ResolveKey(const std::string& identifier, bool allow_alias);
  Status EnsureManagedKey();
  Result<KeyRecord> NewKey(const KeyStoreData& data, KeyManagerType manager, std::string description);
  Result<SecretBytes> UnwrapMaterial(const KeyRecord& key, uint32_t version) const;
  Status SetState(const std::string& key_id_or_arn, KeyState state, const char* operation);
  Result<Bytes> SealUnder(const KeyRecord& key, const EncryptionContext& context, ByteView plaintext);
  Result<SecretBytes> OpenBlob(ByteView blob, const EncryptionContext& context, KeyRecord* key_out);
  Status Audit(const char* operation, const std::string& key_arn, const EncryptionContext& context,
               const Status& outcome);
  KeyMetadata Metadata(const KeyRecord& key, const std::string& account) const;

  LocalKeyManagerOptions options_;
  crypto::GcmKey root_;
  KeyStore store_;
  AuditLog audit_;
};

// Usable for cryptographic operations: OK when Enabled, DisabledException or
// KMSInvalidStateException otherwise (messages as the cloud KMS).
Status CheckUsable(const KeyRecord& key);

}  // namespace cfs::keymgr
