#include "cli/kms_commands.h"

#include <fmt/format.h>

#include "cli/exit_codes.h"

#include "common/atomic_file.h"
#include "keymgr/kms_error.h"

namespace cfs::cli {
namespace {

using nlohmann::json;

void Print(Context& ctx, const json& j, const std::string& text) {
  if (ctx.json) *ctx.out << j.dump(4) << "\n";
  else *ctx.out << text;
}

Status Validation(const std::string& message) {
  return keymgr::KmsError(keymgr::KmsErrorType::kValidation, message);
}

std::string KeyText(const keymgr::KeyMetadata& m) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\n", m.key_id, m.arn, keymgr::KeyStateName(m.key_state),
                     keymgr::KeyManagerName(m.key_manager), m.description);
}

}  // namespace

json KeyMetadataJson(const keymgr::KeyMetadata& m) {
  json j{{"AWSAccountId", m.account_id},
         {"KeyId", m.key_id},
         {"Arn", m.arn},
         {"CreationDate", FormatTime(m.creation_date)},
         {"Enabled", m.enabled},
         {"Description", m.description},
         {"KeyUsage", "ENCRYPT_DECRYPT"},
         {"KeyState", keymgr::KeyStateName(m.key_state)},
         {"Origin", "AWS_KMS"},
         {"KeyManager", keymgr::KeyManagerName(m.key_manager)},
         {"CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"},
         {"KeySpec", "SYMMETRIC_DEFAULT"},
         {"EncryptionAlgorithms", json::array({"SYMMETRIC_DEFAULT"})},
         {"MultiRegion", false},
         {"CurrentKeyMaterialId", m.current_key_material_id}};
  if (m.deletion_date) j["DeletionDate"] = FormatTime(*m.deletion_date);
  return j;
}

Status KmsCreateKey(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->CreateKey({a.description}));
  return KmsPrint(ctx, a, json{{"KeyMetadata", KeyMetadataJson(m)}}, KeyText(m));
}

Status KmsDescribeKey(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->DescribeKey(a.key_id));
  return KmsPrint(ctx, a, json{{"KeyMetadata", KeyMetadataJson(m)}}, KeyText(m));
}

Status KmsListKeys(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto keys, kms->ListKeys());
  json arr = json::array();
  std::string text;
  for (const auto& k : keys) {
    arr.push_back(json{{"KeyId", k.key_id}, {"KeyArn", k.key_arn}});
    text += fmt::format("{}\t{}\n", k.key_id, k.key_arn);
  }
  return KmsPrint(ctx, a, json{{"Keys", arr}, {"Truncated", false}}, text);
}

Status KmsListAliases(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto aliases, kms->ListAliases(a.opt_key_id));
  json arr = json::array();
  std::string text;
  for (const auto& a : aliases) {
    json j{{"AliasName", a.alias_name}, {"AliasArn", a.alias_arn}};
    if (a.target_key_id) {
      j["TargetKeyId"] = *a.target_key_id;
      j["CreationDate"] = FormatTime(a.creation_date);
      j["LastUpdatedDate"] = FormatTime(a.last_updated_date);
    }
    arr.push_back(j);
    text += fmt::format("{}\t{}\t{}\n", a.alias_name, a.alias_arn, a.target_key_id.value_or("-"));
  }
  return KmsPrint(ctx, a, json{{"Aliases", arr}, {"Truncated", false}}, text);
}

Status KmsCreateAlias(Context& ctx, const std::string& alias_name, const std::string& target_key_id) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->CreateAlias(alias_name, target_key_id);
}

Status KmsEnableKey(Context& ctx, const std::string& key_id) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->EnableKey(key_id);
}

Status KmsDisableKey(Context& ctx, const std::string& key_id) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->DisableKey(key_id);
}

