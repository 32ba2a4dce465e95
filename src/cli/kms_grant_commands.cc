// `cipherfs kms create-grant|list-grants|revoke-grant|retire-grant|
// get-key-policy|put-key-policy|audit`.
#include <sstream>

#include <fmt/format.h>

#include "cli/exit_codes.h"
#include "keymgr/access_policy.h"

#include "cli/kms_commands.h"
#include "common/atomic_file.h"
#include "keymgr/audit_log.h"
#include "keymgr/kms_error.h"

namespace cfs::cli {
namespace {

using nlohmann::json;

Status Validation(const std::string& message) {
  return keymgr::KmsError(keymgr::KmsErrorType::kValidation, message);
}

// `--constraints` as JSON {"EncryptionContextSubset":{...}} or the shorthand
// EncryptionContextSubset={k=v,k2=v2} (also ...Equals).
Status ParseConstraints(const std::string& text, keymgr::CreateGrantRequest* r) {
  json j;
  if (!text.empty() && text[0] == '{') {
    try {
      j = json::parse(text);
    } catch (const std::exception& e) {
      return Validation(fmt::format("--constraints is not JSON ({})", e.what()));
    }
  } else {
    size_t eq = text.find('=');
    if (eq == std::string::npos || text.size() < eq + 3 || text[eq + 1] != '{' || text.back() != '}') {
      return Validation("--constraints must be EncryptionContextSubset={k=v,...} or JSON");
    }
    CFS_ASSIGN_OR_RETURN(keymgr::EncryptionContext ec,
                         ParseEncryptionContextArg(text.substr(eq + 2, text.size() - eq - 3)));
    j[text.substr(0, eq)] = ec;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_object()) return Validation("--constraints values must be maps of strings");
    keymgr::EncryptionContext ec;
    for (auto p = it.value().begin(); p != it.value().end(); ++p) {
      if (!p.value().is_string()) return Validation("--constraints values must be maps of strings");
      ec[p.key()] = p.value().get<std::string>();
    }
    if (it.key() == "EncryptionContextSubset") r->ec_subset = ec;
    else if (it.key() == "EncryptionContextEquals") r->ec_equals = ec;
    else return Validation(fmt::format("--constraints: unknown constraint {}", it.key()));
  }
  return Status::Ok();
}

json GrantJson(const keymgr::GrantListEntry& g) {
  json j{{"KeyId", g.key_id},
         {"GrantId", g.grant_id},
         {"CreationDate", FormatTime(g.creation_date)},
         {"GranteePrincipal", g.grantee_principal},
         {"IssuingAccount", g.issuing_account},
         {"Operations", g.operations}};
  if (!g.name.empty()) j["Name"] = g.name;
  if (!g.retiring_principal.empty()) j["RetiringPrincipal"] = g.retiring_principal;
  if (g.ec_equals || g.ec_subset) {
    json c = json::object();
    if (g.ec_equals) c["EncryptionContextEquals"] = *g.ec_equals;
    if (g.ec_subset) c["EncryptionContextSubset"] = *g.ec_subset;
    j["Constraints"] = c;
  }
  return j;
}

bool Matches(const keymgr::AuditRecord& r, const KmsArgs& a, const std::optional<std::string>& key_arn) {
  if (a.operation && r.event.operation != *a.operation) return false;
  if (a.outcome && r.event.outcome != *a.outcome) return false;
  if (a.user && r.event.user_name != *a.user && std::to_string(r.event.caller_uid) != *a.user) return false;
  if (key_arn && r.event.key_arn != *key_arn) return false;
  return true;
}

}  // namespace

Status KmsCreateGrant(Context& ctx, const KmsArgs& a) {
  keymgr::CreateGrantRequest r;
  r.key_id = a.key_id;
  r.grantee_principal = a.grantee_principal;
  r.retiring_principal = a.retiring_principal.value_or("");
  r.name = a.name.value_or("");
  for (const std::string& op : a.operations) {  // "Decrypt Encrypt" or "Decrypt,Encrypt"
    std::stringstream ss(op);
    for (std::string one; std::getline(ss, one, ',');) {
      if (!one.empty()) r.operations.push_back(one);
    }
  }
  if (a.constraints) CFS_RETURN_IF_ERROR(ParseConstraints(*a.constraints, &r));
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(keymgr::CreateGrantResult g, kms->CreateGrant(r));
  return KmsPrint(ctx, a, json{{"GrantToken", g.grant_token}, {"GrantId", g.grant_id}},
                  fmt::format("{}\t{}\n", g.grant_id, g.grant_token));
}

