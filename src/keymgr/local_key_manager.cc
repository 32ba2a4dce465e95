#include "keymgr/local_key_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "crypto/random.h"
#include "keymgr/ciphertext_blob.h"
#include "keymgr/kms_error.h"
#include "keymgr/root_key.h"

namespace cfs::keymgr {
namespace {

constexpr char kManagedDescription[] = "Default key that protects my RDS database volumes when no other key is defined";

Bytes MaterialAad(const std::string& key_arn, uint32_t version) {
  Bytes aad;
  AppendLengthPrefixed(&aad, AsBytes("cipherfs-kms-material"));
  AppendLengthPrefixed(&aad, AsBytes(key_arn));
  AppendU32Be(&aad, version);
  return aad;
}

Status MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno(errno, "mkdir " + prefix);
  }
  return Status::Ok();
}

const KeyRecord* FindByAlias(const KeyStoreData& data, const std::string& alias) {
  const AliasRecord* a = data.FindAlias(alias);
  return a ? data.FindKey(a->target_key_id) : nullptr;
}

}  // namespace

Status CheckUsable(const KeyRecord& key) {
  switch (key.state) {
    case KeyState::kEnabled: return Status::Ok();
    case KeyState::kDisabled: return KmsError(KmsErrorType::kDisabled, key.arn + " is disabled.");
    case KeyState::kPendingDeletion:
      return KmsError(KmsErrorType::kInvalidState, key.arn + " is pending deletion.");
  }
  return KmsError(KmsErrorType::kInvalidState, key.arn + " is not usable.");
}

Result<std::unique_ptr<LocalKeyManager>> LocalKeyManager::Open(const LocalKeyManagerOptions& options) {
  CFS_RETURN_IF_ERROR(MakeDirs(options.kms_dir));
  KeyStore store(options.kms_dir);
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, store.Read());
  if (!data.region.empty() && data.region != options.region) {
    return FailedPrecondition(fmt::format("key store {} belongs to region {}, not {}", store.path(), data.region,
                                          options.region));
  }
  std::string root_path = options.kms_dir + "/root.key";
  Result<SecretBytes> root = LoadOrCreateRootKey(root_path, /*create=*/data.keys.empty());
  if (!root.ok() && root.status().code() == Code::kNotFound) {
    return DataLoss(fmt::format("root key {} is missing but the region has keys; restore it from your backup",
                                root_path));
  }
  if (!root.ok()) return root.status();
  return std::unique_ptr<LocalKeyManager>(new LocalKeyManager(options, *root));
}

LocalKeyManager::LocalKeyManager(const LocalKeyManagerOptions& options, const SecretBytes& root_key)
    : options_(options), root_(root_key), store_(options.kms_dir), audit_(options.kms_dir + "/audit.log") {}

Result<KeyStoreData> LocalKeyManager::ReadStore() {
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, store_.Read());
  if (data.region.empty()) {
    data.region = options_.region;
    data.account = options_.account;
  }
  return data;
}

Result<KeyRecord> LocalKeyManager::NewKey(const KeyStoreData& data, KeyManagerType manager,
                                          std::string description) {
  if (description.size() > 8192) return KmsError(KmsErrorType::kValidation, "Description exceeds 8192 characters");
  KeyRecord key;
  key.key_id = NewUuidV4();
  key.arn = KeyArn(data.region, data.account, key.key_id);
  key.description = std::move(description);
  key.creation_date = std::time(nullptr);
  key.manager = manager;
  key.current_version = 1;
  MaterialVersion v;
  v.version = 1;
  v.material_id = HexEncode(crypto::RandomArray<32>());
  v.created = key.creation_date;
  SecretBytes material = crypto::RandomSecret(32);
  CFS_ASSIGN_OR_RETURN(v.wrapped, root_.SealBlob(MaterialAad(key.arn, 1), material.UnsafeSpan()));
  key.versions.push_back(std::move(v));
  return key;
}

