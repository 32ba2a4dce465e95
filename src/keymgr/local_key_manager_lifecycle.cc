// LocalKeyManager: alias changes, scheduled deletion, rotation, and the
// maintenance every open runs (purge of expired keys, due rotations).
#include <algorithm>

#include <fmt/format.h>

#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {
namespace {

constexpr int64_t kDay = 86400;
constexpr uint32_t kMaxOnDemandRotations = 25;

Status PendingDeletion(const KeyRecord& k) {
  return KmsError(KmsErrorType::kInvalidState, k.arn + " is pending deletion.");
}

Status CheckCustomerAlias(const std::string& alias_name) {
  CFS_RETURN_IF_ERROR(ValidateAliasName(alias_name, /*allow_reserved=*/true));
  if (alias_name.rfind("alias/aws/", 0) == 0) {
    return KmsError(KmsErrorType::kValidation,
                    fmt::format("{} is reserved for a managed key; users can't change it", alias_name));
  }
  return Status::Ok();
}

}  // namespace

Status LocalKeyManager::UpdateAlias(const std::string& alias_name, const std::string& target_key_id_or_arn) {
  Status s = CheckCustomerAlias(alias_name);
  Result<KeyRecord> key = s.ok() ? ResolveFor(target_key_id_or_arn, /*allow_alias=*/false, "UpdateAlias")
                                 : Result<KeyRecord>(s);
  s = key.status();
  if (s.ok() && key->state == KeyState::kPendingDeletion) s = PendingDeletion(*key);
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok()) {
    s = store_.Update([&](KeyStoreData* data) -> Status {
      auto it = std::find_if(data->aliases.begin(), data->aliases.end(),
                             [&](const AliasRecord& a) { return a.name == alias_name; });
      if (it == data->aliases.end()) {
        return KmsError(KmsErrorType::kNotFound,
                        fmt::format("Alias {} is not found.", AliasArn(data->region, data->account, alias_name)));
      }
      if (const KeyRecord* old = data->FindKey(it->target_key_id)) {
        CFS_RETURN_IF_ERROR(Authorize(*old, caller_, data->account, "UpdateAlias", nullptr));
      }
      if (data->FindKey(key->key_id) == nullptr) {
        return KmsError(KmsErrorType::kNotFound, fmt::format("Key '{}' does not exist", key->arn));
      }
      it->target_key_id = key->key_id;
      it->last_updated = Now();
      return Status::Ok();
    });
  }
  return Audit("UpdateAlias", key.ok() ? key->arn : "", {}, s);
}

Status LocalKeyManager::DeleteAlias(const std::string& alias_name) {
  std::string arn;
  Status s = CheckCustomerAlias(alias_name);
  if (s.ok()) {
    s = store_.Update([&](KeyStoreData* data) -> Status {
      auto it = std::find_if(data->aliases.begin(), data->aliases.end(),
                             [&](const AliasRecord& a) { return a.name == alias_name; });
      if (it == data->aliases.end()) {
        return KmsError(KmsErrorType::kNotFound,
                        fmt::format("Alias {} is not found.", AliasArn(data->region, data->account, alias_name)));
      }
      if (const KeyRecord* k = data->FindKey(it->target_key_id)) {
        arn = k->arn;
        CFS_RETURN_IF_ERROR(Authorize(*k, caller_, data->account, "DeleteAlias", nullptr));
      }
      data->aliases.erase(it);
      return Status::Ok();
    });
  }
  return Audit("DeleteAlias", arn, {}, s);
}

Result<KeyMetadata> LocalKeyManager::ScheduleKeyDeletion(const std::string& key_id_or_arn, int days) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "ScheduleKeyDeletion");
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok() && (days < 7 || days > 30)) {
    s = KmsError(KmsErrorType::kValidation,
                 fmt::format("PendingWindowInDays must be between 7 and 30 (was {})", days));
  }
  KeyRecord changed;
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      if (k->state == KeyState::kPendingDeletion) return PendingDeletion(*k);
      k->state = KeyState::kPendingDeletion;
      k->deletion_date = Now() + days * kDay;
      changed = *k;
      return Status::Ok();
    });
  }
  CFS_RETURN_IF_ERROR(Audit("ScheduleKeyDeletion", key.ok() ? key->arn : "", {}, s));
  return Metadata(changed, options_.account);
}

Result<KeyMetadata> LocalKeyManager::CancelKeyDeletion(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "CancelKeyDeletion");
  Status s = key.status();
  KeyRecord changed;
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      if (k->state != KeyState::kPendingDeletion) {
        return KmsError(KmsErrorType::kInvalidState, k->arn + " is not pending deletion.");
      }
      k->state = KeyState::kDisabled;  // as the cloud KMS: EnableKey is a separate step
      k->deletion_date.reset();
      changed = *k;
      return Status::Ok();
    });
  }
  CFS_RETURN_IF_ERROR(Audit("CancelKeyDeletion", key.ok() ? key->arn : "", {}, s));
  return Metadata(changed, options_.account);
}

