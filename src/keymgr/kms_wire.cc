#include "keymgr/kms_wire.h"

#include <fmt/format.h>

#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

using nlohmann::json;

Bytes B64(const json& j, const char* field) {
  auto d = Base64Decode(j.at(field).get<std::string>());
  if (!d) throw std::invalid_argument(std::string(field) + " is not base64");
  return *d;
}

EncryptionContext Ec(const json& j, const char* field) {
  return j.contains(field) ? j.at(field).get<EncryptionContext>() : EncryptionContext{};
}

std::optional<std::string> OptString(const json& j, const char* field) {
  if (!j.contains(field) || j.at(field).is_null()) return std::nullopt;
  return j.at(field).get<std::string>();
}

json DataKeyToWire(const GenerateDataKeyResult& r) {
  json j{{"CiphertextBlob", Base64Encode(r.ciphertext_blob)}, {"KeyId", r.key_arn}, {"KeyMaterialId", r.key_material_id}};
  if (!r.plaintext.empty()) j["Plaintext"] = Base64Encode(r.plaintext.UnsafeSpan());
  return j;
}

// Runs one operation; the Result is the response's "Result" value.
Result<json> Dispatch(LocalKeyManager& kms, const std::string& op, const json& q) {
  auto key = [&] { return q.at("KeyId").get<std::string>(); };
  auto done = [](const Status& s) -> Result<json> {
    if (!s.ok()) return s;
    return json::object();
  };
  if (op == "CreateKey") {
    CFS_ASSIGN_OR_RETURN(KeyMetadata m, kms.CreateKey({q.value("Description", std::string())}));
    return MetadataToWire(m);
  }
  if (op == "DescribeKey") {
    CFS_ASSIGN_OR_RETURN(KeyMetadata m, kms.DescribeKey(key()));
    return MetadataToWire(m);
  }
  if (op == "ListKeys") {
    CFS_ASSIGN_OR_RETURN(auto keys, kms.ListKeys());
    json arr = json::array();
    for (const auto& k : keys) arr.push_back({{"KeyId", k.key_id}, {"KeyArn", k.key_arn}});
    return json{{"Keys", arr}};
  }
  if (op == "EnableKey") return done(kms.EnableKey(key()));
  if (op == "DisableKey") return done(kms.DisableKey(key()));
  if (op == "CreateAlias") return done(kms.CreateAlias(q.at("AliasName"), q.at("TargetKeyId")));
  if (op == "UpdateAlias") return done(kms.UpdateAlias(q.at("AliasName"), q.at("TargetKeyId")));
  if (op == "DeleteAlias") return done(kms.DeleteAlias(q.at("AliasName")));
  if (op == "ListAliases") {
    CFS_ASSIGN_OR_RETURN(auto aliases, kms.ListAliases(OptString(q, "KeyId")));
    json arr = json::array();
    for (const auto& a : aliases) {
      json e{{"AliasName", a.alias_name}, {"AliasArn", a.alias_arn}, {"CreationDate", a.creation_date},
             {"LastUpdatedDate", a.last_updated_date}};
      if (a.target_key_id) e["TargetKeyId"] = *a.target_key_id;
      arr.push_back(e);
    }
    return json{{"Aliases", arr}};
  }
  if (op == "Encrypt") {
    Bytes plain = B64(q, "Plaintext");
    SecretBytes secret(plain.data(), plain.size());
    SecureWipe(plain.data(), plain.size());
    CFS_ASSIGN_OR_RETURN(EncryptResult r, kms.Encrypt(key(), secret, Ec(q, "EncryptionContext")));
    return json{{"CiphertextBlob", Base64Encode(r.ciphertext_blob)}, {"KeyId", r.key_arn},
                {"KeyMaterialId", r.key_material_id}};
  }
  if (op == "GenerateDataKey" || op == "GenerateDataKeyWithoutPlaintext") {
    size_t n = q.value("NumberOfBytes", size_t{32});
    Result<GenerateDataKeyResult> r = op == "GenerateDataKey"
                                          ? kms.GenerateDataKey(key(), Ec(q, "EncryptionContext"), n)
                                          : kms.GenerateDataKeyWithoutPlaintext(key(), Ec(q, "EncryptionContext"), n);
    CFS_RETURN_IF_ERROR(r.status());
    return DataKeyToWire(*r);
  }
  if (op == "Decrypt") {
    CFS_ASSIGN_OR_RETURN(DecryptResult r,
                         kms.Decrypt(B64(q, "CiphertextBlob"), Ec(q, "EncryptionContext"), OptString(q, "KeyId")));
    return json{{"Plaintext", Base64Encode(r.plaintext.UnsafeSpan())}, {"KeyId", r.key_arn},
                {"KeyMaterialId", r.key_material_id}};
  }
  if (op == "ReEncrypt") {
    CFS_ASSIGN_OR_RETURN(ReEncryptResult r,
                         kms.ReEncrypt(B64(q, "CiphertextBlob"), Ec(q, "SourceEncryptionContext"),
                                       q.at("DestinationKeyId"), Ec(q, "DestinationEncryptionContext")));
    return json{{"CiphertextBlob", Base64Encode(r.ciphertext_blob)}, {"SourceKeyId", r.source_key_arn},
                {"KeyId", r.key_arn}, {"SourceKeyMaterialId", r.source_key_material_id},
                {"DestinationKeyMaterialId", r.destination_key_material_id}};
  }
  if (op == "ScheduleKeyDeletion") {
    CFS_ASSIGN_OR_RETURN(KeyMetadata m, kms.ScheduleKeyDeletion(key(), q.at("PendingWindowInDays").get<int>()));
    return MetadataToWire(m);
  }
  if (op == "CancelKeyDeletion") {
    CFS_ASSIGN_OR_RETURN(KeyMetadata m, kms.CancelKeyDeletion(key()));
    return MetadataToWire(m);
  }
  if (op == "EnableKeyRotation") {
    std::optional<int> period;
    if (q.contains("RotationPeriodInDays")) period = q.at("RotationPeriodInDays").get<int>();
    return done(kms.EnableKeyRotation(key(), period));
  }
  if (op == "DisableKeyRotation") return done(kms.DisableKeyRotation(key()));
  if (op == "GetKeyRotationStatus") {
    CFS_ASSIGN_OR_RETURN(RotationStatus r, kms.GetKeyRotationStatus(key()));
    json j{{"KeyId", r.key_id}, {"KeyRotationEnabled", r.rotation_enabled}};
    if (r.rotation_period_days) j["RotationPeriodInDays"] = *r.rotation_period_days;
    if (r.next_rotation_date) j["NextRotationDate"] = *r.next_rotation_date;
    return j;
  }
  if (op == "RotateKeyOnDemand") {
    CFS_ASSIGN_OR_RETURN(std::string id, kms.RotateKeyOnDemand(key()));
    return json{{"KeyId", id}};
  }
  if (op == "CreateGrant") {
    CreateGrantRequest r;
    r.key_id = key();
    r.grantee_principal = q.at("GranteePrincipal");
    r.retiring_principal = q.value("RetiringPrincipal", std::string());
    r.operations = q.at("Operations").get<std::vector<std::string>>();
    r.name = q.value("Name", std::string());
    if (q.contains("EncryptionContextEquals")) r.ec_equals = Ec(q, "EncryptionContextEquals");
    if (q.contains("EncryptionContextSubset")) r.ec_subset = Ec(q, "EncryptionContextSubset");
    CFS_ASSIGN_OR_RETURN(CreateGrantResult g, kms.CreateGrant(r));
    return json{{"GrantId", g.grant_id}, {"GrantToken", g.grant_token}};
  }
  if (op == "ListGrants") {
    CFS_ASSIGN_OR_RETURN(auto grants, kms.ListGrants(key()));
    json arr = json::array();
    for (const auto& g : grants) arr.push_back(GrantToWire(g));
    return json{{"Grants", arr}};
  }
  if (op == "RevokeGrant") return done(kms.RevokeGrant(key(), q.at("GrantId")));
  if (op == "RetireGrant") {
    return done(kms.RetireGrant({OptString(q, "GrantToken"), OptString(q, "KeyId"), OptString(q, "GrantId")}));
  }
  if (op == "GetKeyPolicy") {
    CFS_ASSIGN_OR_RETURN(std::string policy, kms.GetKeyPolicy(key()));
    return json{{"Policy", policy}};
  }
  if (op == "PutKeyPolicy") return done(kms.PutKeyPolicy(key(), q.at("Policy")));
  if (op == "ReadAuditLog") {
    CFS_ASSIGN_OR_RETURN(std::string log, kms.ReadAuditLog());
    return json{{"Log", log}};
  }
  if (op == "VerifyAuditLog") {
    CFS_ASSIGN_OR_RETURN(AuditVerifyReport r, kms.VerifyAuditLog());
    return json{{"Lines", r.lines}, {"Problems", r.problems}};
  }
  return KmsError(KmsErrorType::kValidation, fmt::format("unknown operation '{}'", op.substr(0, 64)));
}

}  // namespace