Status LocalKeyManager::EnsureManagedKey() {
  return store_.Update([&](KeyStoreData* data) -> Status {
    if (data->region.empty()) {
      data->region = options_.region;
      data->account = options_.account;
    }
    if (data->FindAlias(std::string(kManagedRdsAlias)) != nullptr) return Status::Ok();
    CFS_ASSIGN_OR_RETURN(KeyRecord key, NewKey(*data, KeyManagerType::kAws, kManagedDescription));
    data->aliases.push_back({std::string(kManagedRdsAlias), key.key_id, key.creation_date, key.creation_date});
    data->keys.push_back(std::move(key));
    return Status::Ok();
  });
}

Result<KeyRecord> LocalKeyManager::ResolveKey(const std::string& identifier, bool allow_alias) {
  CFS_ASSIGN_OR_RETURN(KeyRef ref, ParseKeyIdentifier(identifier));
  if (ref.is_alias() && !allow_alias) {
    return KmsError(KmsErrorType::kValidation, "this call takes a key id or key ARN, not an alias");
  }
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, ReadStore());
  if (!ref.region.empty() && (ref.region != data.region || ref.account != data.account)) {
    return KmsError(KmsErrorType::kNotFound,
                    fmt::format("'{}' does not exist in region {} (account {})", identifier, data.region, data.account));
  }
  const KeyRecord* key = nullptr;
  if (ref.is_alias()) {
    if (ref.alias_name == kManagedRdsAlias && data.FindAlias(ref.alias_name) == nullptr) {
      CFS_RETURN_IF_ERROR(EnsureManagedKey());
      CFS_ASSIGN_OR_RETURN(data, ReadStore());
    }
    key = FindByAlias(data, ref.alias_name);
    if (key == nullptr) {
      return KmsError(KmsErrorType::kNotFound,
                      fmt::format("Alias {} is not found.", AliasArn(data.region, data.account, ref.alias_name)));
    }
  } else {
    key = data.FindKey(ref.key_id);
    if (key == nullptr) {
      return KmsError(KmsErrorType::kNotFound,
                      fmt::format("Key '{}' does not exist", KeyArn(data.region, data.account, ref.key_id)));
    }
  }
  return *key;
}

Result<SecretBytes> LocalKeyManager::UnwrapMaterial(const KeyRecord& key, uint32_t version) const {
  const MaterialVersion* v = key.FindVersion(version);
  if (v == nullptr) {
    return KmsError(KmsErrorType::kInvalidCiphertext,
                    fmt::format("key material version {} of {} does not exist", version, key.arn));
  }
  Result<SecretBytes> material = root_.OpenBlob(MaterialAad(key.arn, version), v->wrapped);
  if (!material.ok()) {
    return DataLoss(fmt::format("key material of {} does not verify under the region root key "
                                "(wrong root.key or a tampered key store)",
                                key.arn));
  }
  return material;
}

KeyMetadata LocalKeyManager::Metadata(const KeyRecord& key, const std::string& account) const {
  KeyMetadata m;
  m.account_id = account;
  m.key_id = key.key_id;
  m.arn = key.arn;
  m.creation_date = key.creation_date;
  m.enabled = key.state == KeyState::kEnabled;
  m.description = key.description;
  m.key_state = key.state;
  m.key_manager = key.manager;
  m.deletion_date = key.deletion_date;
  const MaterialVersion* v = key.FindVersion(key.current_version);
  if (v != nullptr) m.current_key_material_id = v->material_id;
  return m;
}

Status LocalKeyManager::Audit(const char* operation, const std::string& key_arn, const EncryptionContext& context,
                              const Status& outcome) {
  AuditEvent e;
  e.operation = operation;
  e.caller_uid = options_.caller_uid;
  e.key_arn = key_arn;
  e.encryption_context = context;
  auto kms = KmsErrorOf(outcome);
  e.outcome = outcome.ok() ? "Success" : kms ? std::string(KmsErrorName(*kms)) : std::string(CodeName(outcome.code()));
  e.request_id = NewUuidV4();
  Status s = audit_.Append(e);
  if (!s.ok() && outcome.ok()) return s.WithContext("the call was not recorded in the audit log");
  return outcome;
}

}  // namespace cfs::keymgr
