#include "keymgr/local_key_manager.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "crypto/kdf.h"
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

std::string UserNameOf(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) return found->pw_name;
  return fmt::format("uid-{}", uid);
}

// The MAC key sealing audit.head: HKDF of the root key (never the root key itself).
std::shared_ptr<const crypto::MacKey> AuditHeadKey(const SecretBytes& root) {
  Result<SecretBytes> k = crypto::HkdfSha256(root, {}, AsBytes(std::string_view("cipherfs-kms audit head")), 32);
  if (!k.ok()) return nullptr;
  return std::make_shared<const crypto::MacKey>(*k);
}

Result<SecretBytes> LoadRoot(const LocalKeyManagerOptions& options, bool create) {
  std::string file = options.kms_dir + "/root.key";
  std::string params = options.kms_dir + "/root.scrypt";
  struct stat st;
  bool has_file = ::lstat(file.c_str(), &st) == 0;
  bool has_params = ::lstat(params.c_str(), &st) == 0;
  if (options.passphrase) {
    if (has_file) {
      return FailedPrecondition(fmt::format("the root key of {} is the file root.key, not a passphrase; unset "
                                            "CIPHERFS_KMS_PASSPHRASE_FILE",
                                            options.kms_dir));
    }
    return LoadOrCreatePassphraseRootKey(params, *options.passphrase, create, options.scrypt_for_new_root);
  }
  if (has_params) {
    return FailedPrecondition(fmt::format("the root key of {} comes from a passphrase; set "
                                          "CIPHERFS_KMS_PASSPHRASE_FILE (or use kmsd --passphrase-file)",
                                          options.kms_dir));
  }
  return LoadOrCreateRootKey(file, create);
}

}  // namespace

Caller CallerForUid(uid_t uid) {
  Caller c;
  c.uid = uid;
  c.user_name = UserNameOf(uid);
  c.account_root = uid == 0 || uid == ::geteuid();
  return c;
}

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
  Result<SecretBytes> root = LoadRoot(options, /*create=*/data.keys.empty());
  if (!root.ok() && root.status().code() == Code::kNotFound) {
    return DataLoss(fmt::format("root key of {} is missing but the region has keys; restore root.key (or "
                                "root.scrypt) from your backup",
                                options.kms_dir));
  }
  if (!root.ok()) return root.status();
  std::unique_ptr<LocalKeyManager> kms(new LocalKeyManager(options, *root));
  CFS_RETURN_IF_ERROR(kms->Maintain());
  return kms;
}

LocalKeyManager::LocalKeyManager(const LocalKeyManagerOptions& options, const SecretBytes& root_key)
    : options_(options),
      caller_(options.caller ? *options.caller : CallerForUid(options.caller_uid)),
      root_(root_key),
      store_(options.kms_dir),
      audit_(options.kms_dir + "/audit.log", AuditHeadKey(root_key)) {}

int64_t LocalKeyManager::Now() const { return options_.clock ? options_.clock() : std::time(nullptr); }

Result<KeyRecord> LocalKeyManager::ResolveFor(const std::string& identifier, bool allow_alias, const char* operation,
                                              const EncryptionContext* context) {
  CFS_ASSIGN_OR_RETURN(KeyRecord key, ResolveKey(identifier, allow_alias));
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, ReadStore());
  CFS_RETURN_IF_ERROR(Authorize(key, caller_, data.account, operation, context));
  return key;
}

Status LocalKeyManager::ChangeKey(const KeyRecord& key,
                                  const std::function<Status(KeyRecord*, KeyStoreData*)>& change) {
  return store_.Update([&](KeyStoreData* data) -> Status {
    KeyRecord* k = data->FindKey(key.key_id);
    if (k == nullptr) return KmsError(KmsErrorType::kNotFound, fmt::format("Key '{}' does not exist", key.arn));
    return change(k, data);
  });
}

Status LocalKeyManager::RequireAccountRoot(const char* action) const {
  if (caller_.account_root) return Status::Ok();
  return KmsError(KmsErrorType::kAccessDenied,
                  fmt::format("User: {} is not authorized to perform: kms:{} because no identity-based policy allows "
                              "the kms:{} action",
                              PrincipalOf(caller_, options_.account), action, action));
}

Status LocalKeyManager::RefuseManaged(const KeyRecord& key) const {
  if (key.manager != KeyManagerType::kAws) return Status::Ok();
  return KmsError(KmsErrorType::kValidation,
                  fmt::format("{} is an AWS managed key; users can't change it", key.arn));
}

Status LocalKeyManager::AddMaterialVersion(KeyRecord* key) {
  MaterialVersion v;
  v.version = key->versions.empty() ? 1 : key->versions.back().version + 1;
  v.material_id = HexEncode(crypto::RandomArray<32>());
  v.created = Now();
  SecretBytes material = crypto::RandomSecret(32);
  CFS_ASSIGN_OR_RETURN(v.wrapped, root_.SealBlob(MaterialAad(key->arn, v.version), material.UnsafeSpan()));
  key->current_version = v.version;
  key->versions.push_back(std::move(v));
  return Status::Ok();
}

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
  key.creation_date = Now();
  key.manager = manager;
  key.policy = DefaultKeyPolicy(data.account);
  if (manager == KeyManagerType::kAws) {  // managed keys rotate yearly, not configurable
    key.rotation_enabled = true;
    key.next_rotation_date = key.creation_date + 365 * 86400;
  }
  CFS_RETURN_IF_ERROR(AddMaterialVersion(&key));
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
                              const Status& outcome, bool service_event) {
  AuditEvent e;
  e.operation = operation;
  e.service_event = service_event;
  e.caller_uid = service_event ? ::geteuid() : caller_.uid;
  e.user_name = service_event ? "cipherfs-kms" : caller_.user_name;
  if (!outcome.ok()) e.error_message = outcome.message();
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
