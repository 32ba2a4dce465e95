// AuditLog: region/kms/audit.log, append-only JSON lines, one per KMS call:
//   {"time","operation","caller_uid","key_arn","encryption_context",
//    "outcome","request_id","prev_hash"}
// prev_hash is the SHA-256 (hex) of the previous line's bytes (64 zeros for
// the first), so a removed, edited or reordered line breaks the chain.
// Never logs plaintext, data keys or ciphertext blobs. (Issue 4 adds the
// user name, listing, filtering and verification.)
// Thread safety: Append may be called concurrently from threads and
// processes (an flock on the log serializes appends).
#pragma once

#include <string>
#include <sys/types.h>

#include "common/result.h"
#include "keymgr/identifiers.h"

namespace cfs::keymgr {

struct AuditEvent {
  std::string operation;   // CreateKey, Decrypt, ...
  uid_t caller_uid = 0;
  std::string key_arn;     // empty when no key was resolved
  EncryptionContext encryption_context;
  std::string outcome;     // "Success" or the error name
  std::string request_id;  // UUID v4
};

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  // Appends one line and fdatasyncs it.
  Status Append(const AuditEvent& event);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cfs::keymgr
