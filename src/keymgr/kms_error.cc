#include "keymgr/kms_error.h"

#include <array>

namespace cfs::keymgr {
namespace {

struct Entry {
  KmsErrorType type;
  std::string_view name;
  Code code;
};

constexpr std::array<Entry, 14> kEntries = {{
    {KmsErrorType::kNotFound, "NotFoundException", Code::kNotFound},
    {KmsErrorType::kDisabled, "DisabledException", Code::kFailedPrecondition},
    {KmsErrorType::kInvalidState, "KMSInvalidStateException", Code::kFailedPrecondition},
    {KmsErrorType::kAccessDenied, "AccessDeniedException", Code::kPermissionDenied},
    {KmsErrorType::kInvalidCiphertext, "InvalidCiphertextException", Code::kDataLoss},
    {KmsErrorType::kAlreadyExists, "AlreadyExistsException", Code::kAlreadyExists},
    {KmsErrorType::kValidation, "ValidationException", Code::kInvalidArgument},
    {KmsErrorType::kIncorrectKey, "IncorrectKeyException", Code::kInvalidArgument},
    {KmsErrorType::kInternal, "KMSInternalException", Code::kInternal},
    {KmsErrorType::kMalformedPolicyDocument, "MalformedPolicyDocumentException", Code::kInvalidArgument},
    {KmsErrorType::kLimitExceeded, "LimitExceededException", Code::kFailedPrecondition},
    {KmsErrorType::kUnsupportedOperation, "UnsupportedOperationException", Code::kUnimplemented},
    {KmsErrorType::kInvalidGrantId, "InvalidGrantIdException", Code::kInvalidArgument},
    {KmsErrorType::kInvalidGrantToken, "InvalidGrantTokenException", Code::kInvalidArgument},
}};

const Entry& EntryOf(KmsErrorType type) {
  for (const Entry& e : kEntries) {
    if (e.type == type) return e;
  }
  return kEntries.back();
}

}  // namespace

std::string_view KmsErrorName(KmsErrorType type) { return EntryOf(type).name; }

Status KmsError(KmsErrorType type, std::string_view message) {
  const Entry& e = EntryOf(type);
  std::string text(e.name);
  text += ": ";
  text += message;
  return Status(e.code, std::move(text));
}

std::optional<KmsErrorType> KmsErrorOf(const Status& status) {
  if (status.ok()) return std::nullopt;
  std::string_view m = status.message();
  for (const Entry& e : kEntries) {
    if (status.code() == e.code && m.size() > e.name.size() + 1 && m.substr(0, e.name.size()) == e.name &&
        m[e.name.size()] == ':') {
      return e.type;
    }
  }
  return std::nullopt;
}

}  // namespace cfs::keymgr
