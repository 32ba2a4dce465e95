// LocalKeyManager: the KMS of one region, in process, over the files of
// region/kms/: root.key (root_key.h), keys.json (key_store.h) and audit.log
// (audit_log.h). See key_manager.h for the contract of each call.
// Thread safety: all methods may be called concurrently, also from several
// processes on the same region (the key store's flock serializes changes).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "keymgr/access_policy.h"
#include "keymgr/audit_log.h"
#include "keymgr/key_manager.h"
#include "keymgr/key_store.h"

namespace cfs::keymgr {

struct LocalKeyManagerOptions {
  std::string kms_dir;   // region/kms; created (mode 0700) if missing
  std::string region;
  std::string account;   // recorded when the key store is first created
  uid_t caller_uid = 0;  // for the audit log and access checks (see `caller`)
  // The caller as policies and grants see it. Unset: derived from caller_uid
  // (user name from the passwd database; the account root when caller_uid
  // is 0 or the effective uid of this process, the key store's owner).
  std::optional<Caller> caller;
  // Unix seconds now (tests move time to expire deletion windows).
  std::function<int64_t()> clock;
  // The root key source: the owner-only root.key file (default) or, when
  // set, a passphrase (scrypt; root_key.h).
  std::optional<std::string> passphrase;
  // scrypt cost of a new passphrase root key (tests lower it; the default
  // is N=2^17, r=8, p=1).
  crypto::ScryptParams scrypt_for_new_root;
};

class LocalKeyManager final : public KeyManager {
 public:
  // Loads the root key (creating it when the region has no keys yet), then
  // does what is due: purges keys whose deletion window has ended (key,
  // material, aliases and grants destroyed; audited as DeleteKey) and
  // rotates keys whose automatic rotation date has come (RotateKey).
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

  // What Open does after loading: purge expired keys, run due rotations
  // (kmsd calls it periodically).
  Status RunMaintenance() { return Maintain(); }

  // The caller of the next calls (kmsd serves each request as its peer).
  void SetCaller(const Caller& caller) { caller_ = caller; }
  const Caller& caller() const { return caller_; }
  Result<AuditVerifyReport> VerifyAuditLog() override;
  Result<std::string> ReadAuditLog() override;
  const std::string& audit_path() const { return audit_.path(); }

 private:
  LocalKeyManager(const LocalKeyManagerOptions& options, const SecretBytes& root_key);

  // The store's data, with region and account filled in for a new store.
  Result<KeyStoreData> ReadStore();
  // Resolves any identifier form (or only key id / key ARN when !allow_alias)
  // to a key, creating the managed alias/aws/rds key on first use.
  Result<KeyRecord> ResolveKey(const std::string& identifier, bool allow_alias);
  // ResolveKey, then Authorize the caller for `operation` (grant operation
  // name) with `context` (null for calls without one).
  Result<KeyRecord> ResolveFor(const std::string& identifier, bool allow_alias, const char* operation,
                               const EncryptionContext* context = nullptr);
  // Runs `change` on the stored record of `key` under the store lock
  // (NotFoundException if it is gone meanwhile).
  Status ChangeKey(const KeyRecord& key, const std::function<Status(KeyRecord*, KeyStoreData*)>& change);
  // AccessDeniedException unless the caller is the account root (calls that
  // name no key: CreateKey, ListKeys, ListAliases).
  Status RequireAccountRoot(const char* action) const;
  Status RefuseManaged(const KeyRecord& key) const;
  Result<GenerateDataKeyResult> MakeDataKey(const char* operation, const std::string& key_identifier,
                                            const EncryptionContext& context, size_t number_of_bytes);
  // Purges expired keys and runs due automatic rotations (see Open).
  Status Maintain();
  Status AddMaterialVersion(KeyRecord* key);
  int64_t Now() const;
  Status EnsureManagedKey();
  Result<KeyRecord> NewKey(const KeyStoreData& data, KeyManagerType manager, std::string description);
  Result<SecretBytes> UnwrapMaterial(const KeyRecord& key, uint32_t version) const;
  Status SetState(const std::string& key_id_or_arn, KeyState state, const char* operation);
  Result<Bytes> SealUnder(const KeyRecord& key, const EncryptionContext& context, ByteView plaintext);
  // Opens a blob after authorizing the caller for `operation` on its key.
  Result<SecretBytes> OpenBlob(ByteView blob, const EncryptionContext& context, KeyRecord* key_out,
                               const char* operation);
  Status Audit(const char* operation, const std::string& key_arn, const EncryptionContext& context,
               const Status& outcome, bool service_event = false);
  KeyMetadata Metadata(const KeyRecord& key, const std::string& account) const;

  LocalKeyManagerOptions options_;
  Caller caller_;
  crypto::GcmKey root_;
  KeyStore store_;
  AuditLog audit_;
};

// The caller `uid` as policies see it (user name from the passwd database;
// the account root for uid 0 and this process's effective uid).
Caller CallerForUid(uid_t uid);

// Usable for cryptographic operations: OK when Enabled, DisabledException or
// KMSInvalidStateException otherwise (messages as the cloud KMS).
Status CheckUsable(const KeyRecord& key);

}  // namespace cfs::keymgr
