// LocalKeyManager: grants, key policies and audit verification.
#include <algorithm>

#include <fmt/format.h>

#include "crypto/random.h"
#include "keymgr/kms_error.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {
namespace {

constexpr size_t kMaxGrantsPerKey = 50000;

Status CheckConstraint(const std::optional<EncryptionContext>& c) {
  if (!c) return Status::Ok();
  if (c->size() > 8) return KmsError(KmsErrorType::kValidation, "A grant constraint has at most 8 pairs");
  for (const auto& [k, v] : *c) {
    if (v.size() > 384) return KmsError(KmsErrorType::kValidation, "Grant constraint values are at most 384 characters");
  }
  return EncodeEncryptionContext(*c).status();
}

Status ValidateGrantRequest(const CreateGrantRequest& r) {
  if (r.operations.empty()) return KmsError(KmsErrorType::kValidation, "Operations must name at least one operation");
  for (const std::string& op : r.operations) CFS_RETURN_IF_ERROR(ValidateGrantOperation(op));
  if (r.operations.size() == 1 && r.operations[0] == "CreateGrant") {
    return KmsError(KmsErrorType::kValidation, "Grants must not contain only the CreateGrant operation.");
  }
  if (r.name.size() > 256) return KmsError(KmsErrorType::kValidation, "Name is at most 256 characters");
  CFS_RETURN_IF_ERROR(CheckConstraint(r.ec_equals));
  return CheckConstraint(r.ec_subset);
}

bool SameGrant(const GrantRecord& g, const GrantRecord& want) {
  std::vector<std::string> a = g.operations, b = want.operations;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return g.grantee_principal == want.grantee_principal && g.retiring_principal == want.retiring_principal && a == b &&
         g.ec_equals == want.ec_equals && g.ec_subset == want.ec_subset;
}

GrantListEntry ListEntry(const KeyRecord& k, const GrantRecord& g) {
  return GrantListEntry{k.arn, g.grant_id, g.name, g.creation_date, g.grantee_principal, g.retiring_principal,
                        g.issuing_account, g.operations, g.ec_equals, g.ec_subset};
}

}  // namespace

Result<CreateGrantResult> LocalKeyManager::CreateGrant(const CreateGrantRequest& request) {
  Result<KeyRecord> key = ResolveFor(request.key_id, /*allow_alias=*/false, "CreateGrant");
  Status s = key.status();
  if (s.ok()) s = ValidateGrantRequest(request);
  GrantRecord g;
  if (s.ok()) {
    Result<std::string> grantee = NormalizePrincipal(request.grantee_principal, options_.account);
    s = grantee.status();
    if (s.ok()) g.grantee_principal = *grantee;
  }
  if (s.ok() && !request.retiring_principal.empty()) {
    Result<std::string> retiring = NormalizePrincipal(request.retiring_principal, options_.account);
    s = retiring.status();
    if (s.ok()) g.retiring_principal = *retiring;
  }
  CreateGrantResult out;
  if (s.ok()) {
    g.name = request.name;
    g.operations = request.operations;
    g.ec_equals = request.ec_equals;
    g.ec_subset = request.ec_subset;
    g.issuing_account = options_.account;
    g.creation_date = Now();
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      CFS_RETURN_IF_ERROR(CheckUsable(*k));
      if (!g.name.empty()) {  // same name and parameters: the same grant (idempotent retry)
        for (const GrantRecord& old : k->grants) {
          if (old.name == g.name && SameGrant(old, g)) {
            out = {old.grant_id, old.grant_token};
            return Status::Ok();
          }
        }
      }
      if (k->grants.size() >= kMaxGrantsPerKey) {
        return KmsError(KmsErrorType::kLimitExceeded, k->arn + " has reached the limit of 50000 grants");
      }
      g.grant_id = HexEncode(crypto::RandomArray<32>());
      g.grant_token = "cfsgt1" + HexEncode(crypto::RandomArray<32>());
      out = {g.grant_id, g.grant_token};
      k->grants.push_back(g);
      return Status::Ok();
    });
  }
  CFS_RETURN_IF_ERROR(Audit("CreateGrant", key.ok() ? key->arn : "", {}, s));
  return out;
}

Result<std::vector<GrantListEntry>> LocalKeyManager::ListGrants(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "ListGrants");
  CFS_RETURN_IF_ERROR(Audit("ListGrants", key.ok() ? key->arn : "", {}, key.status()));
  std::vector<GrantListEntry> out;
  for (const GrantRecord& g : key->grants) out.push_back(ListEntry(*key, g));
  return out;
}