Status KmsPrint(Context& ctx, const KmsArgs& a, const json& j, const std::string& text) {
  if (!a.query) {
    Print(ctx, j, text);
    return Status::Ok();
  }
  const json* v = &j;
  size_t pos = 0;
  while (pos <= a.query->size()) {
    size_t dot = a.query->find('.', pos);
    std::string field = a.query->substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!v->is_object() || !v->contains(field)) {
      return InvalidArgument(fmt::format("--query {}: the response has no field {}", *a.query, field));
    }
    v = &v->at(field);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (!ctx.json && v->is_string()) *ctx.out << v->get<std::string>() << "\n";
  else *ctx.out << v->dump(4) << "\n";
  return Status::Ok();
}

Result<keymgr::EncryptionContext> ParseEncryptionContextArg(const std::optional<std::string>& text) {
  keymgr::EncryptionContext ec;
  if (!text || text->empty()) return ec;
  if ((*text)[0] == '{') {
    try {
      json j = json::parse(*text);
      for (auto it = j.begin(); it != j.end(); ++it) {
        ec[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
      }
    } catch (const std::exception& e) {
      return Validation(fmt::format("--encryption-context is not a JSON object of strings ({})", e.what()));
    }
    return ec;
  }
  size_t pos = 0;
  while (pos <= text->size()) {
    size_t comma = text->find(',', pos);
    std::string pair = text->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Validation(fmt::format("--encryption-context: '{}' is not KEY=VALUE (or give a JSON object)", pair));
    }
    ec[pair.substr(0, eq)] = pair.substr(eq + 1);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ec;
}

Result<Bytes> ReadBinaryArg(const std::string& option, const std::string& value) {
  if (value.rfind("fileb://", 0) == 0) {
    Result<std::string> data = ReadSmallFile(value.substr(8), 64 * 1024);
    if (!data.ok()) return WithHint(data.status(), option + " fileb://PATH must name a readable file");
    return Bytes(data->begin(), data->end());
  }
  std::optional<Bytes> decoded = Base64Decode(value);
  if (!decoded) return Validation(fmt::format("{} must be fileb://PATH or base64 text", option));
  return *decoded;
}

Status KmsUpdateAlias(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->UpdateAlias(a.alias_name, a.target_key_id);
}

Status KmsDeleteAlias(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->DeleteAlias(a.alias_name);
}

Status KmsScheduleKeyDeletion(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  int days = a.pending_window_in_days.value_or(30);
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->ScheduleKeyDeletion(a.key_id, days));
  std::string when = m.deletion_date ? FormatTime(*m.deletion_date) : "";
  json j{{"KeyId", m.arn}, {"DeletionDate", when}, {"KeyState", "PendingDeletion"}, {"PendingWindowInDays", days}};
  return KmsPrint(ctx, a, j, fmt::format("{}\tPendingDeletion\t{}\n", m.arn, when));
}

Status KmsCancelKeyDeletion(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->CancelKeyDeletion(a.key_id));
  return KmsPrint(ctx, a, json{{"KeyId", m.arn}}, m.arn + "\n");
}

Status KmsEnableKeyRotation(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->EnableKeyRotation(a.key_id, a.rotation_period_in_days);
}

Status KmsDisableKeyRotation(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->DisableKeyRotation(a.key_id);
}

Status KmsRotateKeyOnDemand(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(std::string key_id, kms->RotateKeyOnDemand(a.key_id));
  return KmsPrint(ctx, a, json{{"KeyId", key_id}}, key_id + "\n");
}

Status KmsGetKeyRotationStatus(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::RotationStatus r, kms->GetKeyRotationStatus(a.key_id));
  json j{{"KeyRotationEnabled", r.rotation_enabled}, {"KeyId", r.key_id}};
  if (r.rotation_period_days) j["RotationPeriodInDays"] = *r.rotation_period_days;
  if (r.next_rotation_date) j["NextRotationDate"] = FormatTime(*r.next_rotation_date);
  return KmsPrint(ctx, a, j, fmt::format("{}\t{}\n", r.key_id, r.rotation_enabled ? "True" : "False"));
}

}  // namespace cfs::cli
