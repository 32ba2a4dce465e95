// KeyManager: the KMS of one region as the rest of cipherfs sees it, with
// the calls, identifier forms and error names of the cloud KMS
// (reference/kms-semantics.md). LocalKeyManager (local_key_manager.h) is the
// in-process implementation; issue 4 adds a kmsd socket client behind the
// same interface, and further calls (rotation, deletion, grants, policies)
// as new methods.
//
// Key identifiers: where a key is *used* (Encrypt, GenerateDataKey,
// ReEncrypt destination, DescribeKey, Decrypt's optional key) any of key id,
// key ARN, alias name or alias ARN is accepted; where a key is *managed*
// (EnableKey, DisableKey, CreateAlias target) only key id or key ARN.
// Referring to alias/aws/rds creates the region's managed key on first use.
//
// Errors are Statuses carrying a KMS error name (keymgr/kms_error.h):
// NotFoundException, DisabledException, KMSInvalidStateException,
// AccessDeniedException, InvalidCiphertextException, AlreadyExistsException,
// ValidationException, IncorrectKeyException; plus ordinary I/O or DataLoss
// statuses when the key store itself can't be read.
// Thread safety: implementations may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"
#include "common/secret_bytes.h"
#include "keymgr/audit_log.h"
#include "keymgr/identifiers.h"
#include "keymgr/key_store.h"

namespace cfs::keymgr {

struct KeyMetadata {
  std::string account_id;
  std::string key_id;
  std::string arn;
  int64_t creation_date = 0;  // unix seconds
  bool enabled = false;       // state == Enabled
  std::string description;
  KeyState key_state = KeyState::kEnabled;
  KeyManagerType key_manager = KeyManagerType::kCustomer;
  std::optional<int64_t> deletion_date;
  std::string current_key_material_id;
  // Fixed for now: KeyUsage ENCRYPT_DECRYPT, KeySpec SYMMETRIC_DEFAULT,
  // Origin AWS_KMS, EncryptionAlgorithms [SYMMETRIC_DEFAULT].
};

struct KeyListEntry {
  std::string key_id;
  std::string key_arn;
};

struct AliasListEntry {
  std::string alias_name;
  std::string alias_arn;
  std::optional<std::string> target_key_id;  // unset for a predefined managed alias not yet created
  int64_t creation_date = 0;
  int64_t last_updated_date = 0;
};

struct CreateKeyRequest {
  std::string description;
};

struct EncryptResult {
  Bytes ciphertext_blob;
  std::string key_arn;          // the key actually used
  std::string key_material_id;
};

struct GenerateDataKeyResult {
  SecretBytes plaintext;
  Bytes ciphertext_blob;
  std::string key_arn;
  std::string key_material_id;
};

struct DecryptResult {
  SecretBytes plaintext;
  std::string key_arn;
  std::string key_material_id;
};

struct ReEncryptResult {
  Bytes ciphertext_blob;
  std::string source_key_arn;
  std::string key_arn;  // destination
  std::string source_key_material_id;
  std::string destination_key_material_id;
};

struct RotationStatus {
  std::string key_id;  // ARN
  bool rotation_enabled = false;
  std::optional<uint32_t> rotation_period_days;
  std::optional<int64_t> next_rotation_date;
  std::optional<int64_t> on_demand_rotation_start_date;
};

struct CreateGrantRequest {
  std::string key_id;  // key id or key ARN
  std::string grantee_principal;  // a local user name or its principal ARN
  std::string retiring_principal;  // optional
  std::vector<std::string> operations;
  std::optional<EncryptionContext> ec_equals;  // Constraints.EncryptionContextEquals
  std::optional<EncryptionContext> ec_subset;  // Constraints.EncryptionContextSubset
  std::string name;                            // optional; makes retries idempotent
};

struct CreateGrantResult {
  std::string grant_id;
  std::string grant_token;
};

struct GrantListEntry {
  std::string key_id;  // ARN
  std::string grant_id;
  std::string name;
  int64_t creation_date = 0;
  std::string grantee_principal;
  std::string retiring_principal;
  std::string issuing_account;
  std::vector<std::string> operations;
  std::optional<EncryptionContext> ec_equals;
  std::optional<EncryptionContext> ec_subset;
};

// RetireGrant: by token, or by key (id or ARN) and grant id.
struct RetireGrantRequest {
  std::optional<std::string> grant_token;
  std::optional<std::string> key_id;
  std::optional<std::string> grant_id;
};

class KeyManager {
 public:
  virtual ~KeyManager() = default;

  virtual std::string region() const = 0;

