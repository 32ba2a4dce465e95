// KMS errors by the names users of the cloud KMS know. A KMS error travels
// as an ordinary Status whose message starts with "<Name>: "; KmsErrorOf()
// recovers the name (the CLI maps each to its own exit code, kmsd will put it
// on the wire as {"__type", "message"}).
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cfs::keymgr {

enum class KmsErrorType {
  kNotFound,           // NotFoundException
  kDisabled,           // DisabledException
  kInvalidState,       // KMSInvalidStateException
  kAccessDenied,       // AccessDeniedException
  kInvalidCiphertext,  // InvalidCiphertextException
  kAlreadyExists,      // AlreadyExistsException
  kValidation,         // ValidationException
  kIncorrectKey,       // IncorrectKeyException
  kInternal,           // KMSInternalException
  kMalformedPolicyDocument,  // MalformedPolicyDocumentException
  kLimitExceeded,            // LimitExceededException
  kUnsupportedOperation,     // UnsupportedOperationException
  kInvalidGrantId,           // InvalidGrantIdException
  kInvalidGrantToken,        // InvalidGrantTokenException
};

std::string_view KmsErrorName(KmsErrorType type);

// Status(code, "<Name>: <message>"), with the Status code:
// NotFound -> kNotFound, Disabled/InvalidState -> kFailedPrecondition,
// AccessDenied -> kPermissionDenied, InvalidCiphertext -> kDataLoss,
// AlreadyExists -> kAlreadyExists, Validation/IncorrectKey ->
// kInvalidArgument, Internal -> kInternal, MalformedPolicyDocument /
// InvalidGrantId / InvalidGrantToken -> kInvalidArgument, LimitExceeded ->
// kFailedPrecondition, UnsupportedOperation -> kUnimplemented.
Status KmsError(KmsErrorType type, std::string_view message);

// The KMS error a Status carries, if any (by its message prefix).
std::optional<KmsErrorType> KmsErrorOf(const Status& status);

}  // namespace cfs::keymgr
