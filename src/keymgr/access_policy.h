// Who may call what on a key: key policies and grants naming local users
// (docs/format/keystore.md section 5).
//
// Principals are local users, written as IAM-style ARNs of the region's
// account: arn:cipherfs:iam::<account>:user/<user name>, or
// arn:cipherfs:iam::<account>:root for the account owner (uid 0 and the
// user that owns the region's key store). A key policy is the cloud shape
//   {"Version":"2012-10-17","Statement":[{"Sid":..,"Effect":"Allow"|"Deny",
//    "Principal":{"AWS":ARN|[ARN..]}|"*","Action":"kms:X"|[..],"Resource":"*"}]}
// with "kms:*" and trailing-* action patterns; an explicit Deny wins, then
// any Allow of the policy or a grant. Condition blocks are refused
// (MalformedPolicyDocumentException) rather than silently ignored.
// Thread safety: pure functions.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"
#include "keymgr/identifiers.h"
#include "keymgr/key_store.h"

namespace cfs::keymgr {

inline constexpr size_t kMaxPolicySize = 32 * 1024;

// The caller of a KMS call, as kmsd sees it (SO_PEERCRED) or the local
// process.
struct Caller {
  uid_t uid = 0;
  std::string user_name;        // from the passwd database; "uid-N" if none
  bool account_root = true;     // uid 0 or the owner of the key store
};

std::string RootPrincipal(std::string_view account);
// The ARN naming `caller` in policies and grants.
std::string PrincipalOf(const Caller& caller, std::string_view account);

// "postgres", "arn:cipherfs:iam::<account>:user/postgres" or the root ARN,
// normalized to its ARN; ValidationException otherwise.
Result<std::string> NormalizePrincipal(std::string_view text, std::string_view account);

// The default policy: the account root may do everything ("kms:*").
std::string DefaultKeyPolicy(std::string_view account);

// MalformedPolicyDocumentException for a document that is not a policy of
// the shape above or is larger than 32 KB.
Status ValidateKeyPolicy(std::string_view policy);

enum class PolicyDecision { kAllow, kDeny, kNoMatch };
// What `policy` says about `principal` calling `action` ("kms:Decrypt").
PolicyDecision EvaluatePolicy(std::string_view policy, std::string_view principal, std::string_view action);

// The grant operations a symmetric key supports; ValidationException for any
// other name.
Status ValidateGrantOperation(std::string_view operation);
// Does `grant` let `principal` call `operation` with `context` (null for
// calls without one)?
bool GrantAllows(const GrantRecord& grant, std::string_view principal, std::string_view operation,
                 const EncryptionContext* context);

// OK if the key's policy or one of its grants allows `caller` the operation
// (grant operation name, e.g. "Decrypt"; the policy action is "kms:"+name)
// and no policy statement denies it; AccessDeniedException (cloud message
// shape) otherwise.
Status Authorize(const KeyRecord& key, const Caller& caller, std::string_view account, std::string_view operation,
                 const EncryptionContext* context);

}  // namespace cfs::keymgr