Status LocalKeyManager::RevokeGrant(const std::string& key_id_or_arn, const std::string& grant_id) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "RevokeGrant");
  Status s = key.status();
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      auto n = std::erase_if(k->grants, [&](const GrantRecord& g) { return g.grant_id == grant_id; });
      if (n == 0) return KmsError(KmsErrorType::kNotFound, fmt::format("Grant ID {} not found", grant_id.substr(0, 80)));
      return Status::Ok();
    });
  }
  return Audit("RevokeGrant", key.ok() ? key->arn : "", {}, s);
}

// Who may retire: the retiring principal, the grantee if the grant allows
// RetireGrant, or the account root (cloud rules).
Status LocalKeyManager::RetireGrant(const RetireGrantRequest& request) {
  std::string arn;
  std::string me = PrincipalOf(caller_, options_.account);
  Status s;
  if (!request.grant_token && !(request.key_id && request.grant_id)) {
    s = KmsError(KmsErrorType::kValidation, "RetireGrant needs a GrantToken, or a KeyId and a GrantId");
  }
  if (s.ok() && request.key_id) {
    Result<KeyRecord> key = ResolveKey(*request.key_id, /*allow_alias=*/false);
    s = key.status();
    if (s.ok()) arn = key->arn;
  }
  if (s.ok()) {
    s = store_.Update([&](KeyStoreData* data) -> Status {
      for (KeyRecord& k : data->keys) {
        if (!arn.empty() && k.arn != arn) continue;
        for (auto it = k.grants.begin(); it != k.grants.end(); ++it) {
          bool match = request.grant_token ? it->grant_token == *request.grant_token
                                           : it->grant_id == request.grant_id.value_or("");
          if (!match) continue;
          arn = k.arn;
          bool grantee_may = it->grantee_principal == me &&
                             std::count(it->operations.begin(), it->operations.end(), "RetireGrant") > 0;
          if (!caller_.account_root && it->retiring_principal != me && !grantee_may) {
            return KmsError(KmsErrorType::kAccessDenied,
                            fmt::format("User: {} is not authorized to perform: kms:RetireGrant on resource: {}", me,
                                        k.arn));
          }
          k.grants.erase(it);
          return Status::Ok();
        }
      }
      if (request.grant_token) return KmsError(KmsErrorType::kInvalidGrantToken, "The grant token is not valid");
      return KmsError(KmsErrorType::kInvalidGrantId, "The grant ID is not valid");
    });
  }
  return Audit("RetireGrant", arn, {}, s);
}

Result<std::string> LocalKeyManager::GetKeyPolicy(const std::string& key_id_or_arn) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "GetKeyPolicy");
  CFS_RETURN_IF_ERROR(Audit("GetKeyPolicy", key.ok() ? key->arn : "", {}, key.status()));
  return key->policy.empty() ? DefaultKeyPolicy(options_.account) : key->policy;
}

// With the lockout safety check: the new policy must let the caller call
// PutKeyPolicy again.
Status LocalKeyManager::PutKeyPolicy(const std::string& key_id_or_arn, const std::string& policy) {
  Result<KeyRecord> key = ResolveFor(key_id_or_arn, /*allow_alias=*/false, "PutKeyPolicy");
  Status s = key.status();
  if (s.ok()) s = RefuseManaged(*key);
  if (s.ok()) s = ValidateKeyPolicy(policy);
  if (s.ok() && EvaluatePolicy(policy, PrincipalOf(caller_, options_.account), "kms:PutKeyPolicy") !=
                    PolicyDecision::kAllow) {
    s = KmsError(KmsErrorType::kMalformedPolicyDocument,
                 "The new key policy will not allow you to update the key policy in the future.");
  }
  if (s.ok()) {
    s = ChangeKey(*key, [&](KeyRecord* k, KeyStoreData*) -> Status {
      k->policy = policy;
      return Status::Ok();
    });
  }
  return Audit("PutKeyPolicy", key.ok() ? key->arn : "", {}, s);
}

Result<AuditVerifyReport> LocalKeyManager::VerifyAuditLog() {
  CFS_RETURN_IF_ERROR(RequireAccountRoot("VerifyAuditLog"));
  return audit_.Verify();
}

Result<std::string> LocalKeyManager::ReadAuditLog() {
  CFS_RETURN_IF_ERROR(RequireAccountRoot("ReadAuditLog"));
  return audit_.ReadAll();
}

}  // namespace cfs::keymgr