Status KmsListGrants(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(auto grants, kms->ListGrants(a.key_id));
  json arr = json::array();
  std::string text;
  for (const auto& g : grants) {
    arr.push_back(GrantJson(g));
    std::string ops;
    for (const auto& op : g.operations) ops += (ops.empty() ? "" : ",") + op;
    text += fmt::format("{}\t{}\t{}\n", g.grant_id, g.grantee_principal, ops);
  }
  return KmsPrint(ctx, a, json{{"Grants", arr}, {"Truncated", false}}, text);
}

Status KmsRevokeGrant(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->RevokeGrant(a.key_id, a.grant_id);
}

Status KmsRetireGrant(Context& ctx, const KmsArgs& a) {
  keymgr::RetireGrantRequest r{a.grant_token, a.opt_key_id, a.grant_id.empty() ? std::nullopt
                                                                               : std::optional<std::string>(a.grant_id)};
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->RetireGrant(r);
}

Status KmsGetKeyPolicy(Context& ctx, const KmsArgs& a) {
  if (a.policy_name != "default") return Validation("PolicyName must be \"default\"");
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  CFS_ASSIGN_OR_RETURN(std::string policy, kms->GetKeyPolicy(a.key_id));
  return KmsPrint(ctx, a, json{{"Policy", policy}, {"PolicyName", "default"}}, policy + "\n");
}

Status KmsPutKeyPolicy(Context& ctx, const KmsArgs& a) {
  if (a.policy_name != "default") return Validation("PolicyName must be \"default\"");
  std::string policy = a.policy;
  if (policy.rfind("file://", 0) == 0) {
    Result<std::string> text = ReadSmallFile(policy.substr(7), keymgr::kMaxPolicySize + 1);
    if (!text.ok()) return WithHint(text.status(), "--policy file://PATH must name a readable file");
    policy = *text;
  }
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  return kms->PutKeyPolicy(a.key_id, policy);
}

Status KmsAudit(Context& ctx, const KmsArgs& a) {
  CFS_ASSIGN_OR_RETURN(auto kms, ctx.open_kms(ctx.config.region));
  if (a.verify) {
    CFS_ASSIGN_OR_RETURN(keymgr::AuditVerifyReport report, kms->VerifyAuditLog());
    json j{{"Lines", report.lines}, {"Verified", report.ok()}, {"Problems", report.problems}};
    std::string text = report.ok() ? fmt::format("audit log verifies: {} lines, chain and sealed head intact\n",
                                                 report.lines)
                                   : "";
    for (const auto& p : report.problems) text += "audit: " + p + "\n";
    Status printed = KmsPrint(ctx, a, j, text);
    if (!report.ok()) {
      return DataLoss(fmt::format("the audit log does not verify ({} problem(s), first: {}); keep the damaged copy "
                                  "as evidence and restore the log from a backup",
                                  report.problems.size(), report.problems.front()));
    }
    return printed;
  }
  std::optional<std::string> key_arn;
  if (a.opt_key_id) {
    CFS_ASSIGN_OR_RETURN(keymgr::KeyMetadata m, kms->DescribeKey(*a.opt_key_id));
    key_arn = m.arn;
  }
  CFS_ASSIGN_OR_RETURN(std::string log, kms->ReadAuditLog());
  json events = json::array();
  std::string text;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    Result<keymgr::AuditRecord> r = keymgr::ParseAuditLine(line);
    if (!r.ok() || !Matches(*r, a, key_arn)) continue;
    events.push_back(json::parse(line));
    text += fmt::format("{}\t{}\t{}({})\t{}\t{}\n", r->time, r->event.operation, r->event.user_name,
                        r->event.caller_uid, r->event.outcome, r->event.key_arn.empty() ? "-" : r->event.key_arn);
  }
  return KmsPrint(ctx, a, json{{"Events", events}}, text);
}

}  // namespace cfs::cli
