// The KMS calls of LocalKeyManager (the helpers are in local_key_manager.cc).
#include <ctime>

#include <fmt/format.h>

#include "crypto/random.h"
#include "keymgr/ciphertext_blob.h"
#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {
namespace {

constexpr size_t kMaxAliasesPerKey = 50;

size_t AliasCount(const KeyStoreData& data, const std::string& key_id) {
  size_t n = 0;
  for (const auto& a : data.aliases) n += a.target_key_id == key_id && a.name.rfind("alias/aws/", 0) != 0;
  return n;
}

}  // namespace

Result<KeyMetadata> LocalKeyManager::CreateKey(const CreateKeyRequest& request) {
  KeyRecord created;
  std::string account;
  Status s = RequireAccountRoot("CreateKey");
  if (s.ok()) s = store_.Update([&](KeyStoreData* data) -> Status {
    if (data->region.empty()) {
      data->region = options_.region;
      data->account = options_.account;
    }
    CFS_ASSIGN_OR_RETURN(created, NewKey(*data, KeyManagerType::kCustomer, request.description));
    account = data->account;
    data->keys.push_back(created);
    return Status::Ok();
  });
  CFS_RETURN_IF_ERROR(Audit("CreateKey", created.arn, {}, s));
  return Metadata(created, account);
}

Result<KeyMetadata> LocalKeyManager::DescribeKey(const std::string& key_identifier) {
  Result<KeyRecord> key = ResolveFor(key_identifier, /*allow_alias=*/true, "DescribeKey");
  CFS_RETURN_IF_ERROR(Audit("DescribeKey", key.ok() ? key->arn : "", {}, key.status()));
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, ReadStore());
  return Metadata(*key, data.account);
}

Result<std::vector<KeyListEntry>> LocalKeyManager::ListKeys() {
  Status allowed = RequireAccountRoot("ListKeys");
  Result<KeyStoreData> data = allowed.ok() ? ReadStore() : Result<KeyStoreData>(allowed);
  CFS_RETURN_IF_ERROR(Audit("ListKeys", "", {}, data.status()));
  std::vector<KeyListEntry> out;
  for (const auto& k : data->keys) out.push_back({k.key_id, k.arn});
  return out;
}

Status LocalKeyManager::SetState(const std::string& key_id_or_arn, KeyState state, const char* operation) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, operation);
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      if (k->state == KeyState::kPendingDeletion) {
        return KmsError(KmsErrorType::kInvalidState, k->arn + " is pending deletion.");
      }
      k->state = state;
      return Status::Ok();
    });
  }
  return Audit(operation, key.ok() ? key->arn : "", {}, s);
}

Status LocalKeyManager::EnableKey(const std::string& key_id_or_arn) {
  return SetState(key_id_or_arn, KeyState::kEnabled, "EnableKey");
}

Status LocalKeyManager::DisableKey(const std::string& key_id_or_arn) {
  return SetState(key_id_or_arn, KeyState::kDisabled, "DisableKey");
}

Status LocalKeyManager::CreateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn) {
  Status s = ValidateAliasName(alias_name, /*allow_reserved=*/false);
  Result<KeyRecord> key = s.ok() ? ResolveFor(target_key_id_or_arn, /*allow_alias=*/false, "CreateAlias")
                                 : Result<KeyRecord>(s);
  s = key.status();
  if (s.ok() && key->state == KeyState::kPendingDeletion) {
    s = KmsError(KmsErrorType::kInvalidState, key->arn + " is pending deletion.");
  }
  if (s.ok()) {
    s = store_.Update([&](KeyStoreData* data) -> Status {
      if (data->FindAlias(alias_name) != nullptr) {
        return KmsError(KmsErrorType::kAlreadyExists,
                        fmt::format("An alias with the name {} already exists",
                                    AliasArn(data->region, data->account, alias_name)));
      }
      if (data->FindKey(key->key_id) == nullptr) {
        return KmsError(KmsErrorType::kNotFound, fmt::format("Key '{}' does not exist", key->arn));
      }
      if (AliasCount(*data, key->key_id) >= kMaxAliasesPerKey) {
        return KmsError(KmsErrorType::kLimitExceeded, fmt::format("{} already has {} aliases", key->arn,
                                                                  kMaxAliasesPerKey));
      }
      int64_t now = Now();
      data->aliases.push_back({alias_name, key->key_id, now, now});
      return Status::Ok();
    });
  }
  return Audit("CreateAlias", key.ok() ? key->arn : "", {}, s);
}