json MetadataToWire(const KeyMetadata& m) {
  json j{{"AWSAccountId", m.account_id}, {"KeyId", m.key_id}, {"Arn", m.arn}, {"CreationDate", m.creation_date},
         {"Enabled", m.enabled}, {"Description", m.description}, {"KeyState", KeyStateName(m.key_state)},
         {"KeyManager", KeyManagerName(m.key_manager)}, {"CurrentKeyMaterialId", m.current_key_material_id}};
  if (m.deletion_date) j["DeletionDate"] = *m.deletion_date;
  return j;
}

KeyMetadata MetadataFromWire(const json& j) {
  KeyMetadata m;
  m.account_id = j.at("AWSAccountId");
  m.key_id = j.at("KeyId");
  m.arn = j.at("Arn");
  m.creation_date = j.at("CreationDate");
  m.enabled = j.at("Enabled");
  m.description = j.at("Description");
  std::string state = j.at("KeyState");
  m.key_state = state == "Enabled"    ? KeyState::kEnabled
                : state == "Disabled" ? KeyState::kDisabled
                                      : KeyState::kPendingDeletion;
  m.key_manager = j.at("KeyManager") == "AWS" ? KeyManagerType::kAws : KeyManagerType::kCustomer;
  m.current_key_material_id = j.at("CurrentKeyMaterialId");
  if (j.contains("DeletionDate")) m.deletion_date = j.at("DeletionDate").get<int64_t>();
  return m;
}

