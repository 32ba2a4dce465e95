#include "keymgr/access_policy.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "keymgr/kms_error.h"

namespace cfs::keymgr {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 9> kGrantOperations = {
    "Decrypt",         "Encrypt",       "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",   "ReEncryptTo",   "CreateGrant",     "RetireGrant",
    "DescribeKey"};

Status Malformed(std::string_view why) {
  return KmsError(KmsErrorType::kMalformedPolicyDocument, fmt::format("The new key policy is malformed: {}", why));
}

bool IsUserNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == '$';
}

bool IsUserName(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), IsUserNameChar);
}

// A string or an array of strings; throws on anything else.
std::vector<std::string> StringList(const json& j) {
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) throw std::invalid_argument("expected a string or a list of strings");
  std::vector<std::string> out;
  for (const auto& e : j) out.push_back(e.get<std::string>());
  return out;
}

bool ActionMatches(const std::string& pattern, std::string_view action) {
  if (!pattern.empty() && pattern.back() == '*') {
    return action.substr(0, pattern.size() - 1) == std::string_view(pattern).substr(0, pattern.size() - 1);
  }
  return pattern == action;
}

bool PrincipalMatches(const json& principal, std::string_view who) {
  if (principal.is_string()) return principal.get<std::string>() == "*";
  for (const std::string& p : StringList(principal.at("AWS"))) {
    if (p == "*" || p == who) return true;
  }
  return false;
}