Result<std::vector<AliasListEntry>> LocalKeyManager::ListAliases(const std::optional<std::string>& key_id_or_arn) {
  std::optional<std::string> only;
  Status s = RequireAccountRoot("ListAliases");
  if (s.ok() && key_id_or_arn) {
    Result<KeyRecord> key = ResolveKey(*key_id_or_arn, /*allow_alias=*/false);
    s = key.status();
    if (s.ok()) only = key->key_id;
  }
  Result<KeyStoreData> data = s.ok() ? ReadStore() : Result<KeyStoreData>(s);
  CFS_RETURN_IF_ERROR(Audit("ListAliases", "", {}, data.status()));
  std::vector<AliasListEntry> out;
  bool managed_seen = false;
  for (const auto& a : data->aliases) {
    managed_seen |= a.name == kManagedRdsAlias;
    if (only && a.target_key_id != *only) continue;
    out.push_back({a.name, AliasArn(data->region, data->account, a.name), a.target_key_id, a.creation_date,
                   a.last_updated});
  }
  if (!managed_seen && !only) {
    std::string name(kManagedRdsAlias);
    out.push_back({name, AliasArn(data->region, data->account, name), std::nullopt, 0, 0});
  }
  return out;
}

Result<Bytes> LocalKeyManager::SealUnder(const KeyRecord& key, const EncryptionContext& context,
                                         ByteView plaintext) {
  CFS_RETURN_IF_ERROR(CheckUsable(key));
  CFS_ASSIGN_OR_RETURN(Bytes ec, EncodeEncryptionContext(context));
  CFS_ASSIGN_OR_RETURN(SecretBytes material, UnwrapMaterial(key, key.current_version));
  crypto::GcmKey gcm(material);
  return SealCiphertextBlob(gcm, key.key_id, key.arn, key.current_version, ec, plaintext);
}

Result<SecretBytes> LocalKeyManager::OpenBlob(ByteView blob_bytes, const EncryptionContext& context,
                                              KeyRecord* key_out, const char* operation) {
  CFS_ASSIGN_OR_RETURN(CiphertextBlob blob, ParseCiphertextBlob(blob_bytes));
  CFS_ASSIGN_OR_RETURN(Bytes ec, EncodeEncryptionContext(context));
  CFS_ASSIGN_OR_RETURN(KeyStoreData data, ReadStore());
  const KeyRecord* key = data.FindKey(blob.key_id);
  if (key == nullptr) {
    return KmsError(KmsErrorType::kInvalidCiphertext, "The ciphertext names a key that does not exist in this region");
  }
  *key_out = *key;
  CFS_RETURN_IF_ERROR(Authorize(*key, caller_, data.account, operation, &context));
  CFS_RETURN_IF_ERROR(CheckUsable(*key));
  CFS_ASSIGN_OR_RETURN(SecretBytes material, UnwrapMaterial(*key, blob.material_version));
  crypto::GcmKey gcm(material);
  return OpenCiphertextBlob(gcm, blob, key->arn, ec);
}

Result<EncryptResult> LocalKeyManager::Encrypt(const std::string& key_identifier, const SecretBytes& plaintext,
                                               const EncryptionContext& context) {
  Result<KeyRecord> key = ResolveFor(key_identifier, /*allow_alias=*/true, "Encrypt", &context);
  Result<Bytes> blob = key.ok() ? SealUnder(*key, context, plaintext.UnsafeSpan()) : Result<Bytes>(key.status());
  CFS_RETURN_IF_ERROR(Audit("Encrypt", key.ok() ? key->arn : "", context, blob.status()));
  return EncryptResult{std::move(*blob), key->arn, key->FindVersion(key->current_version)->material_id};
}

