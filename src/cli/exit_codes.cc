#include "cli/exit_codes.h"

#include "keymgr/kms_error.h"

namespace cfs::cli {
namespace {

int KmsExitCode(keymgr::KmsErrorType type) {
  using keymgr::KmsErrorType;
  switch (type) {
    case KmsErrorType::kNotFound: return kExitKmsNotFound;
    case KmsErrorType::kDisabled: return kExitKmsDisabled;
    case KmsErrorType::kInvalidState: return kExitKmsInvalidState;
    case KmsErrorType::kAccessDenied: return kExitKmsAccessDenied;
    case KmsErrorType::kInvalidCiphertext: return kExitKmsInvalidCiphertext;
    case KmsErrorType::kAlreadyExists: return kExitKmsAlreadyExists;
    case KmsErrorType::kValidation: return kExitKmsValidation;
    case KmsErrorType::kIncorrectKey: return kExitKmsIncorrectKey;
    case KmsErrorType::kInternal: return kExitKmsInternal;
    case KmsErrorType::kMalformedPolicyDocument: return kExitKmsMalformedPolicy;
    case KmsErrorType::kLimitExceeded: return kExitKmsLimitExceeded;
    case KmsErrorType::kUnsupportedOperation: return kExitKmsUnsupported;
    case KmsErrorType::kInvalidGrantId: return kExitKmsInvalidGrantId;
    case KmsErrorType::kInvalidGrantToken: return kExitKmsInvalidGrantToken;
  }
  return kExitInternal;
}

std::string_view GenericHint(const Status& status) {
  if (auto kms = keymgr::KmsErrorOf(status)) {
    switch (*kms) {
      case keymgr::KmsErrorType::kNotFound: return "list keys with: cipherfs kms list-keys";
      case keymgr::KmsErrorType::kDisabled: return "enable the key with: cipherfs kms enable-key --key-id KEY";
      case keymgr::KmsErrorType::kInvalidCiphertext:
        return "the wrapped key or its encryption context does not match; restore volume.yaml from a backup";
      default: return "see: cipherfs kms --help";
    }
  }
  switch (status.code()) {
    case Code::kInvalidArgument: return "see: cipherfs --help";
    case Code::kNotFound: return "check the name (cipherfs cluster list)";
    case Code::kAlreadyExists: return "choose another name";
    case Code::kPermissionDenied: return "check file ownership and modes, or run as the owner";
    case Code::kDataLoss: return "restore the file from a backup";
    case Code::kUnimplemented: return "upgrade cipherfs";
    case Code::kUnavailable: return "retry once the other user is done";
    case Code::kFailedPrecondition: return "fix the state named above and retry";
    default: return "please report this";
  }
}

}  // namespace

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  if (auto kms = keymgr::KmsErrorOf(status)) return KmsExitCode(*kms);
  switch (status.code()) {
    case Code::kOk: return kExitOk;
    case Code::kInvalidArgument: return kExitUsage;
    case Code::kNotFound: return kExitNotFound;
    case Code::kAlreadyExists: return kExitAlreadyExists;
    case Code::kFailedPrecondition: return kExitFailedPrecondition;
    case Code::kPermissionDenied: return kExitPermission;
    case Code::kDataLoss: return kExitDataLoss;
    case Code::kUnavailable: return kExitBusy;
    case Code::kIoError: return kExitIo;
    case Code::kUnimplemented: return kExitUnsupported;
    case Code::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

Status WithHint(const Status& status, std::string_view hint) {
  if (status.ok()) return status;
  return Status(status.code(), status.message() + "; " + std::string(hint), status.sys_errno());
}

std::string ErrorLine(const Status& status) {
  std::string line = "cipherfs: " + status.message();
  if (status.message().find("; ") == std::string::npos) {
    line += "; ";
    line += GenericHint(status);
  }
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

}  // namespace cfs::cli