bool ContextContains(const EncryptionContext& context, const EncryptionContext& wanted) {
  for (const auto& [k, v] : wanted) {
    auto it = context.find(k);
    if (it == context.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

std::string RootPrincipal(std::string_view account) { return fmt::format("arn:cipherfs:iam::{}:root", account); }

std::string PrincipalOf(const Caller& caller, std::string_view account) {
  if (caller.account_root) return RootPrincipal(account);
  return fmt::format("arn:cipherfs:iam::{}:user/{}", account, caller.user_name);
}

Result<std::string> NormalizePrincipal(std::string_view text, std::string_view account) {
  if (IsUserName(text)) return fmt::format("arn:cipherfs:iam::{}:user/{}", account, text);
  std::string user_prefix = fmt::format("arn:cipherfs:iam::{}:user/", account);
  if (text == RootPrincipal(account)) return std::string(text);
  if (text.substr(0, user_prefix.size()) == user_prefix && IsUserName(text.substr(user_prefix.size()))) {
    return std::string(text);
  }
  return KmsError(KmsErrorType::kValidation,
                  fmt::format("'{}' is not a principal of account {}: give a local user name or {}USER",
                              text.substr(0, 200), account, user_prefix));
}

std::string DefaultKeyPolicy(std::string_view account) {
  json policy{{"Version", "2012-10-17"},
              {"Id", "key-default-1"},
              {"Statement", json::array({json{{"Sid", "Enable IAM policies"},
                                              {"Effect", "Allow"},
                                              {"Principal", json{{"AWS", RootPrincipal(account)}}},
                                              {"Action", "kms:*"},
                                              {"Resource", "*"}}})}};
  return policy.dump(2);
}

Status ValidateKeyPolicy(std::string_view policy) {
  if (policy.empty() || policy.size() > kMaxPolicySize) return Malformed("a policy is 1 to 32768 bytes");
  try {
    json root = json::parse(policy);
    if (!root.is_object() || !root.contains("Statement")) return Malformed("no Statement");
    json statements = root.at("Statement");
    if (statements.is_object()) statements = json::array({statements});
    if (!statements.is_array()) return Malformed("Statement must be a list");
    for (const auto& st : statements) {
      std::string effect = st.at("Effect").get<std::string>();
      if (effect != "Allow" && effect != "Deny") return Malformed("Effect must be Allow or Deny");
      if (st.contains("Condition")) return Malformed("Condition blocks are not supported by cipherfs");
      if (st.contains("NotAction") || st.contains("NotPrincipal")) return Malformed("NotAction/NotPrincipal unsupported");
      const json& principal = st.at("Principal");
      if (principal.is_string()) {
        if (principal.get<std::string>() != "*") return Malformed("Principal must be \"*\" or {\"AWS\": ...}");
      } else {
        for (const std::string& p : StringList(principal.at("AWS"))) {
          if (p != "*" && p.rfind("arn:cipherfs:iam::", 0) != 0) return Malformed("invalid principal " + p);
        }
      }
      if (st.contains("Action")) (void)StringList(st.at("Action"));
      if (st.contains("Resource")) (void)StringList(st.at("Resource"));
    }
  } catch (const std::exception& e) {
    return Malformed(e.what());
  }
  return Status::Ok();
}

PolicyDecision EvaluatePolicy(std::string_view policy, std::string_view principal, std::string_view action) {
  PolicyDecision decision = PolicyDecision::kNoMatch;
  try {
    json root = json::parse(policy);
    json statements = root.at("Statement");
    if (statements.is_object()) statements = json::array({statements});
    for (const auto& st : statements) {
      // A statement without Action or Resource is accepted but ineffective.
      if (!st.contains("Action") || !st.contains("Resource")) continue;
      if (!PrincipalMatches(st.at("Principal"), principal)) continue;
      auto actions = StringList(st.at("Action"));
      if (std::none_of(actions.begin(), actions.end(), [&](const std::string& a) { return ActionMatches(a, action); })) {
        continue;
      }
      if (st.at("Effect") == "Deny") return PolicyDecision::kDeny;
      decision = PolicyDecision::kAllow;
    }
  } catch (const std::exception&) {
    return PolicyDecision::kNoMatch;  // stored policies are validated; a broken one allows nothing
  }
  return decision;
}

Status ValidateGrantOperation(std::string_view operation) {
  if (std::find(kGrantOperations.begin(), kGrantOperations.end(), operation) != kGrantOperations.end()) {
    return Status::Ok();
  }
  return KmsError(KmsErrorType::kValidation,
                  fmt::format("'{}' is not a grant operation of a symmetric encryption key", operation.substr(0, 100)));
}

bool GrantAllows(const GrantRecord& grant, std::string_view principal, std::string_view operation,
                 const EncryptionContext* context) {
  if (grant.grantee_principal != principal) return false;
  if (std::find(grant.operations.begin(), grant.operations.end(), operation) == grant.operations.end()) return false;
  if (context == nullptr) return true;  // constraints apply to calls with a context only
  if (grant.ec_equals && *grant.ec_equals != *context) return false;
  if (grant.ec_subset && !ContextContains(*context, *grant.ec_subset)) return false;
  return true;
}

Status Authorize(const KeyRecord& key, const Caller& caller, std::string_view account, std::string_view operation,
                 const EncryptionContext* context) {
  std::string principal = PrincipalOf(caller, account);
  std::string action = fmt::format("kms:{}", operation);
  PolicyDecision d = EvaluatePolicy(key.policy.empty() ? DefaultKeyPolicy(account) : key.policy, principal, action);
  if (d == PolicyDecision::kDeny) {
    return KmsError(KmsErrorType::kAccessDenied,
                    fmt::format("User: {} is not authorized to perform: {} on resource: {} with an explicit deny in "
                                "a resource-based policy",
                                principal, action, key.arn));
  }
  if (d == PolicyDecision::kAllow) return Status::Ok();
  for (const GrantRecord& g : key.grants) {
    if (GrantAllows(g, principal, operation, context)) return Status::Ok();
  }
  return KmsError(KmsErrorType::kAccessDenied,
                  fmt::format("User: {} is not authorized to perform: {} on resource: {} because no resource-based "
                              "policy allows the {} action",
                              principal, action, key.arn, action));
}

}  // namespace cfs::keymgr