json GrantToWire(const GrantListEntry& g) {
  json j{{"KeyId", g.key_id}, {"GrantId", g.grant_id}, {"Name", g.name}, {"CreationDate", g.creation_date},
         {"GranteePrincipal", g.grantee_principal}, {"RetiringPrincipal", g.retiring_principal},
         {"IssuingAccount", g.issuing_account}, {"Operations", g.operations}};
  if (g.ec_equals) j["EncryptionContextEquals"] = *g.ec_equals;
  if (g.ec_subset) j["EncryptionContextSubset"] = *g.ec_subset;
  return j;
}

GrantListEntry GrantFromWire(const json& j) {
  GrantListEntry g;
  g.key_id = j.at("KeyId");
  g.grant_id = j.at("GrantId");
  g.name = j.at("Name");
  g.creation_date = j.at("CreationDate");
  g.grantee_principal = j.at("GranteePrincipal");
  g.retiring_principal = j.at("RetiringPrincipal");
  g.issuing_account = j.at("IssuingAccount");
  g.operations = j.at("Operations").get<std::vector<std::string>>();
  if (j.contains("EncryptionContextEquals")) g.ec_equals = j.at("EncryptionContextEquals").get<EncryptionContext>();
  if (j.contains("EncryptionContextSubset")) g.ec_subset = j.at("EncryptionContextSubset").get<EncryptionContext>();
  return g;
}

json StatusToWire(const Status& status) {
  auto kms = KmsErrorOf(status);
  return json{{"__type", kms ? std::string(KmsErrorName(*kms)) : std::string(CodeName(status.code()))},
              {"message", status.message()},
              {"code", static_cast<int>(status.code())}};
}

Status StatusFromWire(const json& j) {
  int code = j.value("code", static_cast<int>(Code::kInternal));
  if (code <= 0 || code > static_cast<int>(Code::kInternal)) code = static_cast<int>(Code::kInternal);
  return Status(static_cast<Code>(code), j.value("message", std::string("kmsd: malformed error")));
}

json HandleKmsRequest(LocalKeyManager& kms, const json& request) {
  try {
    std::string op = request.at("Operation").get<std::string>();
    std::string region = request.value("Region", kms.region());
    if (region != kms.region()) {
      return StatusToWire(FailedPrecondition(
          fmt::format("this kmsd serves region {}, not {}; use the kmsd socket of region {}", kms.region(), region,
                      region)));
    }
    Result<json> r = Dispatch(kms, op, request);
    if (!r.ok()) return StatusToWire(r.status());
    return json{{"Result", *r}};
  } catch (const std::exception& e) {
    return StatusToWire(KmsError(KmsErrorType::kValidation, fmt::format("malformed request ({})", e.what())));
  }
}

}  // namespace cfs::keymgr
