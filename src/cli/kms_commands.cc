#include "cli/kms_commands.h"

#include <fmt/format.h>

namespace cfs::cli {
namespace {

using nlohmann::json;

void Print(Context& ctx, const json& j, const std::string& text) {
  if (ctx.json) *ctx.out << j.dump(4) << "\n";
  else *ctx.out << text;
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

Status KmsCreateKey(Context& ctx, const std::string& description) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->CreateKey({description}));
  Print(ctx, json{{"KeyMetadata", KeyMetadataJson(m)}}, KeyText(m));
  return Status::Ok();
}

Status KmsDescribeKey(Context& ctx, const std::string& key_id) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->DescribeKey(key_id));
  Print(ctx, json{{"KeyMetadata", KeyMetadataJson(m)}}, KeyText(m));
  return Status::Ok();
}

Status KmsListKeys(Context& ctx) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto keys, kms->ListKeys());
  json arr = json::array();
  std::string text;
  for (const auto& k : keys) {
    arr.push_back(json{{"KeyId", k.key_id}, {"KeyArn", k.key_arn}});
    text += fmt::format("{}\t{}\n", k.key_id, k.key_arn);
  }
  Print(ctx, json{{"Keys", arr}, {"Truncated", false}}, text);
  return Status::Ok();
}

Status KmsListAliases(Context& ctx, const std::optional<std::string>& key_id) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto aliases, kms->ListAliases(key_id));
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
  Print(ctx, json{{"Aliases", arr}, {"Truncated", false}}, text);
  return Status::Ok();
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

}  // namespace cfs::cli