  // A new Enabled customer key with one material version.
  virtual Result<KeyMetadata> CreateKey(const CreateKeyRequest& request) = 0;
  // Metadata of a key in any state; NotFoundException if there is none.
  virtual Result<KeyMetadata> DescribeKey(const std::string& key_identifier) = 0;
  // All keys of the region, in creation order.
  virtual Result<std::vector<KeyListEntry>> ListKeys() = 0;
  // Enabled <-> Disabled (idempotent). KMSInvalidStateException when the key
  // is pending deletion; ValidationException for the managed key.
  virtual Status EnableKey(const std::string& key_id_or_arn) = 0;
  virtual Status DisableKey(const std::string& key_id_or_arn) = 0;

  // A customer alias (alias/ prefix, alias/aws/ reserved) for an existing
  // key. AlreadyExistsException if the alias exists.
  virtual Status CreateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn) = 0;
  // All aliases (with `key_id_or_arn`: only those of that key), including
  // the predefined alias/aws/rds without a target before its first use.
  virtual Result<std::vector<AliasListEntry>> ListAliases(const std::optional<std::string>& key_id_or_arn) = 0;

  // Encrypts up to 4096 bytes under the key's current material.
  virtual Result<EncryptResult> Encrypt(const std::string& key_identifier, const SecretBytes& plaintext,
                                        const EncryptionContext& context) = 0;
  // A fresh random data key of `number_of_bytes` (1..1024; 32 for AES-256)
  // in plaintext and wrapped.
  virtual Result<GenerateDataKeyResult> GenerateDataKey(const std::string& key_identifier,
                                                        const EncryptionContext& context,
                                                        size_t number_of_bytes = 32) = 0;
  // Decrypts a blob under the key and material version it names, with the
  // exact context it was made with. With `key_identifier`, the blob's key
  // must be that key (IncorrectKeyException otherwise).
  virtual Result<DecryptResult> Decrypt(ByteView ciphertext_blob, const EncryptionContext& context,
                                        const std::optional<std::string>& key_identifier = std::nullopt) = 0;
  // Decrypts and re-encrypts inside the key manager (the plaintext never
  // leaves it): to another key and/or another context.
  virtual Result<ReEncryptResult> ReEncrypt(ByteView ciphertext_blob, const EncryptionContext& source_context,
                                            const std::string& destination_key_identifier,
                                            const EncryptionContext& destination_context) = 0;

  // --- The rest of the key lifecycle (issue 4). Defaults answer
  // UnsupportedOperationException so that test doubles need not implement
  // them. key_id_or_arn: key id or key ARN only (aliases: ValidationException).

  // Points an existing customer alias at another key (AlreadyExists rules
  // as CreateAlias; KMSInvalidStateException if the target is pending deletion).
  virtual Status UpdateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn);
  virtual Status DeleteAlias(const std::string& alias_name);
  // Enabled/Disabled -> PendingDeletion for 7..30 days (the key and its
  // material are destroyed when the window ends); returns the new metadata.
  virtual Result<KeyMetadata> ScheduleKeyDeletion(const std::string& key_id_or_arn, int pending_window_in_days);
  // PendingDeletion -> Disabled.
  virtual Result<KeyMetadata> CancelKeyDeletion(const std::string& key_id_or_arn);
  // Automatic rotation every `rotation_period_in_days` (90..2560, default 365).
  virtual Status EnableKeyRotation(const std::string& key_id_or_arn, std::optional<int> rotation_period_in_days);
  virtual Status DisableKeyRotation(const std::string& key_id_or_arn);
  virtual Result<RotationStatus> GetKeyRotationStatus(const std::string& key_id_or_arn);
  // A new material version at once (at most 25 per key); returns the key id.
  virtual Result<std::string> RotateKeyOnDemand(const std::string& key_id_or_arn);
  // As GenerateDataKey without the plaintext (its own grant operation).
  virtual Result<GenerateDataKeyResult> GenerateDataKeyWithoutPlaintext(const std::string& key_identifier,
                                                                        const EncryptionContext& context,
                                                                        size_t number_of_bytes = 32);
  virtual Result<CreateGrantResult> CreateGrant(const CreateGrantRequest& request);
  virtual Result<std::vector<GrantListEntry>> ListGrants(const std::string& key_id_or_arn);
  virtual Status RevokeGrant(const std::string& key_id_or_arn, const std::string& grant_id);
  virtual Status RetireGrant(const RetireGrantRequest& request);
  // The key policy document (PolicyName must be "default").
  virtual Result<std::string> GetKeyPolicy(const std::string& key_id_or_arn);
  virtual Status PutKeyPolicy(const std::string& key_id_or_arn, const std::string& policy);

  // The region's audit log (account root only): its text, and the check of
  // its hash chain and sealed head (audit_log.h).
  virtual Result<std::string> ReadAuditLog();
  virtual Result<AuditVerifyReport> VerifyAuditLog();
};

}  // namespace cfs::keymgr