Result<GenerateDataKeyResult> LocalKeyManager::MakeDataKey(const char* operation, const std::string& key_identifier,
                                                           const EncryptionContext& context, size_t number_of_bytes) {
  Result<KeyRecord> key = ResolveFor(key_identifier, /*allow_alias=*/true, operation, &context);
  if (key.ok() && (number_of_bytes < 1 || number_of_bytes > 1024)) {
    key = KmsError(KmsErrorType::kValidation, "NumberOfBytes must be 1 to 1024");
  }
  SecretBytes data_key = crypto::RandomSecret(number_of_bytes == 0 || number_of_bytes > 1024 ? 1 : number_of_bytes);
  Result<Bytes> blob = key.ok() ? SealUnder(*key, context, data_key.UnsafeSpan()) : Result<Bytes>(key.status());
  CFS_RETURN_IF_ERROR(Audit(operation, key.ok() ? key->arn : "", context, blob.status()));
  return GenerateDataKeyResult{std::move(data_key), std::move(*blob), key->arn,
                               key->FindVersion(key->current_version)->material_id};
}

Result<GenerateDataKeyResult> LocalKeyManager::GenerateDataKey(const std::string& key_identifier,
                                                               const EncryptionContext& context,
                                                               size_t number_of_bytes) {
  return MakeDataKey("GenerateDataKey", key_identifier, context, number_of_bytes);
}

Result<GenerateDataKeyResult> LocalKeyManager::GenerateDataKeyWithoutPlaintext(const std::string& key_identifier,
                                                                               const EncryptionContext& context,
                                                                               size_t number_of_bytes) {
  CFS_ASSIGN_OR_RETURN(GenerateDataKeyResult r,
                       MakeDataKey("GenerateDataKeyWithoutPlaintext", key_identifier, context, number_of_bytes));
  r.plaintext.Wipe();
  return r;
}

Result<DecryptResult> LocalKeyManager::Decrypt(ByteView ciphertext_blob, const EncryptionContext& context,
                                               const std::optional<std::string>& key_identifier) {
  KeyRecord key;
  Result<SecretBytes> plain = OpenBlob(ciphertext_blob, context, &key, "Decrypt");
  if (plain.ok() && key_identifier) {
    Result<KeyRecord> wanted = ResolveKey(*key_identifier, /*allow_alias=*/true);
    if (!wanted.ok()) plain = wanted.status();
    else if (wanted->key_id != key.key_id) {
      plain = KmsError(KmsErrorType::kIncorrectKey,
                       "The key ID in the request does not identify the key that encrypted the ciphertext");
    }
  }
  CFS_RETURN_IF_ERROR(Audit("Decrypt", key.arn, context, plain.status()));
  const MaterialVersion* v = nullptr;
  if (auto blob = ParseCiphertextBlob(ciphertext_blob); blob.ok()) v = key.FindVersion(blob->material_version);
  return DecryptResult{std::move(*plain), key.arn, v ? v->material_id : ""};
}

Result<ReEncryptResult> LocalKeyManager::ReEncrypt(ByteView ciphertext_blob, const EncryptionContext& source_context,
                                                   const std::string& destination_key_identifier,
                                                   const EncryptionContext& destination_context) {
  KeyRecord source;
  Result<SecretBytes> plain = OpenBlob(ciphertext_blob, source_context, &source, "ReEncryptFrom");
  Result<KeyRecord> dest = plain.ok() ? ResolveFor(destination_key_identifier, true, "ReEncryptTo", &destination_context)
                                      : Result<KeyRecord>(plain.status());
  Result<Bytes> blob = dest.ok() ? SealUnder(*dest, destination_context, plain->UnsafeSpan())
                                 : Result<Bytes>(dest.status());
  CFS_RETURN_IF_ERROR(Audit("ReEncrypt", dest.ok() ? dest->arn : source.arn, destination_context, blob.status()));
  ReEncryptResult r{std::move(*blob), source.arn, dest->arn, "", ""};
  if (auto parsed = ParseCiphertextBlob(ciphertext_blob); parsed.ok()) {
    if (const MaterialVersion* v = source.FindVersion(parsed->material_version)) r.source_key_material_id = v->material_id;
  }
  r.destination_key_material_id = dest->FindVersion(dest->current_version)->material_id;
  return r;
}

}  // namespace cfs::keymgr
