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
};

}  // namespace cfs::keymgr