Status LocalKeyManager::EnableKeyRotation(const std::string& key_id_or_arn, std::optional<int> period) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "EnableKeyRotation");
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok() && period && (*period < 90 || *period > 2560)) {
    s = KmsError(KmsErrorType::kValidation, fmt::format("RotationPeriodInDays must be 90 to 2560 (was {})", *period));
  }
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      CFS_RETURN_IF_ERROR(CheckUsable(*k));
      k->rotation_enabled = true;
      k->rotation_period_days = static_cast<uint32_t>(period.value_or(365));
      k->next_rotation_date = Now() + int64_t{k->rotation_period_days} * kDay;
      return Status::Ok();
    });
  }
  return Audit("EnableKeyRotation", key.ok() ? key->arn : "", {}, s);
}

Status LocalKeyManager::DisableKeyRotation(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "DisableKeyRotation");
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      CFS_RETURN_IF_ERROR(CheckUsable(*k));
      k->rotation_enabled = false;
      k->next_rotation_date.reset();
      return Status::Ok();
    });
  }
  return Audit("DisableKeyRotation", key.ok() ? key->arn : "", {}, s);
}

Result<RotationStatus> LocalKeyManager::GetKeyRotationStatus(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "GetKeyRotationStatus");
  CFS_RETURN_IF_ERROR(Audit("GetKeyRotationStatus", key.ok() ? key->arn : "", {}, key.status()));
  RotationStatus r;
  r.key_id = key->arn;
  // While pending deletion the cloud KMS reports rotation off (cancelling restores it).
  r.rotation_enabled = key->rotation_enabled && key->state != KeyState::kPendingDeletion;
  if (r.rotation_enabled) {
    r.rotation_period_days = key->rotation_period_days;
    r.next_rotation_date = key->next_rotation_date;
  }
  return r;
}

Result<std::string> LocalKeyManager::RotateKeyOnDemand(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "RotateKeyOnDemand");
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      CFS_RETURN_IF_ERROR(CheckUsable(*k));
      if (k->on_demand_rotations >= kMaxOnDemandRotations) {
        return KmsError(KmsErrorType::kLimitExceeded,
                        fmt::format("{} has reached the limit of {} on-demand rotations", k->arn,
                                    kMaxOnDemandRotations));
      }
      ++k->on_demand_rotations;
      return AddMaterialVersion(k);
    });
  }
  CFS_RETURN_IF_ERROR(Audit("RotateKeyOnDemand", key.ok() ? key->arn : "", {}, s));
  return key->key_id;
}

Status LocalKeyManager::Maintain() {
  std::vector<std::string> deleted, rotated;
  int64_t now = Now();
  CFS_ASSIGN_OR_RETURN(KeyStoreData current, store_.Read());
  bool due = std::any_of(current.keys.begin(), current.keys.end(), [&](const KeyRecord& k) {
    return (k.state == KeyState::kPendingDeletion && k.deletion_date && *k.deletion_date <= now) ||
           (k.state == KeyState::kEnabled && k.rotation_enabled && k.next_rotation_date &&
            *k.next_rotation_date <= now);
  });
  if (!due) return Status::Ok();
  CFS_RETURN_IF_ERROR(store_.Update([&](KeyStoreData* data) -> Status {
    std::vector<KeyRecord> kept;
    for (KeyRecord& k : data->keys) {
      if (k.state == KeyState::kPendingDeletion && k.deletion_date && *k.deletion_date <= now) {
        deleted.push_back(k.arn);  // the record, its wrapped material and grants go with it
        std::erase_if(data->aliases, [&](const AliasRecord& a) { return a.target_key_id == k.key_id; });
        continue;
      }
      if (k.state == KeyState::kEnabled && k.rotation_enabled && k.next_rotation_date && *k.next_rotation_date <= now) {
        CFS_RETURN_IF_ERROR(AddMaterialVersion(&k));
        k.next_rotation_date = now + int64_t{k.rotation_period_days} * kDay;
        rotated.push_back(k.arn);
      }
      kept.push_back(std::move(k));
    }
    data->keys = std::move(kept);
    return Status::Ok();
  }));
  for (const std::string& arn : deleted) CFS_RETURN_IF_ERROR(Audit("DeleteKey", arn, {}, Status::Ok(), true));
  for (const std::string& arn : rotated) CFS_RETURN_IF_ERROR(Audit("RotateKey", arn, {}, Status::Ok(), true));
  return Status::Ok();
}

}  // namespace cfs::keymgr
