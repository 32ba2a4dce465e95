// Exit codes of the cipherfs command, one per error class (docs/cli.md has
// the table), and the one-line error printer:
//   cipherfs: <what is wrong>; <what to do>
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cfs::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,             // a bug or an unexpected failure
  kExitUsage = 2,                // bad command line or invalid argument
  kExitNotFound = 3,             // no such cluster, mountpoint, file
  kExitAlreadyExists = 4,        // cluster id taken
  kExitFailedPrecondition = 5,   // wrong state: mountpoint not empty, cluster inaccessible...
  kExitPermission = 6,           // permission denied, root key mode/owner
  kExitDataLoss = 7,             // corrupted descriptor, key store or data
  kExitUnsupported = 8,          // newer volume/key store format
  kExitIo = 9,                   // the host reported an I/O error
  kExitBusy = 10,                // already mounted, mountpoint in use, lock held
  kExitKmsNotFound = 20,         // NotFoundException
  kExitKmsDisabled = 21,         // DisabledException
  kExitKmsInvalidState = 22,     // KMSInvalidStateException
  kExitKmsAccessDenied = 23,     // AccessDeniedException
  kExitKmsInvalidCiphertext = 24,  // InvalidCiphertextException
  kExitKmsAlreadyExists = 25,    // AlreadyExistsException
  kExitKmsValidation = 26,       // ValidationException
  kExitKmsIncorrectKey = 27,     // IncorrectKeyException
  kExitKmsInternal = 28,         // KMSInternalException
  kExitKmsMalformedPolicy = 29,  // MalformedPolicyDocumentException
  kExitKmsLimitExceeded = 30,    // LimitExceededException
  kExitKmsUnsupported = 31,      // UnsupportedOperationException
  kExitKmsInvalidGrantId = 32,   // InvalidGrantIdException
  kExitKmsInvalidGrantToken = 33,  // InvalidGrantTokenException
};

// The exit code of a failed Status (KMS error names first, then the code).
int ExitCodeFor(const Status& status);

// Appends "; <hint>" to a failed Status's message (keeps code and KMS name).
Status WithHint(const Status& status, std::string_view hint);

// "cipherfs: <message>" plus a generic hint by class when the message has
// none ("; " absent). No trailing newline.
std::string ErrorLine(const Status& status);

}  // namespace cfs::cli
